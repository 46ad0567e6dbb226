//! The client commands (`conveyor topic …`, `group`, `queue`, `exchange`,
//! `dlq`, `produce`, `consume`, `completions`): each is a few calls to a
//! broker's REST admin API, printed as tables for people or, with `--json`,
//! as the API's JSON for scripts. One file per resource family; they know
//! the API's paths and shapes, nothing of the broker's internals.

pub mod client;
pub mod consume;
pub mod dlq;
pub mod exchange;
pub mod group;
pub mod produce;
pub mod queue;
pub mod render;
pub mod topic;

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
        self.output.inherit(&outer.output);
    }

    pub fn client(&self) -> Client {
        Client::new(self.server.clone().unwrap_or_else(|| format!("http://{DEFAULT_HTTP_ADDR}")))
    }
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
