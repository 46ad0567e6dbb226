//! `conveyor definitions export|import`: the broker's topology as
//! RabbitMQ's definitions JSON, through `/api/v1/definitions` — what
//! `rabbitmqctl export_definitions` and `rabbitmqadmin export` write, so a
//! RabbitMQ topology moves here with one import.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use serde_json::Value;

use super::{Target, render};

#[derive(Debug, clap::Args)]
pub struct DefinitionsArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    command: DefinitionsCommand,
}

#[derive(Debug, Subcommand)]
enum DefinitionsCommand {
    /// Write vhosts, users (without password hashes), permissions, queues, exchanges and bindings as JSON.
    Export {
        /// Write to this file instead of stdout.
        #[arg(long, short, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Declare what a definitions file defines (RabbitMQ's format); importing it again changes nothing.
    Import {
        /// The file (`-` reads stdin).
        file: PathBuf,
    },
}

pub fn run(args: &DefinitionsArgs) -> anyhow::Result<()> {
    let client = args.target.client();
    match &args.command {
        DefinitionsCommand::Export { file } => {
            let definitions = client.get("/definitions", &[])?;
            let text = serde_json::to_string_pretty(&definitions)?;
            match file {
                Some(file) => std::fs::write(file, text + "\n").with_context(|| format!("writing {}", file.display()))?,
                None => render::out!("{text}"),
            }
        }
        DefinitionsCommand::Import { file } => {
            let text = if file.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text).context("reading stdin")?;
                text
            } else {
                std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
            };
            let document: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
            let imported = client.post("/definitions", &document)?;
            if args.target.output.json {
                render::json(&imported);
            } else {
                summary(&imported);
            }
        }
    }
    Ok(())
}

fn summary(imported: &Value) {
    let kinds = ["vhosts", "users", "permissions", "exchanges", "queues", "bindings"];
    let counts: Vec<String> = kinds
        .iter()
        .map(|kind| format!("{} {kind}", render::cell(&imported[*kind])))
        .collect();
    render::out!("imported {}", counts.join(", "));
    for user in render::array(&imported["users_without_password"]) {
        render::out!(
            "user {} has no password until one is set (conveyor user passwd): RabbitMQ's password hashes cannot be used",
            render::cell(user)
        );
    }
    for skipped in render::array(&imported["skipped"]) {
        render::out!(
            "skipped {} {}: {}",
            render::cell(&skipped["kind"]),
            render::cell(&skipped["name"]),
            render::cell(&skipped["reason"])
        );
    }
}
