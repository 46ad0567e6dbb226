//! `conveyor group list|describe|reset-offsets|delete`: Kafka groups of
//! every kind (classic, consumer, share), their committed offsets and lag,
//! and a share group's share-partition start offsets, through `/api/v1/groups`.

use clap::Subcommand;
use serde_json::{Value, json};

use super::client::path;
use super::{Target, render};

#[derive(Debug, clap::Args)]
pub struct GroupArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// List groups with their type, state, members and total lag.
    List,
    /// A group's committed offsets and lag per partition (a share group's
    /// share-partition start offsets), and its members.
    Describe { group: String },
    /// Move a group's committed offsets; only while it has no members.
    ResetOffsets {
        group: String,
        /// Only this topic's partitions (all of them) [default: every partition the group committed].
        #[arg(long)]
        topic: Option<String>,
        #[command(flatten)]
        to: ResetTo,
    },
    /// Delete a group with no members, and its committed offsets.
    Delete { group: String },
}

/// Where `reset-offsets` moves the offsets: exactly one of these.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct ResetTo {
    /// Each partition's first stored offset.
    #[arg(long)]
    to_earliest: bool,
    /// Each partition's end offset (skip everything stored).
    #[arg(long)]
    to_latest: bool,
    /// The first offset at or after this time (ms since the epoch).
    #[arg(long, value_name = "MS")]
    to_timestamp: Option<i64>,
    /// This offset, clamped to each partition's stored range.
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<i64>,
}

impl ResetTo {
    fn request(&self, topic: Option<&str>) -> Value {
        let mut request = match (self.to_timestamp, self.to_offset) {
            (Some(timestamp_ms), _) => json!({"to": "timestamp", "timestamp_ms": timestamp_ms}),
            (_, Some(offset)) => json!({"to": "offset", "offset": offset}),
            _ if self.to_latest => json!({"to": "latest"}),
            _ => json!({"to": "earliest"}),
        };
        if let Some(topic) = topic {
            request["topic"] = json!(topic);
        }
        request
    }
}

pub fn run(args: &GroupArgs) -> anyhow::Result<()> {
    let client = args.target.client();
    let json_output = args.target.output.json;
    match &args.command {
        GroupCommand::List => {
            let groups = client.get("/groups", &[])?;
            if json_output {
                render::json(&groups);
            } else {
                render::items(
                    &groups,
                    &[
                        ("GROUP", "group_id"),
                        ("TYPE", "group_type"),
                        ("STATE", "state"),
                        ("MEMBERS", "members"),
                        ("LAG", "lag"),
                    ],
                );
            }
        }
        GroupCommand::Describe { group } => {
            let detail = client.get(&path(&["groups", group]), &[])?;
            if json_output {
                render::json(&detail);
            } else {
                describe(&detail);
            }
        }
        GroupCommand::ResetOffsets { group, topic, to } => {
            let reset = client.post(&path(&["groups", group, "reset-offsets"]), &to.request(topic.as_deref()))?;
            if json_output {
                render::json(&reset);
            } else {
                offsets(&reset["offsets"]);
            }
        }
        GroupCommand::Delete { group } => {
            client.delete(&path(&["groups", group]), &[])?;
            if !json_output {
                render::out!("deleted group {group}");
            }
        }
    }
    Ok(())
}

fn describe(detail: &Value) {
    let members = render::array(&detail["members"]);
    render::out!(
        "group {}  type {}  state {}  epoch {}  members {}  lag {}",
        render::cell(&detail["group_id"]),
        render::cell(&detail["group_type"]),
        render::cell(&detail["state"]),
        render::cell(&detail["generation_id"]),
        members.len(),
        render::cell(&detail["lag"]),
    );
    if detail["group_type"] == "share" {
        render::items(
            &detail["share_offsets"],
            &[("TOPIC", "topic"), ("PARTITION", "partition"), ("START", "start_offset")],
        );
    } else {
        offsets(&detail["offsets"]);
    }
    if !members.is_empty() {
        let rows = members
            .iter()
            .map(|member| {
                let assigned: Vec<String> = render::array(&member["assignments"])
                    .iter()
                    .map(|assignment| {
                        format!(
                            "{}[{}]",
                            render::cell(&assignment["topic"]),
                            render::cell(&assignment["partitions"])
                        )
                    })
                    .collect();
                vec![
                    render::cell(&member["member_id"]),
                    render::cell(&member["member_epoch"]),
                    render::cell(&member["client_id"]),
                    render::cell(&member["client_host"]),
                    assigned.join(" "),
                ]
            })
            .collect();
        render::table(&["MEMBER", "EPOCH", "CLIENT", "HOST", "ASSIGNED"], rows);
    }
}

fn offsets(offsets: &Value) {
    render::items(
        offsets,
        &[
            ("TOPIC", "topic"),
            ("PARTITION", "partition"),
            ("COMMITTED", "committed_offset"),
            ("END", "end_offset"),
            ("LAG", "lag"),
        ],
    );
}
