//! `conveyor exchange declare|list|describe|delete`: exchanges and their
//! bindings, through `/api/v1/exchanges` (the default exchange is
//! `amq.default` there). Bindings are changed with `conveyor binding`.

use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::client::path;
use super::{Target, render};

#[derive(Debug, clap::Args)]
pub struct ExchangeArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    command: ExchangeCommand,
}

#[derive(Debug, Subcommand)]
enum ExchangeCommand {
    /// Declare an exchange, as an AMQP client would (an existing one declared the same way is left as it is).
    Declare {
        name: String,
        /// direct, fanout, topic or headers.
        #[arg(long = "type", short = 't', value_name = "TYPE")]
        kind: String,
        /// Not kept across a restart (exchanges are durable by default).
        #[arg(long)]
        transient: bool,
        /// Deleted once its last binding goes.
        #[arg(long)]
        auto_delete: bool,
        /// Only other exchanges may route into it.
        #[arg(long)]
        internal: bool,
        /// Where messages its bindings route nowhere go (`alternate-exchange`).
        #[arg(long, value_name = "EXCHANGE")]
        alternate_exchange: Option<String>,
    },
    /// Delete an exchange and the bindings from and to it.
    Delete {
        name: String,
        /// Only if nothing is bound from it.
        #[arg(long)]
        if_unused: bool,
    },
    /// List exchanges with their kind and number of bindings.
    List,
    /// An exchange and its bindings (`amq.default` names the default exchange).
    Describe { name: String },
}

pub fn run(args: &ExchangeArgs) -> anyhow::Result<()> {
    let client = args.target.client().in_vhost(args.target.vhost.clone());
    let json_output = args.target.output.json;
    match &args.command {
        ExchangeCommand::Declare {
            name,
            kind,
            transient,
            auto_delete,
            internal,
            alternate_exchange,
        } => {
            let mut arguments = Map::new();
            if let Some(alternate) = alternate_exchange {
                arguments.insert("alternate-exchange".to_owned(), Value::String(alternate.clone()));
            }
            let body =
                json!({"type": kind, "durable": !transient, "auto_delete": auto_delete, "internal": internal, "arguments": arguments});
            let declared = client.put(&path(&["exchanges", name]), &body)?;
            if json_output {
                render::json(&declared);
            } else if declared.is_null() {
                render::out!("exchange {name} exists, declared the same way");
            } else {
                render::out!("declared {kind} exchange {name}");
            }
        }
        ExchangeCommand::Delete { name, if_unused } => {
            let query = if *if_unused {
                vec![("if_unused", "true".to_owned())]
            } else {
                Vec::new()
            };
            let deleted = client.delete(&path(&["exchanges", name]), &query)?;
            if json_output {
                render::json(&deleted);
            } else {
                render::out!("deleted exchange {name}");
            }
        }
        ExchangeCommand::List => {
            let exchanges = client.get("/exchanges", &[])?;
            if json_output {
                render::json(&exchanges);
                return Ok(());
            }
            let rows = render::array(&exchanges)
                .iter()
                .map(|exchange| {
                    vec![
                        render::cell(&exchange["vhost"]),
                        render::exchange(&exchange["name"]),
                        render::cell(&exchange["kind"]),
                        render::cell(&exchange["durable"]),
                        render::cell(&exchange["internal"]),
                        render::cell(&exchange["bindings"]),
                    ]
                })
                .collect();
            render::table(&["VHOST", "EXCHANGE", "KIND", "DURABLE", "INTERNAL", "BINDINGS"], rows);
        }
        ExchangeCommand::Describe { name } => {
            let exchange = client.get(&path(&["exchanges", name]), &[])?;
            if json_output {
                render::json(&exchange);
                return Ok(());
            }
            render::out!(
                "exchange {name}  kind {}  durable {}",
                render::cell(&exchange["kind"]),
                render::cell(&exchange["durable"])
            );
            render::items(
                &exchange["bindings_from"],
                &[
                    ("DESTINATION", "destination"),
                    ("TYPE", "destination_type"),
                    ("ROUTING KEY", "routing_key"),
                ],
            );
        }
    }
    Ok(())
}
