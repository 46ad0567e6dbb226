//! `conveyor vhost list|create|delete`: AMQP virtual hosts, through
//! `/api/v1/vhosts`. What is in one is named with `--vhost` on the queue,
//! exchange, binding and dlq commands.

use clap::Subcommand;

use super::client::path;
use super::{Target, render};

#[derive(Debug, clap::Args)]
pub struct VhostArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    command: VhostCommand,
}

#[derive(Debug, Subcommand)]
enum VhostCommand {
    /// List virtual hosts with their numbers of queues and exchanges.
    List,
    /// Create a virtual host with its predeclared exchanges (an existing one is left as it is).
    Create { name: String },
    /// Delete a virtual host with its queues (and their messages), exchanges and bindings.
    Delete { name: String },
}

pub fn run(args: &VhostArgs) -> anyhow::Result<()> {
    let client = args.target.client();
    let json_output = args.target.output.json;
    let answer = match &args.command {
        VhostCommand::List => {
            let vhosts = client.get("/vhosts", &[])?;
            if !json_output {
                render::items(&vhosts, &[("VHOST", "name"), ("QUEUES", "queues"), ("EXCHANGES", "exchanges")]);
            }
            vhosts
        }
        VhostCommand::Create { name } => {
            let created = client.put(&path(&["vhosts", name]), &serde_json::Value::Null)?;
            if !json_output {
                let what = if created.is_null() { "exists already" } else { "created" };
                render::out!("vhost {name} {what}");
            }
            created
        }
        VhostCommand::Delete { name } => {
            let deleted = client.delete(&path(&["vhosts", name]), &[])?;
            if !json_output {
                render::out!("deleted vhost {name}");
            }
            deleted
        }
    };
    if json_output {
        render::json(&answer);
    }
    Ok(())
}
