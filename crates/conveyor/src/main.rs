//! The `conveyor` binary: parses the command line, then runs the broker
//! (`serve`) or a client-side tool. The only crate that sees every other.

mod bench;
mod serve;
mod settings;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Huge reservations from hostile length fields must not abort the broker
/// (see the `conveyor-alloc` crate).
#[global_allocator]
static ALLOCATOR: conveyor_alloc::LazyHugeAllocator = conveyor_alloc::LazyHugeAllocator;

const EXAMPLES: &str = "\
Examples:
  conveyor serve
      Run the broker with data in ./conveyor-data; Kafka on 127.0.0.1:9092,
      AMQP on 127.0.0.1:5672, HTTP (health, later SQS, admin API, console) on 127.0.0.1:8080.
  conveyor serve --data-dir /var/lib/conveyor --http-addr 0.0.0.0:8080
  CONVEYOR_DATA_DIR=/srv/conveyor conveyor serve --log-format json
  conveyor serve --config conveyor.toml
  curl -fsS localhost:8080/health";

/// One broker for Kafka, AMQP 0-9-1 and SQS clients: everything is a durable log.
#[derive(Debug, Parser)]
#[command(name = "conveyor", version, about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker until SIGTERM or SIGINT.
    #[command(after_help = EXAMPLES)]
    Serve(settings::ServeArgs),
    /// Measure a broker (Conveyor or any other speaking the protocol).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(&args),
        Command::Bench(command) => bench::run(&command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("conveyor: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
