//! The `conveyor` binary: parses the command line, then runs the broker
//! (`serve`), a benchmark (`bench`) or a client command of the admin API
//! (`topic`, `consume`, … in `cli/`). The only crate that sees every other.

mod bench;
mod cli;
mod serve;
mod settings;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Huge reservations from hostile length fields must not abort the broker
/// (see the `conveyor-alloc` crate).
#[global_allocator]
static ALLOCATOR: conveyor_alloc::LazyHugeAllocator = conveyor_alloc::LazyHugeAllocator;

/// The broker's examples, for `conveyor --help` and `conveyor serve --help`.
macro_rules! serve_examples {
    () => {
        "\
Examples:
  conveyor serve
      Run the broker with data in ./conveyor-data; Kafka on 127.0.0.1:9092,
      AMQP on 127.0.0.1:5672, HTTP (health, SQS, admin API) on 127.0.0.1:8080.
  conveyor serve --data-dir /var/lib/conveyor --http-addr 0.0.0.0:8080
  CONVEYOR_DATA_DIR=/srv/conveyor conveyor serve --log-format json
  conveyor serve --config conveyor.toml
  curl -fsS localhost:8080/health"
    };
}

const SERVE_EXAMPLES: &str = serve_examples!();

const EXAMPLES: &str = concat!(
    serve_examples!(),
    "

  conveyor topic create orders --partitions 3
  printf 'customer-7:hello\\n' | conveyor produce orders --key-delimiter :
  conveyor consume orders --group billing --exit --format '%p/%o %k %s\\n'
  conveyor group describe billing
  conveyor dlq redrive jobs.dlq
  conveyor user add alice --new-password s3cret
  conveyor permission set alice '^alice\\..*' '.*' '.*' --vhost /
      Client commands talk to the admin API at --server (env CONVEYOR_SERVER,
      default http://127.0.0.1:8080) as --user/--password (CONVEYOR_USER,
      CONVEYOR_PASSWORD); --json prints JSON for scripts."
);

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
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(settings::ServeArgs),
    /// Measure a broker (Conveyor or any other speaking the protocol).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Kafka topics: create, list, describe, delete, show and change configs.
    Topic(cli::topic::TopicArgs),
    /// Consumer groups: list, describe with lag per partition, reset offsets, delete.
    Group(cli::group::GroupArgs),
    /// Queues: list, describe, purge, delete.
    Queue(cli::queue::QueueArgs),
    /// Exchanges and their bindings.
    Exchange(cli::exchange::ExchangeArgs),
    /// Dead-letter queues: peek at what died and why, redrive it.
    Dlq(cli::dlq::DlqArgs),
    /// Users: add, delete, list, change a password.
    User(cli::user::UserArgs),
    /// RabbitMQ permission entries of users in vhosts: set, clear, list.
    Permission(cli::permission::PermissionArgs),
    /// Append lines from stdin to a topic, one message per line (like kcat -P).
    Produce(cli::produce::ProduceArgs),
    /// Print a topic's messages (like kcat -C).
    Consume(cli::consume::ConsumeArgs),
    /// Print a shell completion script (e.g. `conveyor completions bash > /etc/bash_completion.d/conveyor`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(&args),
        Command::Bench(command) => bench::run(&command),
        Command::Topic(args) => cli::topic::run(&args),
        Command::Group(args) => cli::group::run(&args),
        Command::Queue(args) => cli::queue::run(&args),
        Command::Exchange(args) => cli::exchange::run(&args),
        Command::Dlq(args) => cli::dlq::run(&args),
        Command::User(args) => cli::user::run(&args),
        Command::Permission(args) => cli::permission::run(&args),
        Command::Produce(args) => cli::produce::run(&args),
        Command::Consume(args) => cli::consume::run(&args),
        Command::Completions { shell } => {
            cli::completions(shell, &mut Cli::command());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("conveyor: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
