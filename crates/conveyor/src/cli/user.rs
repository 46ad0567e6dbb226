//! `conveyor user add|delete|list|passwd`: the broker's users, through
//! `/api/v1/users` (the broker hashes passwords; none is shown back).

use clap::Subcommand;
use serde_json::{Value, json};

use super::client::path;
use super::{Target, render};

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user, or replace its tags and keys (and password, when given).
    Add {
        name: String,
        /// Its password (hashed into SCRAM credentials by the broker).
        #[arg(long = "new-password", value_name = "PASSWORD")]
        new_password: Option<String>,
        /// `administrator` or `monitoring`; repeatable.
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// With --aws-secret-access-key: the key SQS and SNS requests are signed with.
        #[arg(long, value_name = "ID", requires = "aws_secret_access_key")]
        aws_access_key_id: Option<String>,
        #[arg(long, value_name = "SECRET", requires = "aws_access_key_id")]
        aws_secret_access_key: Option<String>,
    },
    /// Delete a user and its permission entries.
    Delete { name: String },
    /// List users with their tags.
    List,
    /// Set a user's password.
    Passwd {
        name: String,
        #[arg(long = "new-password", value_name = "PASSWORD")]
        new_password: String,
    },
}

pub fn run(args: &UserArgs) -> anyhow::Result<()> {
    let client = args.target.client();
    match &args.command {
        UserCommand::Add {
            name,
            new_password,
            tags,
            aws_access_key_id,
            aws_secret_access_key,
        } => {
            let mut body = json!({ "tags": tags });
            if let Some(password) = new_password {
                body["password"] = Value::from(password.as_str());
            }
            if let (Some(id), Some(secret)) = (aws_access_key_id, aws_secret_access_key) {
                body["aws_access_key_id"] = Value::from(id.as_str());
                body["aws_secret_access_key"] = Value::from(secret.as_str());
            }
            client.put(&path(&["users", name]), &body)?;
            render::out!("user {name} set");
        }
        UserCommand::Delete { name } => {
            client.delete(&path(&["users", name]), &[])?;
            render::out!("user {name} deleted");
        }
        UserCommand::List => {
            let users = client.get("/users", &[])?;
            if args.target.output.json {
                render::json(&users);
                return Ok(());
            }
            let rows = render::array(&users)
                .iter()
                .map(|user| {
                    let joined = |key: &str| {
                        render::array(&user[key])
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    vec![
                        render::cell(&user["name"]),
                        joined("tags"),
                        joined("mechanisms"),
                        render::cell(&user["aws_access_key_id"]),
                    ]
                })
                .collect();
            render::table(&["USER", "TAGS", "MECHANISMS", "AWS ACCESS KEY"], rows);
        }
        UserCommand::Passwd { name, new_password } => {
            client.put(&path(&["users", name, "password"]), &json!({ "password": new_password }))?;
            render::out!("password of {name} changed");
        }
    }
    Ok(())
}
