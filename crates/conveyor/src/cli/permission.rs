//! `conveyor permission set|clear|list`: RabbitMQ's permission entries
//! (per user and vhost: configure, write, read regular expressions) through
//! `/api/v1/permissions`, as `rabbitmqctl set_permissions` sets them.

use clap::Subcommand;
use serde_json::json;

use super::client::path;
use super::{Target, render};

#[derive(Debug, clap::Args)]
pub struct PermissionArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    command: PermissionCommand,
}

#[derive(Debug, Subcommand)]
enum PermissionCommand {
    /// Set a user's entry in a vhost: `conveyor permission set alice '^alice\..*' '.*' '.*'`.
    Set {
        /// The user (its own id: `--user` is who logs in).
        #[arg(id = "grantee", value_name = "USER")]
        user: String,
        /// Names the user may declare and delete.
        configure: String,
        /// Names the user may publish to and bind into.
        write: String,
        /// Names the user may consume from, get, purge and bind from.
        read: String,
    },
    /// Remove a user's entry in a vhost.
    Clear {
        #[arg(id = "grantee", value_name = "USER")]
        user: String,
    },
    /// List every entry.
    List,
}

pub fn run(args: &PermissionArgs) -> anyhow::Result<()> {
    let client = args.target.client();
    let vhost = args.target.vhost_or_default();
    match &args.command {
        PermissionCommand::Set {
            user,
            configure,
            write,
            read,
        } => {
            let body = json!({ "configure": configure, "write": write, "read": read });
            client.put(&path(&["permissions", vhost, user]), &body)?;
            render::out!("permission of {user} in vhost {vhost} set");
        }
        PermissionCommand::Clear { user } => {
            client.delete(&path(&["permissions", vhost, user]), &[])?;
            render::out!("permission of {user} in vhost {vhost} cleared");
        }
        PermissionCommand::List => {
            let entries = client.get("/permissions", &[])?;
            if args.target.output.json {
                render::json(&entries);
                return Ok(());
            }
            render::items(
                &entries,
                &[
                    ("USER", "user"),
                    ("VHOST", "vhost"),
                    ("CONFIGURE", "configure"),
                    ("WRITE", "write"),
                    ("READ", "read"),
                ],
            );
        }
    }
    Ok(())
}
