//! Where the broker's settings come from and which wins: command-line flags,
//! then `CONVEYOR_*` environment variables (both through clap), then the TOML
//! file given by `--config`, then the defaults of `DESIGN.md`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use conveyor_cluster::ClusterConfig;
use conveyor_cluster::config::parse_peers;
use conveyor_core::auth::user::validate_user_name;
use conveyor_core::auth::{AnonymousAccess, AuthPolicy, AwsAccessKey, ConfiguredUser, MetricsAccess, Tag};
use conveyor_core::limits::LimitsConfig;
use conveyor_core::log_cleaner::LogCleanerConfig;
use conveyor_core::topic_config::parse_durability;
use conveyor_core::{BrokerConfig, TopicDefaults, VirtualHost};
use conveyor_log::IoPoolConfig;
use conveyor_tls::TlsFiles;
use serde::Deserialize;

pub const DEFAULT_DATA_DIR: &str = "./conveyor-data";
pub const DEFAULT_KAFKA_ADDR: &str = "127.0.0.1:9092";
pub const DEFAULT_AMQP_ADDR: &str = "127.0.0.1:5672";
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of `conveyor serve`. Every flag also reads a `CONVEYOR_*` variable.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// TOML file with settings (flags and environment variables override it).
    #[arg(long, env = "CONVEYOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory holding all data [default: ./conveyor-data].
    #[arg(long, env = "CONVEYOR_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Kafka protocol listener [default: 127.0.0.1:9092].
    #[arg(long, env = "CONVEYOR_KAFKA_ADDR", value_name = "ADDR")]
    pub kafka_addr: Option<SocketAddr>,
    /// AMQP 0-9-1 listener [default: 127.0.0.1:5672].
    #[arg(long, env = "CONVEYOR_AMQP_ADDR", value_name = "ADDR")]
    pub amqp_addr: Option<SocketAddr>,
    /// HTTP listener: SQS and SNS APIs, admin API, web console, /metrics, /health [default: 127.0.0.1:8080].
    #[arg(long, env = "CONVEYOR_HTTP_ADDR", value_name = "ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Kafka TLS listener (clients' SSL and SASL_SSL); off unless set. Needs [tls] in the config file.
    #[arg(long, env = "CONVEYOR_KAFKA_TLS_ADDR", value_name = "ADDR")]
    pub kafka_tls_addr: Option<SocketAddr>,
    /// AMQP 0-9-1 TLS listener (amqps://); off unless set. Needs [tls] in the config file.
    #[arg(long, env = "CONVEYOR_AMQP_TLS_ADDR", value_name = "ADDR")]
    pub amqp_tls_addr: Option<SocketAddr>,
    /// HTTPS listener: what the HTTP listener serves, over TLS; off unless set. Needs [tls] in the config file.
    #[arg(long, env = "CONVEYOR_HTTPS_ADDR", value_name = "ADDR")]
    pub https_addr: Option<SocketAddr>,
    /// Log line format [default: text].
    #[arg(long, env = "CONVEYOR_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Durability of topics that do not set their own: always, interval:<ms> or never [default: always].
    #[arg(long, env = "CONVEYOR_DURABILITY", value_name = "POLICY")]
    pub durability: Option<String>,
    /// Threads that write and fsync logs, shared by every log [default: the number of cores].
    #[arg(long, env = "CONVEYOR_WRITER_THREADS", value_name = "N")]
    pub writer_threads: Option<usize>,
    /// RabbitMQ's consumer_timeout: ms an AMQP delivery may stay unacknowledged before its channel is closed [default: 1800000].
    #[arg(long, env = "CONVEYOR_CONSUMER_TIMEOUT", value_name = "MS")]
    pub consumer_timeout: Option<u64>,
    /// This node's id in a cluster (needs --peers); without it the broker runs alone.
    #[arg(long, env = "CONVEYOR_NODE_ID", value_name = "ID")]
    pub node_id: Option<u64>,
    /// Where this node listens for the other nodes [default: its own entry in --peers].
    #[arg(long, env = "CONVEYOR_CLUSTER_ADDR", value_name = "ADDR")]
    pub cluster_addr: Option<SocketAddr>,
    /// Every node of the cluster, this one included: ID=HOST:PORT,ID=HOST:PORT,...
    #[arg(long, env = "CONVEYOR_PEERS", value_name = "PEERS")]
    pub peers: Option<String>,
    /// Replicas of each partition of a topic created without a replication factor (Kafka's default.replication.factor) [default: 3, or the number of nodes if fewer].
    #[arg(long, env = "CONVEYOR_DEFAULT_REPLICATION_FACTOR", value_name = "N")]
    pub default_replication_factor: Option<u16>,
    /// In-sync replicas an acks=all produce needs, for topics that do not set min.insync.replicas (Kafka's broker min.insync.replicas) [default: 1].
    #[arg(long, env = "CONVEYOR_MIN_INSYNC_REPLICAS", value_name = "N")]
    pub min_insync_replicas: Option<u16>,
}

/// The TOML file's shape. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub data_dir: Option<PathBuf>,
    pub kafka_addr: Option<SocketAddr>,
    pub amqp_addr: Option<SocketAddr>,
    pub http_addr: Option<SocketAddr>,
    pub kafka_tls_addr: Option<SocketAddr>,
    pub amqp_tls_addr: Option<SocketAddr>,
    pub https_addr: Option<SocketAddr>,
    pub log_format: Option<LogFormat>,
    /// RabbitMQ's `consumer_timeout` (milliseconds), under its own name;
    /// `[limits] amqp_consumer_timeout_ms` is its alias.
    pub consumer_timeout: Option<u64>,
    /// `[tls]`: the certificate the TLS listeners present.
    pub tls: Option<TlsFileSettings>,
    #[serde(default)]
    pub topics: TopicFileSettings,
    #[serde(default)]
    pub amqp: AmqpFileSettings,
    /// `[log_cleaner]`: Kafka's `log.cleaner.*` broker settings.
    #[serde(default)]
    pub log_cleaner: LogCleanerFileSettings,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub storage: StorageFileSettings,
    #[serde(default)]
    pub auth: AuthFileSettings,
    /// `[users.NAME]`: users applied at every start.
    #[serde(default)]
    pub users: BTreeMap<String, UserFileSettings>,
    /// `[cluster]`: this node's place in a cluster.
    #[serde(default)]
    pub cluster: ClusterFileSettings,
}

/// `[cluster]`: the keys of `--node-id`, `--cluster-addr` and `--peers`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFileSettings {
    pub node_id: Option<u64>,
    pub cluster_addr: Option<SocketAddr>,
    /// `"1=127.0.0.1:7001,2=..."` as the flag, or a table `{ 1 = "127.0.0.1:7001", ... }`.
    pub peers: Option<PeersSetting>,
    /// `--default-replication-factor`.
    pub default_replication_factor: Option<u16>,
    /// `--min-insync-replicas`.
    pub min_insync_replicas: Option<u16>,
}

/// `peers` in the file: the flag's text or a table of id → address.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PeersSetting {
    Text(String),
    Table(BTreeMap<String, SocketAddr>),
}

impl PeersSetting {
    fn parse(&self) -> anyhow::Result<BTreeMap<u64, SocketAddr>> {
        let text = match self {
            PeersSetting::Text(text) => text.clone(),
            PeersSetting::Table(table) => table.iter().map(|(id, addr)| format!("{id}={addr}")).collect::<Vec<_>>().join(","),
        };
        Ok(parse_peers(&text)?)
    }
}

/// The cluster settings: none of them (a single node), or a node id and
/// the peers (the cluster address defaults to the node's own peer entry).
fn resolve_cluster(args: &ServeArgs, file: &ClusterFileSettings) -> anyhow::Result<Option<ClusterConfig>> {
    let node_id = args.node_id.or(file.node_id);
    let peers = match (&args.peers, &file.peers) {
        (Some(text), _) => Some(parse_peers(text).context("--peers (CONVEYOR_PEERS)")?),
        (None, Some(setting)) => Some(setting.parse().context("[cluster] peers")?),
        (None, None) => None,
    };
    let cluster_addr = args.cluster_addr.or(file.cluster_addr);
    let (node_id, peers) = match (node_id, peers) {
        (None, None) if cluster_addr.is_none() => return Ok(None),
        (Some(node_id), Some(peers)) => (node_id, peers),
        (None, _) => bail!("a cluster needs --node-id (CONVEYOR_NODE_ID, [cluster] node_id) with --peers"),
        (Some(_), None) => bail!("a cluster needs --peers (CONVEYOR_PEERS, [cluster] peers) with --node-id"),
    };
    let cluster_addr = match cluster_addr.or_else(|| peers.get(&node_id).copied()) {
        Some(addr) => addr,
        None => bail!("--node-id {node_id} is not in --peers"),
    };
    let config = ClusterConfig::new(node_id, cluster_addr, peers)?;
    let config = match args.default_replication_factor.or(file.default_replication_factor) {
        Some(factor) => config
            .with_default_replication_factor(factor)
            .context("--default-replication-factor (CONVEYOR_DEFAULT_REPLICATION_FACTOR, [cluster] default_replication_factor)")?,
        None => config,
    };
    Ok(Some(config))
}

/// `[auth]`: who may come without credentials, who may read `/metrics`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFileSettings {
    /// `loopback` (default), `never` or `always`.
    pub anonymous: Option<AnonymousAccess>,
    /// `anonymous` (default) or `monitoring`.
    pub metrics: Option<MetricsAccess>,
}

/// `[users.NAME]`: one user, created or updated to this at startup.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFileSettings {
    /// Hashed into SCRAM-SHA-256 and -512 credentials; never stored.
    pub password: Option<String>,
    /// `administrator`, `monitoring`.
    #[serde(default)]
    pub tags: Vec<String>,
    pub aws_access_key_id: Option<String>,
    pub aws_secret_access_key: Option<String>,
}

/// `[limits]`: resource alarms (RabbitMQ's `disk_free_limit` and memory
/// high watermark: while free disk is below the floor or memory above the
/// ceiling, publishers are blocked) and every other limit of
/// `conveyor_core::limits` under its own key (the README's table).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Default 50 MB.
    pub disk_free_min_bytes: Option<u64>,
    /// Default 60% of the machine's memory; 0 turns the memory alarm off.
    pub memory_max_bytes: Option<u64>,
    pub connections_max: Option<u32>,
    pub connections_per_address_max: Option<u32>,
    pub connection_buffer_bytes_max: Option<u64>,
    pub kafka_connections_max_idle_ms: Option<u64>,
    pub kafka_request_bytes_max: Option<u64>,
    pub kafka_message_bytes_max: Option<u64>,
    pub fetch_max_bytes: Option<u64>,
    #[serde(alias = "group.consumer.session.timeout.ms")]
    pub group_consumer_session_timeout_ms: Option<u64>,
    #[serde(alias = "group.consumer.heartbeat.interval.ms")]
    pub group_consumer_heartbeat_interval_ms: Option<u64>,
    pub amqp_handshake_timeout_ms: Option<u64>,
    pub amqp_consumer_timeout_ms: Option<u64>,
    pub amqp_channel_max: Option<u16>,
    pub amqp_consumers_per_channel_max: Option<u32>,
    pub amqp_message_bytes_max: Option<u64>,
    pub amqp_transaction_messages_max: Option<u32>,
    pub amqp_transaction_bytes_max: Option<u64>,
    pub http_header_read_timeout_ms: Option<u64>,
    pub queues_max: Option<u32>,
    pub topics_max: Option<u32>,
    pub partitions_per_topic_max: Option<u32>,
    pub partitions_max: Option<u32>,
    pub groups_max: Option<u32>,
    pub group_members_max: Option<u32>,
    pub segment_bytes_min: Option<u64>,
    pub segment_ms_min: Option<u64>,
}

impl Limits {
    /// The core's limits: the defaults with the keys this file sets.
    fn resolve(&self) -> anyhow::Result<LimitsConfig> {
        let mut limits = LimitsConfig::default();
        macro_rules! take {
            ($($key:ident),* $(,)?) => {
                $(if let Some(value) = self.$key {
                    limits.$key = value;
                })*
            };
        }
        take!(
            connections_max,
            connections_per_address_max,
            connection_buffer_bytes_max,
            kafka_connections_max_idle_ms,
            kafka_request_bytes_max,
            kafka_message_bytes_max,
            fetch_max_bytes,
            group_consumer_session_timeout_ms,
            group_consumer_heartbeat_interval_ms,
            amqp_handshake_timeout_ms,
            amqp_consumer_timeout_ms,
            amqp_channel_max,
            amqp_consumers_per_channel_max,
            amqp_message_bytes_max,
            amqp_transaction_messages_max,
            amqp_transaction_bytes_max,
            http_header_read_timeout_ms,
            queues_max,
            topics_max,
            partitions_per_topic_max,
            partitions_max,
            groups_max,
            group_members_max,
            segment_bytes_min,
            segment_ms_min,
        );
        limits.validate().map_err(anyhow::Error::msg)?;
        Ok(limits)
    }
}

/// `[tls]`: PEM files of the TLS listeners. The certificate and key are
/// read again on SIGHUP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFileSettings {
    /// The certificate chain, leaf first.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// CA certificates client certificates are verified against; without
    /// it no client certificate is asked for.
    pub client_ca_file: Option<PathBuf>,
}

/// `[storage]`: the log I/O pool shared by every topic partition and queue.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageFileSettings {
    /// Threads writing and fsyncing logs. Default: the number of cores.
    pub writer_threads: Option<usize>,
    /// Segment files kept open at most. Default: half the open-file limit (`ulimit -n`).
    pub open_files_max: Option<usize>,
}

/// `[amqp]`: the AMQP front door.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpFileSettings {
    /// `[amqp.users]`: `name = "password"` pairs, the alias of `[users.NAME]`
    /// that Conveyor had first: such a user gets every permission on the
    /// vhosts `[amqp.user_vhosts]` lists for it, or on every vhost that exists at startup.
    #[serde(default)]
    pub users: HashMap<String, String>,
    /// Virtual hosts besides `/` to create at startup when missing (a vhost
    /// taken off this list is not deleted: the admin API does that).
    #[serde(default)]
    pub vhosts: Vec<String>,
    /// `[amqp.user_vhosts]`: `name = ["vhost", ...]`, the vhosts where an
    /// `[amqp.users]` user gets its permission entries.
    #[serde(default)]
    pub user_vhosts: HashMap<String, Vec<String>>,
}

/// `[topics]`: broker-wide topic defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicFileSettings {
    /// Kafka's `auto.create.topics.enable`.
    pub auto_create: Option<bool>,
    /// Kafka's `num.partitions`.
    pub default_partitions: Option<u32>,
    pub durability: Option<String>,
    pub retention_ms: Option<i64>,
    pub retention_bytes: Option<i64>,
    pub segment_bytes: Option<u64>,
}

/// `[log_cleaner]`: compaction of topics with `cleanup.policy=compact`,
/// under Kafka's broker setting names without the `log.cleaner.` prefix.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogCleanerFileSettings {
    /// `log.cleaner.enable` [default: true].
    pub enable: Option<bool>,
    /// `log.cleaner.backoff.ms`: pause between passes [default: 15000].
    pub backoff_ms: Option<u64>,
    /// `log.cleaner.io.max.bytes.per.second` [default: unlimited].
    pub io_max_bytes_per_second: Option<u64>,
    /// `log.cleaner.dedupe.buffer.size`: memory of one cleaning's key map [default: 134217728].
    pub dedupe_buffer_size: Option<usize>,
    /// `log.cleaner.delete.retention.ms`: topics' default `delete.retention.ms` [default: 86400000].
    pub delete_retention_ms: Option<i64>,
    /// `log.cleaner.min.cleanable.ratio`: topics' default `min.cleanable.dirty.ratio` [default: 0.5].
    pub min_cleanable_ratio: Option<f64>,
    /// `log.cleaner.min.compaction.lag.ms` [default: 0].
    pub min_compaction_lag_ms: Option<i64>,
    /// `log.cleaner.max.compaction.lag.ms` [default: 9223372036854775807].
    pub max_compaction_lag_ms: Option<i64>,
}

impl LogCleanerFileSettings {
    fn apply(&self, cleaner: &mut LogCleanerConfig, defaults: &mut TopicDefaults) -> anyhow::Result<()> {
        if let Some(enable) = self.enable {
            cleaner.enabled = enable;
        }
        if let Some(ms) = self.backoff_ms {
            cleaner.backoff_ms = ms.max(1);
        }
        if let Some(bytes) = self.io_max_bytes_per_second {
            cleaner.settings.io_bytes_per_second_max = Some(bytes).filter(|&bytes| bytes > 0);
        }
        if let Some(bytes) = self.dedupe_buffer_size {
            cleaner.settings.dedupe_buffer_bytes = bytes;
        }
        if let Some(ms) = self.delete_retention_ms {
            defaults.compaction.delete_retention_ms = ms;
        }
        if let Some(ratio) = self.min_cleanable_ratio {
            if !(0.0..=1.0).contains(&ratio) {
                bail!("[log_cleaner] min_cleanable_ratio must be between 0 and 1");
            }
            defaults.compaction.min_cleanable_dirty_ratio = ratio;
        }
        if let Some(ms) = self.min_compaction_lag_ms {
            defaults.compaction.min_compaction_lag_ms = ms;
        }
        if let Some(ms) = self.max_compaction_lag_ms {
            defaults.compaction.max_compaction_lag_ms = ms;
        }
        Ok(())
    }
}

/// The resolved settings of one `serve`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub kafka_addr: SocketAddr,
    pub amqp_addr: SocketAddr,
    /// `[amqp.users]`, name → password (see [`Settings::users`] for the rest).
    pub amqp_users: HashMap<String, String>,
    /// Vhosts created at startup when missing.
    pub amqp_vhosts: Vec<String>,
    /// `[amqp.user_vhosts]`: the vhosts of an `[amqp.users]` user's permission entries.
    pub amqp_user_vhosts: HashMap<String, Vec<String>>,
    /// `[auth]`.
    pub auth: AuthPolicy,
    /// `[users.NAME]` and `[amqp.users]`, applied at startup.
    pub users: Vec<ConfiguredUser>,
    pub limits: Limits,
    pub http_addr: SocketAddr,
    /// The TLS listeners, each off unless configured.
    pub kafka_tls_addr: Option<SocketAddr>,
    pub amqp_tls_addr: Option<SocketAddr>,
    pub https_addr: Option<SocketAddr>,
    pub tls: Option<TlsFiles>,
    pub log_format: LogFormat,
    pub broker: BrokerConfig,
    /// `[storage]`: the log I/O pool.
    pub io_pool: IoPoolConfig,
    /// `[cluster]`: set when this node is one of a cluster.
    pub cluster: Option<ClusterConfig>,
}

impl Settings {
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Settings> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let default_addr = |text: &str| text.parse::<SocketAddr>().context("built-in default address");
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let mut topic_defaults = TopicDefaults::default();
        if let Some(text) = args.durability.as_deref().or(file.topics.durability.as_deref()) {
            topic_defaults.log.durability = parse_durability(text)?;
        }
        if let Some(ms) = file.topics.retention_ms {
            topic_defaults.log.retention_ms = (ms >= 0).then_some(ms);
        }
        if let Some(bytes) = file.topics.retention_bytes {
            topic_defaults.log.retention_bytes = u64::try_from(bytes).ok();
        }
        if let Some(bytes) = file.topics.segment_bytes {
            topic_defaults.log.segment_bytes = bytes;
        }
        let mut log_cleaner = LogCleanerConfig::default();
        file.log_cleaner.apply(&mut log_cleaner, &mut topic_defaults)?;
        let mut limits = file.limits.resolve().context("in [limits]")?;
        if let (Some(ms), Some(alias_ms)) = (file.consumer_timeout, file.limits.amqp_consumer_timeout_ms)
            && ms != alias_ms
        {
            bail!("consumer_timeout ({ms}) and its alias [limits] amqp_consumer_timeout_ms ({alias_ms}) disagree; set one");
        }
        if let Some(ms) = args.consumer_timeout.or(file.consumer_timeout) {
            limits.amqp_consumer_timeout_ms = ms;
            limits.validate().map_err(anyhow::Error::msg).context("consumer_timeout")?;
        }
        topic_defaults.max_message_bytes = limits.kafka_message_bytes_max;
        if let Some(replicas) = args.min_insync_replicas.or(file.cluster.min_insync_replicas) {
            if replicas == 0 {
                bail!("--min-insync-replicas (CONVEYOR_MIN_INSYNC_REPLICAS, [cluster] min_insync_replicas) must be at least 1");
            }
            topic_defaults.min_insync_replicas = replicas;
        }
        let default_partitions = file.topics.default_partitions.unwrap_or(1);
        if default_partitions == 0 {
            bail!("topics.default_partitions must be at least 1");
        }
        let kafka_tls_addr = args.kafka_tls_addr.or(file.kafka_tls_addr);
        let amqp_tls_addr = args.amqp_tls_addr.or(file.amqp_tls_addr);
        let https_addr = args.https_addr.or(file.https_addr);
        let tls = file.tls.map(|tls| TlsFiles {
            cert_file: tls.cert_file,
            key_file: tls.key_file,
            client_ca_file: tls.client_ca_file,
        });
        if tls.is_none() && (kafka_tls_addr.is_some() || amqp_tls_addr.is_some() || https_addr.is_some()) {
            bail!(
                "a TLS listener (kafka_tls_addr, amqp_tls_addr, https_addr) needs a [tls] table with cert_file and key_file in the config file"
            );
        }
        for name in file.amqp.vhosts.iter().chain(file.amqp.user_vhosts.values().flatten()) {
            VirtualHost::new(name).with_context(|| "in [amqp]")?;
        }
        let users = configured_users(&file.users, &file.amqp.users)?;
        let mut io_pool = IoPoolConfig::from_system();
        if let Some(threads) = args.writer_threads.or(file.storage.writer_threads) {
            if threads == 0 {
                bail!("storage.writer_threads (--writer-threads) must be at least 1");
            }
            io_pool.writer_threads = threads;
        }
        if let Some(files) = file.storage.open_files_max {
            if files == 0 {
                bail!("storage.open_files_max must be at least 1");
            }
            io_pool.open_files_max = files;
        }
        let cluster = resolve_cluster(args, &file.cluster)?;
        let auth = AuthPolicy {
            anonymous: file.auth.anonymous.unwrap_or_default(),
            metrics: file.auth.metrics.unwrap_or_default(),
        };
        Ok(Settings {
            auth,
            users,
            kafka_addr: args
                .kafka_addr
                .or(file.kafka_addr)
                .map_or_else(|| default_addr(DEFAULT_KAFKA_ADDR), Ok)?,
            amqp_addr: args
                .amqp_addr
                .or(file.amqp_addr)
                .map_or_else(|| default_addr(DEFAULT_AMQP_ADDR), Ok)?,
            amqp_users: file.amqp.users,
            amqp_vhosts: file.amqp.vhosts,
            amqp_user_vhosts: file.amqp.user_vhosts,
            limits: file.limits.clone(),
            http_addr: args
                .http_addr
                .or(file.http_addr)
                .map_or_else(|| default_addr(DEFAULT_HTTP_ADDR), Ok)?,
            kafka_tls_addr,
            amqp_tls_addr,
            https_addr,
            tls,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            broker: BrokerConfig {
                data_dir,
                auto_create_topics: file.topics.auto_create.unwrap_or(true),
                default_partitions,
                topic_defaults,
                limits,
                log_cleaner,
                // The core reads no `x-…` argument; RabbitMQ's vocabulary is this crate's.
                argument_vocabulary: Some(conveyor_rabbit_args::VOCABULARY),
            },
            io_pool,
            cluster,
        })
    }
}

/// The users of `[users.NAME]` and of the `[amqp.users]` alias; a name in both is an error.
fn configured_users(users: &BTreeMap<String, UserFileSettings>, aliases: &HashMap<String, String>) -> anyhow::Result<Vec<ConfiguredUser>> {
    let mut configured = Vec::new();
    for (name, user) in users {
        let context = || format!("in [users.{name}]");
        if aliases.contains_key(name) {
            bail!("user {name:?} is in both [users] and [amqp.users]");
        }
        let tags = user
            .tags
            .iter()
            .map(|tag| tag.parse::<Tag>())
            .collect::<Result<BTreeSet<Tag>, _>>()
            .with_context(context)?;
        let aws_access_key = match (&user.aws_access_key_id, &user.aws_secret_access_key) {
            (Some(access_key_id), Some(secret_access_key)) => Some(AwsAccessKey {
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key.clone(),
            }),
            (None, None) => None,
            _ => bail!("[users.{name}]: aws_access_key_id and aws_secret_access_key go together"),
        };
        configured.push(ConfiguredUser {
            name: name.clone(),
            password: user.password.clone(),
            tags,
            aws_access_key,
        });
    }
    for (name, password) in aliases {
        configured.push(ConfiguredUser {
            name: name.clone(),
            password: Some(password.clone()),
            tags: BTreeSet::new(),
            aws_access_key: None,
        });
    }
    for user in &configured {
        validate_user_name(&user.name).context("in the config file's users")?;
        if user.password.as_deref() == Some("") {
            bail!("user {:?}: the password is empty", user.name);
        }
    }
    Ok(configured)
}

fn read_file(path: &Path) -> anyhow::Result<FileSettings> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_log::Durability;

    #[test]
    fn defaults_follow_the_design() {
        let settings = Settings::resolve(&ServeArgs::default()).expect("defaults");
        assert_eq!(settings.kafka_addr.to_string(), DEFAULT_KAFKA_ADDR);
        assert_eq!(settings.amqp_addr.to_string(), DEFAULT_AMQP_ADDR);
        assert_eq!(settings.http_addr.to_string(), DEFAULT_HTTP_ADDR);
        assert_eq!(settings.broker.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(settings.broker.topic_defaults.log.durability, Durability::Always);
    }

    #[test]
    fn flags_override_the_file_and_the_file_overrides_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("conveyor.toml");
        std::fs::write(
            &path,
            "data_dir = \"/from/file\"\nhttp_addr = \"127.0.0.1:1111\"\nkafka_addr = \"127.0.0.1:2222\"\n[topics]\ndurability = \"never\"\ndefault_partitions = 3\n[amqp]\nvhosts = [\"staging\"]\n[amqp.users]\nalice = \"s3cret\"\n[amqp.user_vhosts]\nalice = [\"staging\"]\n[limits]\ndisk_free_min_bytes = 1000\nqueues_max = 7\n[storage]\nwriter_threads = 3\nopen_files_max = 100\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(path),
            http_addr: Some("127.0.0.1:3333".parse().expect("addr")),
            writer_threads: Some(5),
            ..ServeArgs::default()
        };
        let settings = Settings::resolve(&args).expect("resolve");
        assert_eq!(settings.http_addr.to_string(), "127.0.0.1:3333");
        assert_eq!(settings.kafka_addr.to_string(), "127.0.0.1:2222");
        assert_eq!(settings.broker.data_dir, PathBuf::from("/from/file"));
        assert_eq!(settings.broker.default_partitions, 3);
        assert_eq!(settings.broker.topic_defaults.log.durability, Durability::Never);
        assert_eq!(settings.amqp_users.get("alice").map(String::as_str), Some("s3cret"));
        assert_eq!(settings.amqp_vhosts, ["staging"]);
        assert_eq!(settings.amqp_user_vhosts.get("alice"), Some(&vec!["staging".to_owned()]));
        assert_eq!(settings.limits.disk_free_min_bytes, Some(1000));
        assert_eq!(settings.limits.memory_max_bytes, None);
        assert_eq!(settings.broker.limits.queues_max, 7);
        assert_eq!(
            settings.broker.limits.fetch_max_bytes,
            LimitsConfig::default().fetch_max_bytes,
            "unset keys keep their defaults"
        );
        assert_eq!(settings.kafka_tls_addr, None, "TLS listeners are off unless configured");
        assert_eq!(settings.tls, None);
        assert_eq!(settings.io_pool.writer_threads, 5, "--writer-threads wins over [storage]");
        assert_eq!(settings.io_pool.open_files_max, 100);
        assert_eq!(settings.auth, AuthPolicy::default(), "anonymous from loopback, open metrics");
        assert_eq!(settings.users.len(), 1);
        assert_eq!(settings.users[0].name, "alice");
    }

    #[test]
    fn tls_listeners_come_from_flags_or_the_file_and_need_the_tls_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("conveyor.toml");
        std::fs::write(&path, "kafka_tls_addr = \"127.0.0.1:9093\"\n").expect("write");
        let error = Settings::resolve(&ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        })
        .expect_err("no [tls]");
        assert!(format!("{error:#}").contains("[tls]"), "{error:#}");
        std::fs::write(
            &path,
            "kafka_tls_addr = \"127.0.0.1:9093\"\n[tls]\ncert_file = \"/etc/c.pem\"\nkey_file = \"/etc/c.key\"\nclient_ca_file = \"/etc/ca.pem\"\n",
        )
        .expect("write");
        let settings = Settings::resolve(&ServeArgs {
            config: Some(path),
            https_addr: Some("127.0.0.1:8443".parse().expect("addr")),
            ..ServeArgs::default()
        })
        .expect("resolve");
        assert_eq!(settings.kafka_tls_addr.map(|addr| addr.port()), Some(9093));
        assert_eq!(settings.https_addr.map(|addr| addr.port()), Some(8443));
        assert_eq!(settings.amqp_tls_addr, None);
        let tls = settings.tls.expect("tls");
        assert_eq!(tls.cert_file, PathBuf::from("/etc/c.pem"));
        assert_eq!(tls.client_ca_file, Some(PathBuf::from("/etc/ca.pem")));
    }

    #[test]
    fn the_auth_section_and_users_follow_the_issue_contract() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("conveyor.toml");
        std::fs::write(
            &path,
            "[auth]\nanonymous = \"never\"\nmetrics = \"monitoring\"\n[users.alice]\npassword = \"s3cret\"\ntags = [\"administrator\"]\naws_access_key_id = \"AKIAALICE0000000000\"\naws_secret_access_key = \"alice-secret\"\n[users.watcher]\npassword = \"w\"\ntags = [\"monitoring\"]\n",
        )
        .expect("write");
        let settings = Settings::resolve(&ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        })
        .expect("resolve");
        assert_eq!(settings.auth.anonymous, AnonymousAccess::Never);
        assert_eq!(settings.auth.metrics, MetricsAccess::Monitoring);
        let alice = settings.users.iter().find(|user| user.name == "alice").expect("alice");
        assert_eq!(alice.tags, BTreeSet::from([Tag::Administrator]));
        assert_eq!(
            alice.aws_access_key.as_ref().map(|key| key.secret_access_key.as_str()),
            Some("alice-secret")
        );
        for bad in [
            "[users.bob]\ntags = [\"root\"]\n",
            "[users.bob]\naws_access_key_id = \"AKIA\"\n",
            "[auth]\nanonymous = \"sometimes\"\n",
            "[users.bob]\npassword = \"x\"\n[amqp.users]\nbob = \"y\"\n",
            "[storage]\nwriter_threads = 0\n",
        ] {
            std::fs::write(&path, bad).expect("write");
            let resolved = Settings::resolve(&ServeArgs {
                config: Some(path.clone()),
                ..ServeArgs::default()
            });
            assert!(resolved.is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn cluster_settings_come_from_flags_or_the_cluster_table() {
        assert_eq!(
            Settings::resolve(&ServeArgs::default()).expect("defaults").cluster,
            None,
            "single node by default"
        );
        let args = ServeArgs {
            node_id: Some(2),
            cluster_addr: Some("127.0.0.1:7002".parse().expect("addr")),
            peers: Some("1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003".to_owned()),
            ..ServeArgs::default()
        };
        let cluster = Settings::resolve(&args).expect("flags").cluster.expect("cluster");
        assert_eq!(cluster.node_id, 2);
        assert_eq!(cluster.cluster_addr.to_string(), "127.0.0.1:7002");
        assert_eq!(cluster.peers.len(), 3);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("conveyor.toml");
        for toml in [
            "[cluster]\nnode_id = 3\npeers = \"1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003\"\n",
            "[cluster]\nnode_id = 3\ncluster_addr = \"127.0.0.1:7003\"\npeers = { 1 = \"127.0.0.1:7001\", 2 = \"127.0.0.1:7002\", 3 = \"127.0.0.1:7003\" }\n",
        ] {
            std::fs::write(&path, toml).expect("write");
            let cluster = Settings::resolve(&ServeArgs {
                config: Some(path.clone()),
                ..ServeArgs::default()
            })
            .expect(toml)
            .cluster
            .expect("cluster");
            assert_eq!(cluster.node_id, 3);
            assert_eq!(cluster.cluster_addr.to_string(), "127.0.0.1:7003", "defaults to its peer entry");
        }
        std::fs::write(&path, "[cluster]\nnode_id = 3\npeers = \"1=127.0.0.1:7001\"\n").expect("write");
        let flag_wins = Settings::resolve(&ServeArgs {
            config: Some(path.clone()),
            node_id: Some(1),
            ..ServeArgs::default()
        })
        .expect("flag over file")
        .cluster
        .expect("cluster");
        assert_eq!(flag_wins.node_id, 1);
        for bad in [
            ServeArgs {
                node_id: Some(1),
                ..ServeArgs::default()
            },
            ServeArgs {
                peers: Some("1=127.0.0.1:7001".to_owned()),
                ..ServeArgs::default()
            },
            ServeArgs {
                node_id: Some(4),
                peers: Some("1=127.0.0.1:7001".to_owned()),
                ..ServeArgs::default()
            },
            ServeArgs {
                node_id: Some(1),
                peers: Some("1=127.0.0.1:7001".to_owned()),
                cluster_addr: Some("127.0.0.1:7999".parse().expect("addr")),
                ..ServeArgs::default()
            },
        ] {
            assert!(Settings::resolve(&bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "data_dirr = \"typo\"\n").expect("write");
        let error = Settings::resolve(&ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        })
        .expect_err("typo refused");
        assert!(format!("{error:#}").contains("data_dirr"), "{error:#}");
        std::fs::write(&path, "[topics]\ndurability = \"sometimes\"\n").expect("write");
        assert!(
            Settings::resolve(&ServeArgs {
                config: Some(path),
                ..ServeArgs::default()
            })
            .is_err()
        );
    }

    #[test]
    fn consumer_timeout_is_rabbitmqs_key_with_its_flag_and_the_limits_alias() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("conveyor.toml");
        let resolve = |toml: &str, flag: Option<u64>| {
            std::fs::write(&path, toml).expect("write");
            Settings::resolve(&ServeArgs {
                config: Some(path.clone()),
                consumer_timeout: flag,
                ..ServeArgs::default()
            })
            .map(|settings| settings.broker.limits.amqp_consumer_timeout_ms)
        };
        assert_eq!(resolve("", None).expect("default"), 30 * 60 * 1000, "RabbitMQ's 30 minutes");
        assert_eq!(resolve("consumer_timeout = 5000\n", None).expect("key"), 5000);
        assert_eq!(resolve("[limits]\namqp_consumer_timeout_ms = 6000\n", None).expect("alias"), 6000);
        assert_eq!(
            resolve("consumer_timeout = 5000\n", Some(7000)).expect("flag"),
            7000,
            "the flag wins"
        );
        assert!(
            resolve("consumer_timeout = 5000\n[limits]\namqp_consumer_timeout_ms = 6000\n", None).is_err(),
            "the key and its alias disagreeing"
        );
    }

    #[test]
    fn kip848_group_keys_are_read_under_their_kafka_names_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("conveyor.toml");
        let resolve = |toml: &str| {
            std::fs::write(&path, toml).expect("write");
            Settings::resolve(&ServeArgs {
                config: Some(path.clone()),
                ..ServeArgs::default()
            })
            .map(|settings| {
                let limits = &settings.broker.limits;
                (
                    limits.group_consumer_session_timeout_ms,
                    limits.group_consumer_heartbeat_interval_ms,
                )
            })
        };
        assert_eq!(resolve("").expect("defaults"), (45_000, 5_000), "Kafka's defaults");
        assert_eq!(
            resolve("[limits]\ngroup_consumer_session_timeout_ms = 3000\ngroup_consumer_heartbeat_interval_ms = 500\n").expect("keys"),
            (3_000, 500)
        );
        assert_eq!(
            resolve("[limits]\n\"group.consumer.session.timeout.ms\" = 4000\n\"group.consumer.heartbeat.interval.ms\" = 700\n")
                .expect("Kafka's names"),
            (4_000, 700)
        );
    }
}
