//! `conveyor cluster status`: the metadata group as the node asked sees
//! it (members with their cluster and door addresses, leader, term, commit
//! index, each replica's lag) and every replicated partition's group
//! (replicas, leader, term, in-sync replicas, each replica's lag on the
//! leader), through `GET /api/v1/cluster`; `conveyor cluster add|remove`:
//! a node joins (learner, then voter) or leaves the metadata group,
//! through `POST /api/v1/cluster/members` and `DELETE
//! /api/v1/cluster/members/{id}`.

use clap::Subcommand;

use super::client::path;
use super::{Target, render};

#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// The members, the metadata leader, term, commit index and each
    /// replica's lag; each partition group's leader, term, ISR and lag.
    Status,
    /// Adds a running node (started with its own --node-id and --peers):
    /// a learner caught up with the metadata log, then a voter.
    Add {
        /// Its --node-id.
        node_id: u64,
        /// Its --cluster-addr, HOST:PORT.
        cluster_addr: String,
    },
    /// Removes a node from the metadata group (its partition replicas stay).
    Remove {
        /// Its --node-id.
        node_id: u64,
    },
}

pub fn run(args: &ClusterArgs) -> anyhow::Result<()> {
    let client = args.target.client();
    let answer = match &args.command {
        ClusterCommand::Status => client.get("/cluster", &[])?,
        ClusterCommand::Add { node_id, cluster_addr } => {
            let body = serde_json::json!({"node_id": node_id, "cluster_addr": cluster_addr});
            let added = client.post("/cluster/members", &body)?;
            if !args.target.output.json {
                render::out!("node {node_id} is a member");
            }
            added
        }
        ClusterCommand::Remove { node_id } => {
            let removed = client.delete(&path(&["cluster", "members", &node_id.to_string()]), &[])?;
            if !args.target.output.json {
                render::out!("node {node_id} is no longer a member");
            }
            removed
        }
    };
    if args.target.output.json {
        render::json(&answer);
        return Ok(());
    }
    if !matches!(args.command, ClusterCommand::Status) {
        return Ok(());
    }
    render::fields(vec![
        ("node", render::cell(&answer["node_id"])),
        ("role", render::cell(&answer["role"])),
        ("leader", render::cell(&answer["leader_id"])),
        ("term", render::cell(&answer["term"])),
        ("commit index", render::cell(&answer["commit_index"])),
        ("applied index", render::cell(&answer["applied_index"])),
    ]);
    render::items(
        &answer["members"],
        &[
            ("NODE", "node_id"),
            ("CLUSTER", "cluster_addr"),
            ("KAFKA", "kafka_addr"),
            ("AMQP", "amqp_addr"),
            ("HTTP", "http_addr"),
            ("VOTER", "voter"),
            ("MATCHED", "matched_index"),
            ("LAG", "lag"),
        ],
    );
    let groups = render::array(&answer["partition_groups"]);
    if !groups.is_empty() {
        let rows = groups
            .iter()
            .map(|group| {
                let lag = render::array(&group["lag"])
                    .iter()
                    .map(|replica| format!("{}:{}", render::cell(&replica["node_id"]), render::cell(&replica["lag"])))
                    .collect::<Vec<_>>();
                vec![
                    render::cell(&group["topic"]),
                    render::cell(&group["partition"]),
                    render::cell(&group["leader_id"]),
                    render::cell(&group["term"]),
                    render::cell(&group["replicas"]),
                    render::cell(&group["in_sync"]),
                    render::cell(&group["role"]),
                    if lag.is_empty() { "-".to_owned() } else { lag.join(", ") },
                ]
            })
            .collect();
        render::table(
            &["TOPIC", "PARTITION", "LEADER", "TERM", "REPLICAS", "ISR", "ROLE HERE", "LAG"],
            rows,
        );
    }
    Ok(())
}
