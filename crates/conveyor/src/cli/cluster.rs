//! `conveyor cluster status`: the metadata group as the node asked sees
//! it (members with their cluster and door addresses, leader, term, commit
//! index, each replica's lag), through `GET /api/v1/cluster`.

use clap::Subcommand;

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
    /// The members, the metadata leader, term, commit index and each replica's lag.
    Status,
}

pub fn run(args: &ClusterArgs) -> anyhow::Result<()> {
    let client = args.target.client();
    let answer = match &args.command {
        ClusterCommand::Status => client.get("/cluster", &[])?,
    };
    if args.target.output.json {
        render::json(&answer);
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
    Ok(())
}
