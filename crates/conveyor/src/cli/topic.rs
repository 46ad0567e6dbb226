//! `conveyor topic create|list|describe|delete|config`: Kafka topics through
//! `/api/v1/topics`.

use std::collections::BTreeMap;

use clap::Subcommand;
use serde_json::{Value, json};

use super::client::path;
use super::{Target, key_value, render};

#[derive(Debug, clap::Args)]
pub struct TopicArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, Subcommand)]
enum TopicCommand {
    /// Create a topic (Kafka's rules for names, partitions and configs).
    Create {
        name: String,
        /// Partitions [default: the broker's default_partitions].
        #[arg(long, short)]
        partitions: Option<u32>,
        /// A topic config, e.g. `retention.ms=86400000` (repeatable).
        #[arg(long = "config", short = 'c', value_name = "KEY=VALUE", value_parser = key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topics with their partitions, messages and sizes.
    List,
    /// A topic's partitions (offsets, sizes) and the configs set on it.
    Describe { name: String },
    /// Delete a topic and all its messages.
    Delete { name: String },
    /// Show a topic's effective configs, or change some with --set and --reset.
    Config {
        name: String,
        /// Set a config, e.g. `retention.ms=3600000` (repeatable).
        #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
        set: Vec<(String, String)>,
        /// Reset a config to the broker's default (repeatable).
        #[arg(long, value_name = "KEY")]
        reset: Vec<String>,
    },
}

pub fn run(args: &TopicArgs) -> anyhow::Result<()> {
    let client = args.target.client();
    let json_output = args.target.output.json;
    match &args.command {
        TopicCommand::Create { name, partitions, configs } => {
            let configs: BTreeMap<&str, &str> = configs.iter().map(|(key, value)| (key.as_str(), value.as_str())).collect();
            let topic = client.post("/topics", &json!({"name": name, "partitions": partitions, "configs": configs}))?;
            if json_output {
                render::json(&topic);
            } else {
                render::out!("created topic {name} with {} partitions", render::array(&topic["partitions"]).len());
            }
        }
        TopicCommand::List => {
            let topics = client.get("/topics", &[])?;
            if json_output {
                render::json(&topics);
            } else {
                let rows = render::array(&topics)
                    .iter()
                    .map(|topic| {
                        vec![
                            render::cell(&topic["name"]),
                            render::cell(&topic["partitions"]),
                            render::cell(&topic["messages"]),
                            render::bytes(&topic["size_bytes"]),
                        ]
                    })
                    .collect();
                render::table(&["TOPIC", "PARTITIONS", "MESSAGES", "SIZE"], rows);
            }
        }
        TopicCommand::Describe { name } => {
            let topic = client.get(&path(&["topics", name]), &[])?;
            if json_output {
                render::json(&topic);
            } else {
                describe(&topic);
            }
        }
        TopicCommand::Delete { name } => {
            client.delete(&path(&["topics", name]), &[])?;
            if !json_output {
                render::out!("deleted topic {name}");
            }
        }
        TopicCommand::Config { name, set, reset } => {
            let topic = if set.is_empty() && reset.is_empty() {
                client.get(&path(&["topics", name]), &[])?
            } else {
                let mut changes: BTreeMap<&str, Option<&str>> =
                    set.iter().map(|(key, value)| (key.as_str(), Some(value.as_str()))).collect();
                changes.extend(reset.iter().map(|key| (key.as_str(), None)));
                client.patch(&path(&["topics", name, "configs"]), &json!({ "configs": changes }))?
            };
            if json_output {
                render::json(&topic["configs"]);
            } else {
                let rows = render::array(&topic["configs"])
                    .iter()
                    .map(|config| {
                        vec![
                            render::cell(&config["name"]),
                            render::cell(&config["value"]),
                            source(config).to_owned(),
                        ]
                    })
                    .collect();
                render::table(&["CONFIG", "VALUE", "SOURCE"], rows);
            }
        }
    }
    Ok(())
}

fn source(config: &Value) -> &'static str {
    if config["is_default"].as_bool().unwrap_or(false) {
        "default"
    } else {
        "topic"
    }
}

fn describe(topic: &Value) {
    let partitions = render::array(&topic["partitions"]);
    render::out!(
        "topic {}  id {}  {} partitions",
        render::cell(&topic["name"]),
        render::cell(&topic["id"]),
        partitions.len()
    );
    let rows = partitions
        .iter()
        .map(|partition| {
            let (start, end) = (partition["log_start_offset"].as_u64(), partition["end_offset"].as_u64());
            vec![
                render::cell(&partition["partition"]),
                render::cell(&partition["log_start_offset"]),
                render::cell(&partition["end_offset"]),
                start
                    .zip(end)
                    .map_or_else(|| "-".to_owned(), |(start, end)| end.saturating_sub(start).to_string()),
                render::bytes(&partition["size_bytes"]),
            ]
        })
        .collect();
    render::table(&["PARTITION", "START", "END", "MESSAGES", "SIZE"], rows);
    let set: Vec<String> = render::array(&topic["configs"])
        .iter()
        .filter(|config| source(config) == "topic")
        .map(|config| format!("{}={}", render::cell(&config["name"]), render::cell(&config["value"])))
        .collect();
    if set.is_empty() {
        render::out!("configs: the broker's defaults (`conveyor topic config` lists them)");
    } else {
        render::out!("configs: {}", set.join(" "));
    }
}
