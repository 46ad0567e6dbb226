//! `conveyor consume TOPIC`: prints a topic's messages as `kcat -C` does,
//! from an offset or a consumer group's committed offsets, by peeking at
//! each partition through `/api/v1/topics/{name}/partitions/{p}/messages`.
//! With `--group` it commits what it printed through
//! `/api/v1/groups/{id}/offsets`, so it works only while the group has no
//! Kafka members (it is not one: it takes every partition it is asked for).

use std::io::{BufWriter, Write};
use std::time::Duration;

use anyhow::bail;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::client::{Client, path};
use super::{Target, render};

/// Messages one peek asks for (the API's most).
const PEEK_COUNT_MAX: u64 = 1000;
/// How long to wait before asking again when every partition is read to its end.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub target: Target,
    /// The topic to read.
    topic: String,
    /// Where to start: `earliest`, `latest`, an offset, or `-N` for N before the end (kcat's -o).
    /// With --group, only for partitions the group has no offset for.
    #[arg(long, short = 'o', default_value = "earliest", allow_hyphen_values = true, value_parser = start)]
    offset: Start,
    /// Only this partition [default: every partition].
    #[arg(long, short)]
    partition: Option<u32>,
    /// Stop after N messages.
    #[arg(long, short = 'c', value_name = "N")]
    count: Option<u64>,
    /// Start from this consumer group's committed offsets and commit what was printed.
    #[arg(long, short = 'g')]
    group: Option<String>,
    /// `json` (one object per line), or a format string: %t topic, %p partition, %o offset,
    /// %k key, %s value, %T timestamp (ms), %h headers (name=value,…), %K / %S key / value bytes, \n, \t.
    #[arg(long, short = 'f', default_value = "%s\\n")]
    format: String,
    /// Exit at the end of the partitions instead of waiting for more (kcat's -e).
    #[arg(long, short = 'e')]
    exit: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Earliest,
    Latest,
    Offset(u64),
    BeforeEnd(u64),
}

fn start(text: &str) -> Result<Start, String> {
    let invalid = || format!("expected earliest, latest, an offset or -N, got {text:?}");
    match text {
        "earliest" | "beginning" => Ok(Start::Earliest),
        "latest" | "end" => Ok(Start::Latest),
        _ => match text.strip_prefix('-') {
            Some(count) => count.parse().map(Start::BeforeEnd).map_err(|_| invalid()),
            None => text.parse().map(Start::Offset).map_err(|_| invalid()),
        },
    }
}

/// Where reading one partition stands.
#[derive(Debug)]
struct Position {
    partition: u32,
    /// The next offset to read.
    next: u64,
    end: u64,
    /// What the group has committed for the partition, as far as we know.
    committed: Option<u64>,
}

pub fn run(args: &ConsumeArgs) -> anyhow::Result<()> {
    let client = args.target.client();
    let json_lines = args.target.output.json || args.format == "json";
    let mut positions = positions(&client, args)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    loop {
        let mut progressed = false;
        for position in &mut positions {
            let wanted = args
                .count
                .map_or(PEEK_COUNT_MAX, |count| count.saturating_sub(printed).min(PEEK_COUNT_MAX));
            if wanted == 0 {
                break;
            }
            let page = client.get(
                &path(&["topics", &args.topic, "partitions", &position.partition.to_string(), "messages"]),
                &[("offset", position.next.to_string()), ("count", wanted.to_string())],
            )?;
            for message in render::array(&page["messages"]) {
                let line = if json_lines {
                    json_line(&args.topic, position.partition, message)
                } else {
                    formatted(&args.format, &args.topic, position.partition, message)
                };
                if let Err(error) = out.write_all(&line) {
                    return closed_stdout(error);
                }
                printed += 1;
                progressed = true;
            }
            position.next = page["next_offset"].as_u64().unwrap_or(position.next);
            position.end = page["end_offset"].as_u64().unwrap_or(position.end);
        }
        if let Err(error) = out.flush() {
            return closed_stdout(error);
        }
        if let Some(group) = &args.group {
            commit(&client, group, &args.topic, &mut positions)?;
        }
        if args.count.is_some_and(|count| printed >= count) {
            return Ok(());
        }
        if args.exit && positions.iter().all(|position| position.next >= position.end) {
            return Ok(());
        }
        if !progressed {
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

/// Stdout closed by its reader (`| head`) ends the command, successfully.
fn closed_stdout(error: std::io::Error) -> anyhow::Result<()> {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        return Ok(());
    }
    Err(error.into())
}

/// Each partition to read and where to start: the group's committed offset,
/// else `--offset`.
fn positions(client: &Client, args: &ConsumeArgs) -> anyhow::Result<Vec<Position>> {
    let topic = client.get(&path(&["topics", &args.topic]), &[])?;
    let committed = match &args.group {
        Some(group) => client.find(&path(&["groups", group]))?.unwrap_or(Value::Null),
        None => Value::Null,
    };
    let committed_offset = |partition: u32| {
        render::array(&committed["offsets"])
            .iter()
            .find(|offset| offset["topic"] == args.topic.as_str() && offset["partition"] == partition)
            .and_then(|offset| offset["committed_offset"].as_u64())
    };
    let positions: Vec<Position> = render::array(&topic["partitions"])
        .iter()
        .filter_map(|partition| {
            let index = u32::try_from(partition["partition"].as_u64()?).ok()?;
            let (start, end) = (partition["log_start_offset"].as_u64()?, partition["end_offset"].as_u64()?);
            let committed = committed_offset(index);
            let next = committed.unwrap_or(match args.offset {
                Start::Earliest => start,
                Start::Latest => end,
                Start::Offset(offset) => offset,
                Start::BeforeEnd(count) => end.saturating_sub(count).max(start),
            });
            Some(Position {
                partition: index,
                next,
                end,
                committed,
            })
        })
        .filter(|position| args.partition.is_none_or(|wanted| position.partition == wanted))
        .collect();
    if positions.is_empty()
        && let Some(partition) = args.partition
    {
        bail!("topic {:?} has no partition {partition}", args.topic);
    }
    Ok(positions)
}

/// Commits every position the group does not have yet (all of them the
/// first time, so a new group shows every partition it reads).
fn commit(client: &Client, group: &str, topic: &str, positions: &mut [Position]) -> anyhow::Result<()> {
    let offsets: Vec<Value> = positions
        .iter()
        .filter(|position| position.committed != Some(position.next))
        .map(|position| json!({"topic": topic, "partition": position.partition, "offset": position.next}))
        .collect();
    if offsets.is_empty() {
        return Ok(());
    }
    client.post(&path(&["groups", group, "offsets"]), &json!({ "offsets": offsets }))?;
    for position in positions {
        position.committed = Some(position.next);
    }
    Ok(())
}

/// A message as one line of JSON: the API's view plus topic and partition.
fn json_line(topic: &str, partition: u32, message: &Value) -> Vec<u8> {
    let mut message = message.clone();
    if let Some(fields) = message.as_object_mut() {
        fields.retain(|_, value| !value.is_null());
        fields.insert("topic".to_owned(), json!(topic));
        fields.insert("partition".to_owned(), json!(partition));
    }
    let mut line = message.to_string().into_bytes();
    line.push(b'\n');
    line
}

/// The bytes of a key or value (base64 decoded when the API had to encode them); `None` for null.
fn field_bytes(message: &Value, field: &str) -> Option<Vec<u8>> {
    let text = message[field].as_str()?;
    if message[format!("{field}_encoding")] == "base64" {
        return BASE64.decode(text).ok();
    }
    Some(text.as_bytes().to_vec())
}

/// A message through a kcat-style format string.
fn formatted(format: &str, topic: &str, partition: u32, message: &Value) -> Vec<u8> {
    let mut line = Vec::new();
    let mut chars = format.chars();
    let size = |field: &str| field_bytes(message, field).map_or(-1, |bytes| bytes.len() as i64).to_string();
    while let Some(char) = chars.next() {
        match (char, char_after(char, &mut chars)) {
            ('%', Some('t')) => line.extend_from_slice(topic.as_bytes()),
            ('%', Some('p')) => line.extend_from_slice(partition.to_string().as_bytes()),
            ('%', Some('o')) => line.extend_from_slice(render::cell(&message["offset"]).as_bytes()),
            ('%', Some('k')) => line.extend(field_bytes(message, "key").unwrap_or_default()),
            ('%', Some('s')) => line.extend(field_bytes(message, "value").unwrap_or_default()),
            ('%', Some('K')) => line.extend_from_slice(size("key").as_bytes()),
            ('%', Some('S')) => line.extend_from_slice(size("value").as_bytes()),
            ('%', Some('T')) => line.extend_from_slice(render::cell(&message["timestamp_ms"]).as_bytes()),
            ('%', Some('h')) => {
                let headers: Vec<String> = render::array(&message["headers"])
                    .iter()
                    .map(|header| format!("{}={}", render::cell(&header["key"]), header["value"].as_str().unwrap_or_default()))
                    .collect();
                line.extend_from_slice(headers.join(",").as_bytes());
            }
            ('\\', Some('n')) => line.push(b'\n'),
            ('\\', Some('t')) => line.push(b'\t'),
            ('\\', Some('r')) => line.push(b'\r'),
            ('%' | '\\', Some(other)) if other == char => line.extend_from_slice(other.to_string().as_bytes()),
            (char, next) => {
                line.extend_from_slice(char.to_string().as_bytes());
                if let Some(next) = next {
                    line.extend_from_slice(next.to_string().as_bytes());
                }
            }
        }
    }
    line
}

/// The character after an escape (`%` or `\`), none after anything else.
fn char_after(char: char, chars: &mut std::str::Chars<'_>) -> Option<char> {
    if char == '%' || char == '\\' { chars.next() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_string_reads_like_kcat() {
        let message = json!({"offset": 7, "timestamp_ms": 1700, "key": "k1", "key_encoding": "utf8",
            "value": "/wA=", "value_encoding": "base64", "headers": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]});
        assert_eq!(
            formatted("%t/%p@%o %k=%s (%S bytes, %K) %T %h 100%% \\\\\\n", "orders", 2, &message),
            b"orders/2@7 k1=\xff\x00 (2 bytes, 2) 1700 a=1,b=2 100% \\\n".to_vec()
        );
        assert_eq!(
            formatted("%s|%k|%K\\t%x", "t", 0, &json!({"value": null, "key": null})),
            b"||-1\t%x".to_vec()
        );
    }

    #[test]
    fn a_start_offset_parses_as_kcat_takes_it() {
        assert_eq!(start("earliest"), Ok(Start::Earliest));
        assert_eq!(start("end"), Ok(Start::Latest));
        assert_eq!(start("42"), Ok(Start::Offset(42)));
        assert_eq!(start("-5"), Ok(Start::BeforeEnd(5)));
        assert!(start("soon").is_err());
    }
}
