//! `conveyor dlq peek|redrive`: what sits in a dead-letter queue and why,
//! and moving it back to the queue it died in (or any queue), through
//! `/api/v1/queues/{name}/messages` and `/redrive`.

use clap::Subcommand;
use conveyor_core::queue::policy::headers::{DEATH_QUEUE, DEATH_REASON};
use serde_json::{Value, json};

use super::client::path;
use super::{Target, render};

/// Characters of a key or value a table shows.
const CELL_CHARS_MAX: usize = 60;

#[derive(Debug, clap::Args)]
pub struct DlqArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// Show a queue's messages, lowest first, without consuming them.
    Peek {
        queue: String,
        /// At most this many (1 to 1000).
        #[arg(long, short, default_value_t = 10)]
        count: u32,
    },
    /// Move messages out of a queue: each back to the queue it was dead-lettered from, or all to --to.
    Redrive {
        queue: String,
        /// Move every message to this queue instead.
        #[arg(long, value_name = "QUEUE")]
        to: Option<String>,
        /// At most this many messages (1 to 10000) [default: 100].
        #[arg(long, value_name = "N")]
        max: Option<u32>,
    },
}

pub fn run(args: &DlqArgs) -> anyhow::Result<()> {
    let client = args.target.client().in_vhost(args.target.vhost.clone());
    let json_output = args.target.output.json;
    match &args.command {
        DlqCommand::Peek { queue, count } => {
            let peeked = client.get(&path(&["queues", queue, "messages"]), &[("count", count.to_string())])?;
            if json_output {
                render::json(&peeked);
            } else {
                let rows = render::array(&peeked["messages"]).iter().map(row).collect();
                render::table(&["OFFSET", "DELIVERIES", "FROM", "REASON", "KEY", "VALUE"], rows);
            }
        }
        DlqCommand::Redrive { queue, to, max } => {
            let redriven = client.post(
                &path(&["queues", queue, "redrive"]),
                &json!({"destination": to, "max_messages": max}),
            )?;
            if json_output {
                render::json(&redriven);
            } else {
                let destinations: Vec<String> = redriven["destinations"]
                    .as_object()
                    .map(|moved| moved.iter().map(|(queue, count)| format!("{queue}: {count}")).collect())
                    .unwrap_or_default();
                // What is still waiting in the queue, moved or not.
                let left = client.get(&path(&["queues", queue]), &[])?;
                let unmoved = match redriven["skipped"].as_u64() {
                    Some(0) | None => String::new(),
                    Some(_) => format!(
                        "; {} had no destination that would take it",
                        render::count(&redriven["skipped"], "message")
                    ),
                };
                render::out!(
                    "moved {} ({}){unmoved}; {} left in {queue}",
                    render::count(&redriven["moved"], "message"),
                    if destinations.is_empty() {
                        "none".to_owned()
                    } else {
                        destinations.join(", ")
                    },
                    render::cell(&left["messages_ready"]),
                );
            }
        }
    }
    Ok(())
}

fn row(message: &Value) -> Vec<String> {
    let header = |name: &str| {
        render::array(&message["headers"])
            .iter()
            .find(|header| header["key"] == name)
            .map_or_else(|| "-".to_owned(), |header| render::cell(&header["value"]))
    };
    let text = |field: &str| {
        let encoded = message[format!("{field}_encoding")] == "base64";
        let text = render::shorten(&render::cell(&message[field]), CELL_CHARS_MAX);
        if encoded { format!("base64:{text}") } else { text }
    };
    vec![
        render::cell(&message["offset"]),
        render::cell(&message["delivery_count"]),
        header(DEATH_QUEUE),
        header(DEATH_REASON),
        text("key"),
        text("value"),
    ]
}
