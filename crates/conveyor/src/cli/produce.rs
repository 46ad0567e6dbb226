//! `conveyor produce TOPIC`: appends lines read from stdin to a topic, one
//! message per line (as `kcat -P`). Lines go out in batches through
//! `/api/v1/topics/{name}/messages/batch`: whatever has arrived when the
//! previous batch is acknowledged, so a file costs one request and one
//! fsync per batch while a person typing sees each line sent at once.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal};
use std::sync::mpsc;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde_json::{Value, json};

use super::client::path;
use super::{Target, key_value, render};

/// Messages per request (the API takes up to 1000).
const BATCH_MESSAGES_MAX: usize = 500;
/// Bytes of lines per request, well under the API's 2 MiB body limit.
const BATCH_BYTES_MAX: usize = 1 << 20;

#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub target: Target,
    /// The topic to append to.
    topic: String,
    /// The key of every message (it picks the partition, as Kafka's partitioner does).
    #[arg(long, short = 'k', conflicts_with = "key_delimiter")]
    key: Option<String>,
    /// Split each line at the first DELIM into key and value (kcat's -K); a line without it has no key.
    #[arg(long, short = 'K', value_name = "DELIM")]
    key_delimiter: Option<String>,
    /// A header on every message, `name=value` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME=VALUE", value_parser = key_value)]
    headers: Vec<(String, String)>,
    /// Append to this partition instead of the key's (keyless messages go to 0).
    #[arg(long, short)]
    partition: Option<u32>,
}

/// Where the messages of one partition went.
#[derive(Debug, Serialize)]
struct PartitionSummary {
    partition: u32,
    messages: u64,
    first_offset: u64,
    last_offset: u64,
}

pub fn run(args: &ProduceArgs) -> anyhow::Result<()> {
    let client = args.target.client();
    // Fails early, with the API's message, for a topic that does not exist.
    client.get(&path(&["topics", &args.topic]), &[])?;
    if std::io::stdin().is_terminal() && !args.target.output.quiet {
        eprintln!("reading messages for {} from stdin, one per line; end with Ctrl-D", args.topic);
    }
    let lines = read_lines();
    let bar = args.target.output.counter("produced");
    let batch_path = path(&["topics", &args.topic, "messages", "batch"]);
    let mut partitions: BTreeMap<u32, PartitionSummary> = BTreeMap::new();
    let mut produced = 0u64;
    // Ends when stdin does: each round takes at least one line.
    while let Ok(first) = lines.recv() {
        let first = first.context("reading stdin")?;
        let mut bytes = first.len();
        let mut batch = vec![message(args, &first)];
        while batch.len() < BATCH_MESSAGES_MAX && bytes < BATCH_BYTES_MAX {
            let Ok(line) = lines.try_recv() else { break };
            let line = line.context("reading stdin")?;
            bytes += line.len();
            batch.push(message(args, &line));
        }
        let answer = client.post(&batch_path, &json!({ "messages": batch })).with_context(|| {
            if produced == 0 {
                "no message was produced".to_owned()
            } else {
                format!("{produced} messages were produced before this")
            }
        })?;
        for published in render::array(&answer["published"]) {
            let (Some(partition), Some(offset)) = (published["partition"].as_u64(), published["offset"].as_u64()) else {
                continue;
            };
            let summary = partitions.entry(partition as u32).or_insert(PartitionSummary {
                partition: partition as u32,
                messages: 0,
                first_offset: offset,
                last_offset: offset,
            });
            summary.messages += 1;
            summary.last_offset = summary.last_offset.max(offset);
            produced += 1;
        }
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    let partitions: Vec<PartitionSummary> = partitions.into_values().collect();
    if args.target.output.json {
        render::json(&json!({"topic": args.topic, "messages": produced, "partitions": partitions}));
    } else {
        let spans: Vec<String> = partitions
            .iter()
            .map(|span| format!("partition {} offsets {}-{}", span.partition, span.first_offset, span.last_offset))
            .collect();
        let spans = if spans.is_empty() {
            String::new()
        } else {
            format!(" ({})", spans.join(", "))
        };
        render::out!(
            "produced {} to {}{spans}",
            render::count(&Value::from(produced), "message"),
            args.topic
        );
    }
    Ok(())
}

/// Stdin's lines (without their line ending), read on their own thread so
/// that a batch takes what has arrived without waiting for more.
fn read_lines() -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (sender, receiver) = mpsc::sync_channel(BATCH_MESSAGES_MAX * 2);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    if sender.send(Ok(line)).is_err() {
                        break;
                    }
                }
                Err(error) => {
                    let _ = sender.send(Err(error));
                    break;
                }
            }
        }
    });
    receiver
}

/// The publish request for one line.
fn message(args: &ProduceArgs, line: &[u8]) -> Value {
    let (key, value) = match (&args.key, &args.key_delimiter) {
        (Some(key), _) => (Some(key.as_bytes()), line),
        (None, Some(delimiter)) => match find(line, delimiter.as_bytes()) {
            Some(at) => (Some(&line[..at]), &line[at + delimiter.len()..]),
            None => (None, line),
        },
        (None, None) => (None, line),
    };
    let (value, value_encoding) = encoded(value);
    let mut message = json!({"value": value, "value_encoding": value_encoding});
    if let Some(key) = key {
        let (key, key_encoding) = encoded(key);
        message["key"] = json!(key);
        message["key_encoding"] = json!(key_encoding);
    }
    if !args.headers.is_empty() {
        message["headers"] = json!(args.headers.iter().cloned().collect::<BTreeMap<_, _>>());
    }
    if let Some(partition) = args.partition {
        message["partition"] = json!(partition);
    }
    message
}

/// Text as the API takes it: UTF-8 as is, anything else base64.
fn encoded(bytes: &[u8]) -> (String, &'static str) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), "utf8"),
        Err(_) => (BASE64.encode(bytes), "base64"),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        produce: ProduceArgs,
    }

    fn args(flags: &[&str]) -> ProduceArgs {
        Command::parse_from(["produce"].iter().chain(flags)).produce
    }

    #[test]
    fn a_line_splits_at_the_key_delimiter_and_carries_headers() {
        let args = args(&["orders", "-K", "::", "-H", "source=cli", "-p", "2"]);
        assert_eq!(
            message(&args, b"customer-7::hello::world"),
            json!({"key": "customer-7", "key_encoding": "utf8", "value": "hello::world", "value_encoding": "utf8",
                   "headers": {"source": "cli"}, "partition": 2})
        );
        assert_eq!(message(&args, b"no key")["key"], Value::Null);
        assert_eq!(
            message(&args, &[0xff, 0x00]),
            json!({"value": "/wA=", "value_encoding": "base64",
            "headers": {"source": "cli"}, "partition": 2})
        );
    }
}
