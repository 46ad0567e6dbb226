//! `conveyor serve`: opens the broker's state, binds the listeners (the TLS
//! ones when configured), reports readiness, re-reads the TLS certificate on
//! SIGHUP, and on SIGTERM/SIGINT stops accepting, lets in-flight requests
//! finish, flushes and fsyncs every log, and exits 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use conveyor_core::Broker;
use conveyor_core::auth::{AnonymousAccess, Permission, is_loopback};
use conveyor_http::HttpState;
use conveyor_tls::{Listener, ServerTls};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::settings::{LogFormat, ServeArgs, Settings};

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(args)?;
    init_tracing(settings.log_format);
    // Before any log opens: every log of the process is served by this pool.
    let pool = conveyor_log::IoPool::install_default(settings.io_pool).context("starting the log I/O threads")?;
    info!(
        writer_threads = pool.writer_threads(),
        open_files_max = pool.open_files_max(),
        "log I/O pool started"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("conveyor")
        // Only the runtime's workers park and unpark through these hooks
        // (its blocking threads do not): they mark the threads on which a
        // blocking file operation is a bug (`conveyor_log::reactor_guard`).
        .on_thread_park(conveyor_log::reactor_guard::mark_reactor_thread)
        .on_thread_unpark(conveyor_log::reactor_guard::mark_reactor_thread)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(settings))
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONVEYOR_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal, not in files or pipes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    // Listeners first: a busy port or an unreadable certificate fails
    // before the data directory is created or locked, so a failed start
    // leaves nothing behind.
    let http = bind(settings.http_addr, "HTTP", "--http-addr", "CONVEYOR_HTTP_ADDR").await?;
    let kafka = bind(settings.kafka_addr, "Kafka", "--kafka-addr", "CONVEYOR_KAFKA_ADDR").await?;
    let amqp = bind(settings.amqp_addr, "AMQP", "--amqp-addr", "CONVEYOR_AMQP_ADDR").await?;
    let server_tls = match &settings.tls {
        Some(files) => Some(ServerTls::load(files.clone()).context("loading the [tls] certificate and key")?),
        None => None,
    };
    let kafka_tls = bind_tls(
        settings.kafka_tls_addr,
        server_tls.as_ref(),
        "Kafka TLS",
        "--kafka-tls-addr",
        "CONVEYOR_KAFKA_TLS_ADDR",
    )
    .await?;
    let amqp_tls = bind_tls(
        settings.amqp_tls_addr,
        server_tls.as_ref(),
        "AMQP TLS",
        "--amqp-tls-addr",
        "CONVEYOR_AMQP_TLS_ADDR",
    )
    .await?;
    let https = bind_tls(
        settings.https_addr,
        server_tls.as_ref(),
        "HTTPS",
        "--https-addr",
        "CONVEYOR_HTTPS_ADDR",
    )
    .await?;
    let addresses = Addresses {
        http: http.local_addr()?,
        kafka: kafka.local_addr()?,
        amqp: amqp.local_addr()?,
        kafka_tls: kafka_tls.as_ref().map(Listener::local_addr).transpose()?,
        amqp_tls: amqp_tls.as_ref().map(Listener::local_addr).transpose()?,
        https: https.as_ref().map(Listener::local_addr).transpose()?,
    };

    let broker_config = settings.broker.clone();
    let data_dir = broker_config.data_dir.clone();
    let broker = tokio::task::spawn_blocking(move || Broker::open(broker_config))
        .await
        .context("opening the broker's state")?
        .with_context(|| format!("opening data directory {}", data_dir.display()))?;
    let broker = Arc::new(broker);
    for name in &settings.amqp_vhosts {
        broker
            .create_vhost(name)
            .await
            .with_context(|| format!("creating vhost {name:?} from the config file"))?;
    }
    broker.authorizer().set_policy(settings.auth);
    broker
        .apply_configured_users(&settings.users, &alias_permissions(&settings, &broker))
        .await
        .context("applying the config file's users")?;

    let state = HttpState::new(Arc::clone(&broker));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // A cluster node joins its metadata group once its doors are bound, so
    // it advertises where they really are.
    let cluster = match &settings.cluster {
        Some(config) => {
            let doors = conveyor_cluster::Doors {
                kafka_addr: addresses.kafka.to_string(),
                amqp_addr: addresses.amqp.to_string(),
                http_addr: addresses.http.to_string(),
            };
            let node = conveyor_cluster::ClusterNode::start(config.clone(), &settings.broker.data_dir.join("cluster"), doors)
                .await
                .context("starting the cluster node")?;
            state.set_cluster(Arc::clone(&node));
            conveyor_cluster::catalog_link::link(&node, &broker, shutdown_rx.clone());
            Some(node)
        }
        None => None,
    };

    let app = conveyor_http::router(Arc::clone(&state));
    let mut http_task = tokio::spawn(conveyor_http::serve(
        http,
        app.clone(),
        Arc::clone(broker.limits()),
        shutdown_rx.clone(),
    ));
    let https_task = https.map(|https| tokio::spawn(conveyor_http::serve(https, app, Arc::clone(broker.limits()), shutdown_rx.clone())));

    let limits = broker.limits().config().clone();
    let kafka_context = Arc::new(conveyor_kafka::Context {
        broker: Arc::clone(&broker),
        config: conveyor_kafka::KafkaConfig {
            frame_bytes_max: usize::try_from(limits.kafka_request_bytes_max).unwrap_or(usize::MAX),
            // A cluster node is the Kafka broker of its node id.
            node_id: settings
                .cluster
                .as_ref()
                .map_or(1, |cluster| i32::try_from(cluster.node_id).unwrap_or(i32::MAX)),
            ..conveyor_kafka::KafkaConfig::default()
        },
        share_sessions: conveyor_kafka::share_session::ShareSessions::default(),
    });
    let mut door_tasks = vec![tokio::spawn(conveyor_kafka::serve(
        kafka,
        Arc::clone(&kafka_context),
        shutdown_rx.clone(),
    ))];
    if let Some(kafka_tls) = kafka_tls {
        door_tasks.push(tokio::spawn(conveyor_kafka::serve(kafka_tls, kafka_context, shutdown_rx.clone())));
    }
    let amqp_context = Arc::new(conveyor_amqp::Context::new(
        Arc::clone(&broker),
        conveyor_amqp::AmqpConfig {
            channel_max: limits.amqp_channel_max,
            message_bytes_max: limits.amqp_message_bytes_max,
            ..conveyor_amqp::AmqpConfig::default()
        },
    ));
    door_tasks.push(tokio::spawn(conveyor_amqp::serve(
        amqp,
        Arc::clone(&amqp_context),
        shutdown_rx.clone(),
    )));
    if let Some(amqp_tls) = amqp_tls {
        door_tasks.push(tokio::spawn(conveyor_amqp::serve(amqp_tls, amqp_context, shutdown_rx.clone())));
    }
    // Session timeouts and delayed rebalances of consumer groups.
    tokio::spawn(Arc::clone(broker.groups()).run_timers(shutdown_rx.clone()));
    // Transactions decided before a restart finished; open ones past their timeout aborted.
    tokio::spawn(Arc::clone(&broker).run_transaction_timers(shutdown_rx.clone()));
    // Queues left unused past their x-expires; messages past their TTL.
    tokio::spawn(Arc::clone(&broker).run_queue_timers(shutdown_rx.clone()));
    // Compaction of topics with cleanup.policy=compact.
    tokio::spawn(Arc::clone(&broker).run_log_cleaner(shutdown_rx.clone()));
    // Disk and memory alarms, which block publishers.
    broker
        .alarms()
        .set_limits(settings.limits.disk_free_min_bytes, settings.limits.memory_max_bytes);
    tokio::spawn(Arc::clone(broker.alarms()).run(shutdown_rx.clone()));
    // Message rates for the admin API and console.
    tokio::spawn(Arc::clone(broker.stats()).run_rate_sampler(shutdown_rx.clone()));

    // Handlers before readiness: a supervisor may signal as soon as it sees
    // the ready line, and a signal before them would kill the process
    // without flushing anything.
    let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;

    let mut exposed = vec![addresses.http, addresses.kafka, addresses.amqp];
    exposed.extend([addresses.kafka_tls, addresses.amqp_tls, addresses.https].into_iter().flatten());
    warn_if_open(settings.auth.anonymous, &exposed);
    // Every listener is bound: report readiness.
    state.set_ready(true);
    announce(&settings, &addresses);
    // Set when the node must stop for a reason the exit status reports.
    let mut fatal = None;
    loop {
        tokio::select! {
            reason = broker.replication_failed() => {
                error!(%reason, "stopping: this cluster node cannot apply the cluster's catalog");
                fatal = Some(reason);
                break;
            }
            _ = terminate.recv() => {
                info!("SIGTERM received; shutting down");
                break;
            }
            _ = interrupt.recv() => {
                info!("SIGINT received; shutting down");
                break;
            }
            _ = hangup.recv() => reload_tls(server_tls.as_ref()),
            result = &mut http_task => {
                // The HTTP listener only ends on its own if its task failed.
                result.context("HTTP listener task")?;
                anyhow::bail!("the HTTP listener stopped");
            }
        }
    }
    state.set_ready(false);
    let _ = shutdown_tx.send(true);
    if tokio::time::timeout(DRAIN_TIMEOUT, &mut http_task).await.is_err() {
        warn!("in-flight HTTP requests did not finish within {DRAIN_TIMEOUT:?}; closing anyway");
        http_task.abort();
    }
    if let Some(https_task) = https_task
        && tokio::time::timeout(DRAIN_TIMEOUT, https_task).await.is_err()
    {
        warn!("in-flight HTTPS requests did not finish within {DRAIN_TIMEOUT:?}; closing anyway");
    }
    // The Kafka and AMQP listeners bound their own drains.
    for task in door_tasks {
        let _ = task.await;
    }
    if let Some(node) = cluster {
        node.shutdown().await;
    }
    tokio::task::spawn_blocking(move || broker.close())
        .await
        .context("closing the broker")?
        .context("flushing and closing the logs")?;
    info!("shutdown complete: every log flushed and fsynced");
    match fatal {
        Some(reason) => anyhow::bail!(reason),
        None => Ok(()),
    }
}

/// Binds a plain listener; a failure names the flag and variable that move it.
async fn bind(addr: SocketAddr, door: &str, flag: &str, variable: &str) -> anyhow::Result<Listener> {
    Ok(Listener::Plain(bind_tcp(addr, door, flag, variable).await?))
}

async fn bind_tcp(addr: SocketAddr, door: &str, flag: &str, variable: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!(
            "binding the {door} listener on {addr} (is another process listening there? choose another address with {flag} or {variable})"
        )
    })
}

/// Binds a TLS listener when its address is configured (settings checked
/// that `[tls]` is there then).
async fn bind_tls(
    addr: Option<SocketAddr>,
    tls: Option<&ServerTls>,
    door: &str,
    flag: &str,
    variable: &str,
) -> anyhow::Result<Option<Listener>> {
    let (Some(addr), Some(tls)) = (addr, tls) else {
        return Ok(None);
    };
    let listener = bind_tcp(addr, door, flag, variable).await?;
    Ok(Some(Listener::tls(listener, tls.acceptor())?))
}

/// SIGHUP: the TLS listeners present the certificate and key read now to
/// every new connection; open connections are left alone. A file that
/// does not load leaves the old certificate in place.
fn reload_tls(tls: Option<&ServerTls>) {
    match tls {
        Some(tls) => {
            if let Err(error) = tls.reload() {
                error!(%error, "SIGHUP: could not reload the TLS certificate; keeping the current one");
            }
        }
        None => info!("SIGHUP received; no [tls] to reload"),
    }
}

/// `[amqp.users]` kept its first meaning: every right, on the vhosts
/// `[amqp.user_vhosts]` lists for the user or else on every vhost there is at startup.
fn alias_permissions(settings: &Settings, broker: &Broker) -> Vec<(String, String, Permission)> {
    let every_vhost: Vec<String> = broker.vhosts().iter().map(|vhost| vhost.name().to_owned()).collect();
    settings
        .amqp_users
        .keys()
        .flat_map(|user| {
            let vhosts = settings.amqp_user_vhosts.get(user).unwrap_or(&every_vhost);
            vhosts.iter().map(move |vhost| (user.clone(), vhost.clone(), Permission::full()))
        })
        .collect()
}

/// Anonymous access from everywhere on a listener others can reach: say so, loudly.
fn warn_if_open(anonymous: AnonymousAccess, listeners: &[SocketAddr]) {
    if anonymous != AnonymousAccess::Always {
        return;
    }
    for addr in listeners.iter().filter(|addr| !is_loopback(addr.ip())) {
        warn!(
            %addr,
            "[auth] anonymous = \"always\": anyone who can reach {addr} has every right without credentials; set anonymous = \"loopback\" or \"never\" unless this network is trusted"
        );
    }
}

/// Where the listeners ended up (port 0 picks a free port).
#[derive(Debug)]
struct Addresses {
    http: SocketAddr,
    kafka: SocketAddr,
    amqp: SocketAddr,
    kafka_tls: Option<SocketAddr>,
    amqp_tls: Option<SocketAddr>,
    https: Option<SocketAddr>,
}

/// One line on stdout that people and test harnesses can read.
fn announce(settings: &Settings, addresses: &Addresses) {
    let Addresses {
        http,
        kafka,
        amqp,
        kafka_tls,
        amqp_tls,
        https,
    } = addresses;
    info!(http_addr = %http, kafka_addr = %kafka, amqp_addr = %amqp, ?kafka_tls, ?amqp_tls, ?https, data_dir = %settings.broker.data_dir.display(), "conveyor is ready");
    if let Some(cluster) = &settings.cluster {
        crate::cli::render::out!(
            "cluster node {} on {} with peers {} (GET /api/v1/cluster)",
            cluster.node_id,
            cluster.cluster_addr,
            conveyor_cluster::config::format_peers(&cluster.peers)
        );
    }
    let mut tls = String::new();
    for (label, addr) in [("kafka-tls", kafka_tls), ("amqp-tls", amqp_tls), ("https", https)] {
        if let Some(addr) = addr {
            tls.push_str(&format!(" {label} {addr}"));
        }
    }
    crate::cli::render::out!(
        "conveyor {} ready: http {http} kafka {kafka} amqp {amqp}{tls} (GET /health), data in {}",
        env!("CARGO_PKG_VERSION"),
        settings.broker.data_dir.display()
    );
    crate::cli::render::out!(
        "SQS and SNS http://{http}/ console http://{http}/ admin API http://{http}/api/v1 metrics http://{http}/metrics"
    );
}
