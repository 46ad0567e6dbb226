//! `conveyor exchange list|describe`: exchanges and their bindings, through
//! `/api/v1/exchanges` (the default exchange is `amq.default` there).

use clap::Subcommand;

use super::client::path;
use super::{Target, render};

#[derive(Debug, clap::Args)]
pub struct ExchangeArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    command: ExchangeCommand,
}

#[derive(Debug, Subcommand)]
enum ExchangeCommand {
    /// List exchanges with their kind and number of bindings.
    List,
    /// An exchange and its bindings (`amq.default` names the default exchange).
    Describe { name: String },
}

pub fn run(args: &ExchangeArgs) -> anyhow::Result<()> {
    let client = args.target.client();
    let json_output = args.target.output.json;
    match &args.command {
        ExchangeCommand::List => {
            let exchanges = client.get("/exchanges", &[])?;
            if json_output {
                render::json(&exchanges);
                return Ok(());
            }
            let rows = render::array(&exchanges)
                .iter()
                .map(|exchange| {
                    vec![
                        render::exchange(&exchange["name"]),
                        render::cell(&exchange["kind"]),
                        render::cell(&exchange["durable"]),
                        render::cell(&exchange["internal"]),
                        render::cell(&exchange["bindings"]),
                    ]
                })
                .collect();
            render::table(&["EXCHANGE", "KIND", "DURABLE", "INTERNAL", "BINDINGS"], rows);
        }
        ExchangeCommand::Describe { name } => {
            let exchange = client.get(&path(&["exchanges", name]), &[])?;
            if json_output {
                render::json(&exchange);
                return Ok(());
            }
            render::out!(
                "exchange {name}  kind {}  durable {}",
                render::cell(&exchange["kind"]),
                render::cell(&exchange["durable"])
            );
            render::items(
                &exchange["bindings_from"],
                &[
                    ("DESTINATION", "destination"),
                    ("KIND", "destination_kind"),
                    ("BINDING KEY", "binding_key"),
                ],
            );
        }
    }
    Ok(())
}
