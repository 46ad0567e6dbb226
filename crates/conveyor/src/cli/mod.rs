//! The client commands (`conveyor topic …`, `group`, `queue`, `exchange`,
//! `binding`, `dlq`, `produce`, `consume`, `user`, `permission`, `vhost`, `definitions`,
//! `cluster`, `completions`): each is a few calls to a
//! broker's REST admin API, printed as tables for people or, with `--json`,
//! as the API's JSON for scripts. One file per resource family; they know
//! the API's paths and shapes, nothing of the broker's internals.

pub mod binding;
pub mod client;
pub mod cluster;
pub mod consume;
pub mod definitions;
pub mod dlq;
pub mod exchange;
pub mod group;
pub mod permission;
pub mod produce;
pub mod queue;
pub mod render;
pub mod topic;
pub mod user;
pub mod vhost;

use crate::bench::report::Output;
use crate::settings::DEFAULT_HTTP_ADDR;

pub use client::Client;

/// Which broker a client command talks to and how it prints: flags every
/// client command takes, before or after its subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The broker's HTTP listener (its admin API) [default: http://127.0.0.1:8080].
    #[arg(long, global = true, env = "CONVEYOR_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// The user to log in as (HTTP Basic); without one, the anonymous identity (loopback only, by default).
    #[arg(long, global = true, env = "CONVEYOR_USER", value_name = "NAME")]
    pub user: Option<String>,
    /// The user's password.
    #[arg(long, global = true, env = "CONVEYOR_PASSWORD", value_name = "PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// The AMQP virtual host of the queues, exchanges, bindings and permissions named [default: /].
    #[arg(long, global = true, env = "CONVEYOR_VHOST", value_name = "VHOST")]
    pub vhost: Option<String>,
    #[command(flatten)]
    pub output: Output,
}

impl Target {
    /// Takes what `outer` (the flags before the command name) set and this
    /// one did not.
    pub fn inherit(&mut self, outer: &Target) {
        if self.server.is_none() {
            self.server.clone_from(&outer.server);
        }
        if self.user.is_none() {
            self.user.clone_from(&outer.user);
        }
        if self.password.is_none() {
            self.password.clone_from(&outer.password);
        }
        if self.vhost.is_none() {
            self.vhost.clone_from(&outer.vhost);
        }
        self.output.inherit(&outer.output);
    }

    /// The vhost named by `--vhost`, `/` when none is.
    pub fn vhost_or_default(&self) -> &str {
        self.vhost.as_deref().unwrap_or("/")
    }

    pub fn client(&self) -> Client {
        let credentials = self.user.clone().map(|user| (user, self.password.clone().unwrap_or_default()));
        Client::new(
            self.server.clone().unwrap_or_else(|| format!("http://{DEFAULT_HTTP_ADDR}")),
            credentials,
        )
    }
}

/// An `x-…=value` argument of a declaration (`--argument`): the value as
/// JSON when it reads as JSON (`x-max-length=10` is an integer,
/// `x-single-active-consumer=true` a boolean), else as a string.
pub fn argument(text: &str) -> Result<(String, serde_json::Value), String> {
    let (key, value) = key_value(text)?;
    let value = serde_json::from_str(&value).unwrap_or(serde_json::Value::String(value));
    Ok((key, value))
}

/// A `key=value` argument (`--config`, `--set`, `--header`).
pub fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// Prints the completion script for `shell` of the whole command line. The
/// script is built in memory first: the generator panics on a write error,
/// and a closed stdout (`| head -1`) is not an error.
pub fn completions(shell: clap_complete::Shell, command: &mut clap::Command) {
    use std::io::Write as _;
    let mut script = Vec::new();
    clap_complete::generate(shell, command, "conveyor", &mut script);
    let _ = std::io::stdout().write_all(&script);
}
