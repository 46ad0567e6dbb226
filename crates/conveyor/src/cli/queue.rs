//! `conveyor queue declare|list|describe|publish|get|purge|delete`: the
//! queues AMQP and SQS clients share, through `/api/v1/queues` — declared
//! with their `x-…` arguments as an AMQP client would, published to, and
//! taken from with an ack or a reject, all without client code.

use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::client::path;
use super::{Target, argument, key_value, render};

#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    command: QueueCommand,
}

/// What `queue get` does with the messages it takes: RabbitMQ's management API's `ackmode`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
enum AckMode {
    /// Give them back at once (they come back flagged redelivered).
    AckRequeueTrue,
    /// Acknowledge them: gone from the queue.
    AckRequeueFalse,
    /// Reject them with requeue: back after the queue's retry delay.
    RejectRequeueTrue,
    /// Reject them without requeue: dead-lettered through the queue's dead-letter exchange.
    RejectRequeueFalse,
}

impl AckMode {
    fn as_str(self) -> &'static str {
        match self {
            AckMode::AckRequeueTrue => "ack_requeue_true",
            AckMode::AckRequeueFalse => "ack_requeue_false",
            AckMode::RejectRequeueTrue => "reject_requeue_true",
            AckMode::RejectRequeueFalse => "reject_requeue_false",
        }
    }
}

/// A declaration's flags: the common `x-…` arguments by name, any other with `--argument`.
#[derive(Debug, clap::Args)]
struct Declaration {
    /// Not kept across a restart (queues are durable by default).
    #[arg(long)]
    transient: bool,
    /// Deleted when its last consumer goes.
    #[arg(long)]
    auto_delete: bool,
    /// Where rejected, expired and overflowing messages go (`x-dead-letter-exchange`; "" is the default exchange).
    #[arg(long, value_name = "EXCHANGE")]
    dead_letter_exchange: Option<String>,
    /// The routing key they go with (`x-dead-letter-routing-key`) instead of their own.
    #[arg(long, value_name = "KEY")]
    dead_letter_routing_key: Option<String>,
    /// How long a message may wait, in milliseconds (`x-message-ttl`).
    #[arg(long, value_name = "MS")]
    message_ttl: Option<u64>,
    /// At most this many messages ready (`x-max-length`).
    #[arg(long, value_name = "N")]
    max_length: Option<u64>,
    /// At most this many bytes of bodies ready (`x-max-length-bytes`).
    #[arg(long, value_name = "BYTES")]
    max_length_bytes: Option<u64>,
    /// What a full queue does: drop-head, reject-publish or reject-publish-dlx (`x-overflow`).
    #[arg(long, value_name = "BEHAVIOUR")]
    overflow: Option<String>,
    /// Priorities 0 to N, highest first (`x-max-priority`, 1 to 255).
    #[arg(long, value_name = "N")]
    max_priority: Option<u64>,
    /// classic, quorum or stream (`x-queue-type`).
    #[arg(long = "type", value_name = "TYPE")]
    queue_type: Option<String>,
    /// Any other argument, `x-name=value` (repeatable): a value that reads as JSON is that JSON (10 is an integer), else a string.
    #[arg(long = "argument", short = 'a', value_name = "KEY=VALUE", value_parser = argument)]
    arguments: Vec<(String, Value)>,
}

impl Declaration {
    /// The body of `PUT /queues/{name}`.
    fn body(&self) -> Value {
        let mut arguments = Map::new();
        let mut text = |key: &str, value: &Option<String>| {
            if let Some(value) = value {
                arguments.insert(key.to_owned(), Value::String(value.clone()));
            }
        };
        text("x-dead-letter-exchange", &self.dead_letter_exchange);
        text("x-dead-letter-routing-key", &self.dead_letter_routing_key);
        text("x-overflow", &self.overflow);
        text("x-queue-type", &self.queue_type);
        let numbers = [
            ("x-message-ttl", self.message_ttl),
            ("x-max-length", self.max_length),
            ("x-max-length-bytes", self.max_length_bytes),
            ("x-max-priority", self.max_priority),
        ];
        for (key, value) in numbers {
            if let Some(value) = value {
                arguments.insert(key.to_owned(), value.into());
            }
        }
        for (key, value) in &self.arguments {
            arguments.insert(key.clone(), value.clone());
        }
        json!({"durable": !self.transient, "auto_delete": self.auto_delete, "arguments": arguments})
    }
}

#[derive(Debug, Subcommand)]
enum QueueCommand {
    /// Declare a queue with its arguments, as an AMQP client would (an existing one declared the same way is left as it is).
    Declare {
        name: String,
        #[command(flatten)]
        declaration: Box<Declaration>,
    },
    /// Publish one message to a queue (through the default exchange).
    Publish {
        name: String,
        /// The message body.
        message: String,
        /// A header, `name=value` (repeatable).
        #[arg(long = "header", short = 'H', value_name = "NAME=VALUE", value_parser = key_value)]
        headers: Vec<(String, String)>,
    },
    /// Take messages as a consumer would and settle them: give back, ack, or reject (into the dead-letter exchange).
    Get {
        name: String,
        /// At most this many (1 to 1000).
        #[arg(long, short, default_value_t = 1)]
        count: u32,
        /// What to do with them.
        #[arg(long, value_enum, default_value = "ack_requeue_true")]
        ackmode: AckMode,
    },
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
    let client = args.target.client().in_vhost(args.target.vhost.clone());
    let json_output = args.target.output.json;
    let answer = match &args.command {
        QueueCommand::Declare { name, declaration } => {
            let declared = client.put(&path(&["queues", name]), &declaration.body())?;
            if !json_output {
                if declared.is_null() {
                    render::out!("queue {name} exists, declared the same way");
                } else {
                    render::out!("declared queue {name}");
                }
            }
            declared
        }
        QueueCommand::Publish { name, message, headers } => {
            let headers: Map<String, Value> = headers
                .iter()
                .map(|(key, value)| (key.clone(), Value::String(value.clone())))
                .collect();
            let published = client.post(&path(&["queues", name, "messages"]), &json!({"value": message, "headers": headers}))?;
            if !json_output {
                render::out!("published to {name}");
            }
            published
        }
        QueueCommand::Get { name, count, ackmode } => {
            let got = client.post(
                &path(&["queues", name, "get"]),
                &json!({"count": count, "ackmode": ackmode.as_str()}),
            )?;
            if !json_output {
                let rows = render::array(&got["messages"])
                    .iter()
                    .map(|message| {
                        vec![
                            render::cell(&message["offset"]),
                            render::cell(&message["delivery_count"]),
                            render::cell(&message["value"]),
                        ]
                    })
                    .collect();
                render::table(&["OFFSET", "DELIVERIES", "VALUE"], rows);
                render::out!(
                    "{} ({})",
                    render::count(&json!(render::array(&got["messages"]).len()), "message"),
                    ackmode.as_str()
                );
            }
            got
        }
        QueueCommand::List => {
            let queues = client.get("/queues", &[])?;
            if !json_output {
                let rows = render::array(&queues)
                    .iter()
                    .map(|queue| {
                        vec![
                            render::cell(&queue["vhost"]),
                            render::cell(&queue["name"]),
                            render::cell(&queue["messages_ready"]),
                            render::cell(&queue["messages_unacked"]),
                            render::cell(&queue["consumers"]),
                            render::exchange(&queue["dead_letter_exchange"]),
                            render::bytes(&queue["size_bytes"]),
                        ]
                    })
                    .collect();
                render::table(
                    &["VHOST", "QUEUE", "READY", "UNACKED", "CONSUMERS", "DEAD-LETTER EXCHANGE", "SIZE"],
                    rows,
                );
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
        ("vhost", render::cell(&queue["vhost"])),
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
