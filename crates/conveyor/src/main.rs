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
      AMQP 0-9-1 on 127.0.0.1:5672, and on HTTP 127.0.0.1:8080 the SQS and
      SNS APIs, the admin API (/api/v1), the web console (/), /metrics and
      /health.
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
  conveyor queue declare jobs --dead-letter-exchange jobs.dlx --message-ttl 60000
  conveyor binding add jobs.dlx jobs.dlq --vhost staging
  conveyor dlq redrive jobs.dlq
  rabbitmqctl export_definitions rabbit.json && conveyor definitions import rabbit.json
  conveyor user add alice --new-password s3cret
  conveyor permission set alice '^alice\\..*' '.*' '.*' --vhost /
      Client commands talk to the admin API at --server (env CONVEYOR_SERVER,
      default http://127.0.0.1:8080) as --user/--password (CONVEYOR_USER,
      CONVEYOR_PASSWORD); --json prints JSON for scripts."
);

/// One broker for Kafka, AMQP 0-9-1 (RabbitMQ), SQS and SNS clients: everything is a durable log.
#[derive(Debug, Parser)]
#[command(name = "conveyor", version, about, after_help = EXAMPLES)]
struct Cli {
    /// `--server`, `--json` and `--quiet` given before the command; each
    /// command also takes them after its name.
    #[command(flatten)]
    target: cli::Target,
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
    /// Queues: declare, list, describe, publish, get (ack or reject), purge, delete.
    Queue(cli::queue::QueueArgs),
    /// Exchanges: declare, list, describe, delete.
    Exchange(cli::exchange::ExchangeArgs),
    /// Bindings from exchanges to queues, exchanges and topics: add, remove, list.
    Binding(cli::binding::BindingArgs),
    /// Dead-letter queues: peek at what died and why, redrive it.
    Dlq(cli::dlq::DlqArgs),
    /// AMQP virtual hosts: list, create, delete.
    Vhost(cli::vhost::VhostArgs),
    /// The cluster: its members, metadata leader and partition groups (status); adding and removing nodes.
    Cluster(cli::cluster::ClusterArgs),
    /// RabbitMQ definitions (vhosts, users, permissions, queues, exchanges, bindings): export, import.
    Definitions(cli::definitions::DefinitionsArgs),
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

impl Command {
    /// The client flags a command takes, to fill in from those given before
    /// it (`conveyor --json --server URL topic list`).
    fn target_mut(&mut self) -> Option<&mut cli::Target> {
        match self {
            Command::Topic(args) => Some(&mut args.target),
            Command::Group(args) => Some(&mut args.target),
            Command::Queue(args) => Some(&mut args.target),
            Command::Exchange(args) => Some(&mut args.target),
            Command::Binding(args) => Some(&mut args.target),
            Command::Dlq(args) => Some(&mut args.target),
            Command::Produce(args) => Some(&mut args.target),
            Command::Consume(args) => Some(&mut args.target),
            Command::Vhost(args) => Some(&mut args.target),
            Command::Cluster(args) => Some(&mut args.target),
            Command::Definitions(args) => Some(&mut args.target),
            Command::User(args) => Some(&mut args.target),
            Command::Permission(args) => Some(&mut args.target),
            Command::Serve(_) | Command::Bench(_) | Command::Completions { .. } => None,
        }
    }
}

fn main() -> ExitCode {
    let Cli { target, mut command } = Cli::parse();
    if let Some(own) = command.target_mut() {
        own.inherit(&target);
    } else if let Command::Bench(bench) = &mut command
        && let Some(output) = bench.output_mut()
    {
        output.inherit(&target.output);
    }
    let result = match command {
        Command::Serve(args) => serve::run(&args),
        Command::Bench(command) => bench::run(&command),
        Command::Topic(args) => cli::topic::run(&args),
        Command::Group(args) => cli::group::run(&args),
        Command::Queue(args) => cli::queue::run(&args),
        Command::Exchange(args) => cli::exchange::run(&args),
        Command::Binding(args) => cli::binding::run(&args),
        Command::Dlq(args) => cli::dlq::run(&args),
        Command::Vhost(args) => cli::vhost::run(&args),
        Command::Cluster(args) => cli::cluster::run(&args),
        Command::Definitions(args) => cli::definitions::run(&args),
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
