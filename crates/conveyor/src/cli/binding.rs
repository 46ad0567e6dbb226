//! `conveyor binding add|remove|list`: bindings from exchanges to queues,
//! exchanges and Kafka topics, through `/api/v1/bindings`, as AMQP's
//! `queue.bind`/`exchange.bind` and their unbinds make them.

use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::{Target, argument, render};

#[derive(Debug, clap::Args)]
pub struct BindingArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    command: BindingCommand,
}

/// What a binding delivers to.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DestinationType {
    Queue,
    Exchange,
    /// A Kafka topic (vhost `/` only).
    Topic,
}

impl DestinationType {
    fn as_str(self) -> &'static str {
        match self {
            DestinationType::Queue => "queue",
            DestinationType::Exchange => "exchange",
            DestinationType::Topic => "topic",
        }
    }
}

/// One binding, as `add` and `remove` name it.
#[derive(Debug, clap::Args)]
struct BindingSpec {
    /// The exchange messages come from.
    source: String,
    /// The queue, exchange or topic they go to.
    destination: String,
    /// What the destination is.
    #[arg(long, short = 'd', value_enum, default_value = "queue")]
    destination_type: DestinationType,
    /// The binding key: an exact key (direct) or a pattern (topic, `*` and `#`).
    #[arg(long, short = 'k', default_value = "", value_name = "KEY")]
    routing_key: String,
    /// A binding argument, `name=value` (repeatable; a headers exchange matches them, `x-match=all|any`).
    #[arg(long = "argument", short = 'a', value_name = "KEY=VALUE", value_parser = argument)]
    arguments: Vec<(String, Value)>,
}

impl BindingSpec {
    fn body(&self) -> Value {
        let arguments: Map<String, Value> = self.arguments.iter().cloned().collect();
        json!({
            "source": self.source,
            "destination": self.destination,
            "destination_type": self.destination_type.as_str(),
            "routing_key": self.routing_key,
            "arguments": arguments,
        })
    }
}

#[derive(Debug, Subcommand)]
enum BindingCommand {
    /// Bind a queue, exchange or topic to an exchange (binding it again changes nothing).
    Add(BindingSpec),
    /// Remove a binding (the same source, destination, key and arguments).
    Remove(BindingSpec),
    /// List bindings (of the --vhost given, or of every vhost).
    List,
}

pub fn run(args: &BindingArgs) -> anyhow::Result<()> {
    let client = args.target.client().in_vhost(args.target.vhost.clone());
    let json_output = args.target.output.json;
    let answer = match &args.command {
        BindingCommand::Add(spec) => {
            let added = client.post("/bindings", &spec.body())?;
            if !json_output {
                let what = if added.is_null() { "already bound" } else { "bound" };
                render::out!(
                    "{what}: {} -> {} {} (routing key {:?})",
                    spec.source,
                    spec.destination_type.as_str(),
                    spec.destination,
                    spec.routing_key
                );
            }
            added
        }
        BindingCommand::Remove(spec) => {
            let removed = client.delete_json("/bindings", &spec.body())?;
            if !json_output {
                render::out!(
                    "unbound: {} -> {} {} (routing key {:?})",
                    spec.source,
                    spec.destination_type.as_str(),
                    spec.destination,
                    spec.routing_key
                );
            }
            removed
        }
        BindingCommand::List => {
            let listed = client.get("/bindings", &[])?;
            if !json_output {
                let rows = render::array(&listed)
                    .iter()
                    .map(|binding| {
                        vec![
                            render::cell(&binding["vhost"]),
                            render::exchange(&binding["source"]),
                            render::cell(&binding["destination_type"]),
                            render::cell(&binding["destination"]),
                            render::cell(&binding["routing_key"]),
                            render::cell(&binding["arguments"]),
                        ]
                    })
                    .collect();
                render::table(&["VHOST", "SOURCE", "TYPE", "DESTINATION", "ROUTING KEY", "ARGUMENTS"], rows);
            }
            listed
        }
    };
    if json_output {
        render::json(&answer);
    }
    Ok(())
}
