//! `conveyor queue list|describe|purge|delete`: the queues AMQP and SQS
//! clients share, through `/api/v1/queues`.

use clap::Subcommand;
use serde_json::Value;

use super::client::path;
use super::{Target, render};

#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    command: QueueCommand,
}

#[derive(Debug, Subcommand)]
enum QueueCommand {
    /// List queues with their ready and unacknowledged messages and consumers.
    List,
    /// A queue's counts, limits, arguments and dead-letter wiring.
    Describe { name: String },
    /// Remove every message waiting in a queue (those held by consumers stay).
    Purge { name: String },
    /// Delete a queue and its messages.
    Delete {
        name: String,
        /// Only if it holds no messages.
        #[arg(long)]
        if_empty: bool,
    },
}

pub fn run(args: &QueueArgs) -> anyhow::Result<()> {
    let client = args.target.client();
    let json_output = args.target.output.json;
    let answer = match &args.command {
        QueueCommand::List => {
            let queues = client.get("/queues", &[])?;
            if !json_output {
                let rows = render::array(&queues)
                    .iter()
                    .map(|queue| {
                        vec![
                            render::cell(&queue["name"]),
                            render::cell(&queue["messages_ready"]),
                            render::cell(&queue["messages_unacked"]),
                            render::cell(&queue["consumers"]),
                            render::exchange(&queue["dead_letter_exchange"]),
                            render::bytes(&queue["size_bytes"]),
                        ]
                    })
                    .collect();
                render::table(&["QUEUE", "READY", "UNACKED", "CONSUMERS", "DEAD-LETTER EXCHANGE", "SIZE"], rows);
            }
            queues
        }
        QueueCommand::Describe { name } => {
            let queue = client.get(&path(&["queues", name]), &[])?;
            if !json_output {
                describe(&queue);
            }
            queue
        }
        QueueCommand::Purge { name } => {
            let purged = client.post(&path(&["queues", name, "purge"]), &Value::Null)?;
            if !json_output {
                render::out!("purged {} from {name}", render::count(&purged["purged"], "message"));
            }
            purged
        }
        QueueCommand::Delete { name, if_empty } => {
            let query = if *if_empty {
                vec![("if_empty", "true".to_owned())]
            } else {
                Vec::new()
            };
            let deleted = client.delete(&path(&["queues", name]), &query)?;
            if !json_output {
                render::out!(
                    "deleted queue {name} with {}",
                    render::count(&deleted["messages_deleted"], "message")
                );
            }
            deleted
        }
    };
    if json_output {
        render::json(&answer);
    }
    Ok(())
}

fn describe(queue: &Value) {
    let arguments: Vec<String> = queue["arguments"]
        .as_object()
        .map(|arguments| {
            arguments
                .iter()
                .map(|(key, value)| format!("{key}={}", render::cell(value)))
                .collect()
        })
        .unwrap_or_default();
    render::fields(vec![
        ("queue", render::cell(&queue["name"])),
        ("ready", render::cell(&queue["messages_ready"])),
        ("unacked", render::cell(&queue["messages_unacked"])),
        ("consumers", render::cell(&queue["consumers"])),
        ("size", render::bytes(&queue["size_bytes"])),
        ("durable", render::cell(&queue["durable"])),
        ("auto-delete", render::cell(&queue["auto_delete"])),
        ("message ttl ms", render::cell(&queue["message_ttl_ms"])),
        ("max length", render::cell(&queue["max_length"])),
        ("delivery limit", render::cell(&queue["delivery_limit"])),
        ("dead-letter exchange", render::exchange(&queue["dead_letter_exchange"])),
        ("dead-letter routing key", render::cell(&queue["dead_letter_routing_key"])),
        ("dead letters go to", render::cell(&queue["dead_letter_queues"])),
        ("dead letters come from", render::cell(&queue["dead_letter_sources"])),
        (
            "arguments",
            if arguments.is_empty() {
                "-".to_owned()
            } else {
                arguments.join("\n")
            },
        ),
    ]);
}
