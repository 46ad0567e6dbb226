//! Starts a real `conveyor serve` process on loopback ports for integration
//! tests, and stops it by its PID. Every wait is bounded.

#![allow(dead_code, reason = "each test binary uses a different part of the harness")]

pub mod certs;
pub mod lapin_client;
pub mod net_proxy;
pub mod raw_amqp;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const START_TIMEOUT: Duration = Duration::from_secs(30);
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_conveyor"))
}

/// A running broker process.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub http_addr: SocketAddr,
    pub kafka_addr: SocketAddr,
    pub amqp_addr: SocketAddr,
    /// The TLS listeners, when the test configured them.
    pub kafka_tls_addr: Option<SocketAddr>,
    pub amqp_tls_addr: Option<SocketAddr>,
    pub https_addr: Option<SocketAddr>,
    pub data_dir: PathBuf,
    /// More environment for the client scripts the test runs (a CA file, credentials).
    pub script_env: Vec<(String, String)>,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `conveyor serve` on `data_dir` with every listener on a free
    /// loopback port, and waits until it reports ready.
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[], &[])
    }

    /// A broker on a fresh temporary data directory (deleted with the guard).
    pub fn start_in_tempdir() -> (tempfile::TempDir, Server) {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Server::start(dir.path());
        (dir, server)
    }

    pub fn start_with(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_launched(data_dir, &[], args, env)
    }

    /// [`Server::start_with`] through `launcher` (a program and its
    /// arguments that runs the rest of its command line with `exec`, such as
    /// `prlimit`), so the broker keeps the PID the test holds.
    pub fn start_launched(data_dir: &Path, launcher: &[&str], args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = match launcher.split_first() {
            Some((program, launcher_args)) => {
                let mut command = Command::new(program);
                command.args(launcher_args).arg(binary());
                command
            }
            None => Command::new(binary()),
        };
        command.arg("serve").arg("--data-dir").arg(data_dir);
        // Every listener on a free loopback port unless the caller fixes it.
        for flag in ["--http-addr", "--kafka-addr", "--amqp-addr"] {
            if !args.contains(&flag) {
                command.args([flag, "127.0.0.1:0"]);
            }
        }
        command
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn conveyor serve");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = ready_tx.send(line);
            }
        });
        let stderr = forward_lines(stderr);
        let deadline = Instant::now() + START_TIMEOUT;
        let (http_addr, kafka_addr, amqp_addr, ready_line) = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match ready_rx.recv_timeout(remaining) {
                Ok(line) => {
                    if let (Some(http), Some(kafka), Some(amqp)) = (
                        address_after(&line, " http "),
                        address_after(&line, " kafka "),
                        address_after(&line, " amqp "),
                    ) {
                        break (http, kafka, amqp, line);
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let logs: Vec<String> = stderr.try_iter().collect();
                    panic!(
                        "conveyor did not report ready within {START_TIMEOUT:?}; stderr:\n{}",
                        logs.join("\n")
                    );
                }
            }
        };
        Server {
            child,
            http_addr,
            kafka_addr,
            amqp_addr,
            kafka_tls_addr: address_after(&ready_line, " kafka-tls "),
            amqp_tls_addr: address_after(&ready_line, " amqp-tls "),
            https_addr: address_after(&ready_line, " https "),
            data_dir: data_dir.to_owned(),
            script_env: Vec::new(),
            stderr,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` and waits (bounded) for the process to exit.
    pub fn signal_and_wait(&mut self, signal: i32) -> (ExitStatus, Duration) {
        let started = Instant::now();
        send_signal(self.pid(), signal);
        let status = wait_bounded(&mut self.child, STOP_TIMEOUT * 2).expect("conveyor did not exit after the signal");
        (status, started.elapsed())
    }

    pub fn terminate(&mut self) -> (ExitStatus, Duration) {
        self.signal_and_wait(libc::SIGTERM)
    }

    /// SIGKILL: a crash, no chance to flush.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Lines the broker logged so far.
    pub fn logs(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    pub fn http_get(&self, path: &str) -> (u16, String) {
        http_get(self.http_addr, path)
    }

    /// `CONVEYOR_KAFKA_TLS`, `CONVEYOR_AMQP_TLS` (an amqps:// URL) and
    /// `CONVEYOR_HTTPS` for the TLS listeners that are up.
    pub fn tls_env(&self) -> Vec<(&'static str, String)> {
        let mut env = Vec::new();
        if let Some(addr) = self.kafka_tls_addr {
            env.push(("CONVEYOR_KAFKA_TLS", addr.to_string()));
        }
        if let Some(addr) = self.amqp_tls_addr {
            env.push(("CONVEYOR_AMQP_TLS", format!("amqps://localhost:{}", addr.port())));
        }
        if let Some(addr) = self.https_addr {
            env.push(("CONVEYOR_HTTPS", format!("localhost:{}", addr.port())));
        }
        env
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// The address after `label` in the broker's ready line.
fn address_after(line: &str, label: &str) -> Option<SocketAddr> {
    if !line.contains(" ready:") {
        return None;
    }
    line.split(label).nth(1)?.split_whitespace().next()?.parse().ok()
}

pub fn forward_lines(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

pub fn send_signal(pid: i32, signal: i32) {
    // SAFETY-free: libc::kill is a plain syscall wrapper on a PID we spawned.
    #[allow(unsafe_code)]
    let result = unsafe { libc::kill(pid, signal) };
    assert_eq!(result, 0, "kill({pid}, {signal}) failed");
}

/// Waits for `child` to exit, at most `timeout`.
pub fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A minimal HTTP/1.1 GET; returns the status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (status, response) = http_exchange(addr, "GET", path, &[], "");
    (status, body_of(&response).to_owned())
}

/// One HTTP/1.1 request on a fresh connection; the status code and the
/// whole response (status line, headers and body) as text.
pub fn http_exchange(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream
        .write_all(http_request_bytes(addr, method, path, headers, body).as_bytes())
        .expect("write request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    (status, response)
}

/// An HTTP/1.1 request as sent (`Connection: close`), with `headers`.
pub fn http_request_bytes(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    request
}

/// The body of a whole HTTP response.
pub fn body_of(response: &str) -> &str {
    response.split("\r\n\r\n").nth(1).unwrap_or_default()
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// How long one client script may run.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The Python interpreter with the pinned client libraries (installed by
/// `scripts/test` into `.venv`).
fn python() -> PathBuf {
    let path = std::env::var_os("CONVEYOR_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(
        path.exists(),
        "{} not found: run ./scripts/test, which installs the Python client libraries the interop tests use",
        path.display()
    );
    path
}

fn node_modules() -> PathBuf {
    let path = std::env::var_os("CONVEYOR_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tests/interop/js/node_modules"));
    assert!(
        path.exists(),
        "{} not found: run ./scripts/test, which installs the Node.js client libraries the interop tests use",
        path.display()
    );
    path
}

/// What a client script printed.
#[derive(Debug)]
pub struct ScriptOutput {
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tests/interop/<script>` (Python or Node.js, by extension) against
/// `server` and asserts it exits 0 within [`SCRIPT_TIMEOUT`]. The script gets
/// the broker's addresses in `CONVEYOR_KAFKA`, `CONVEYOR_AMQP` (an amqp:// URL), `CONVEYOR_HTTP`.
pub fn run_script(server: &Server, script: &str, args: &[&str]) -> ScriptOutput {
    let mut command = script_command(server, script, args);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|error| panic!("starting {script}: {error}"));
    let stdout = forward_lines(child.stdout.take().expect("stdout"));
    let stderr = forward_lines(child.stderr.take().expect("stderr"));
    let status = wait_bounded(&mut child, SCRIPT_TIMEOUT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    // The reader threads end when the pipes close.
    let output = ScriptOutput {
        stdout: stdout.iter().collect::<Vec<_>>().join("\n"),
        stderr: stderr.iter().collect::<Vec<_>>().join("\n"),
    };
    match status {
        Some(status) if status.success() => output,
        Some(status) => panic!(
            "{script} failed ({status})\n--- stdout\n{}\n--- stderr\n{}\n--- broker log\n{}",
            output.stdout,
            output.stderr,
            server.logs().join("\n")
        ),
        None => panic!(
            "{script} did not finish within {SCRIPT_TIMEOUT:?}\n--- stdout\n{}\n--- stderr\n{}",
            output.stdout, output.stderr
        ),
    }
}

/// A loopback port that was free a moment ago (for tests that restart a
/// broker and need clients to find it on the same port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A loopback port for a cluster node's listener, below Linux's ephemeral
/// range (32768 and up): the nodes' own outgoing connections, and every
/// listener bound to port 0, take ports from that range, so one of them
/// could take a port `free_port` gave out before its node binds it.
/// Checked free now; spread by process id so parallel test binaries differ.
pub fn cluster_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    for _ in 0..1_000 {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (std::process::id().wrapping_mul(7_919).wrapping_add(step.wrapping_mul(131)) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between 20000 and 32000");
}

/// Starts a client script that the test talks to over stdin/stdout.
pub fn spawn_script(server: &Server, script: &str, args: &[&str]) -> Child {
    script_command(server, script, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting {script}: {error}"))
}

/// `tests/interop/<script>` (Python or Node.js, by extension) with its
/// arguments and the broker's addresses in `CONVEYOR_KAFKA`,
/// `CONVEYOR_AMQP` (an amqp:// URL) and `CONVEYOR_HTTP`.
fn script_command(server: &Server, script: &str, args: &[&str]) -> Command {
    let path = repo_root().join("tests/interop").join(script);
    let mut command = if script.ends_with(".py") {
        Command::new(python())
    } else {
        let mut command = Command::new("node");
        command.env("NODE_PATH", node_modules());
        command
    };
    command
        .arg(&path)
        .args(args)
        .env("CONVEYOR_KAFKA", server.kafka_addr.to_string())
        .env("CONVEYOR_AMQP", format!("amqp://{}", server.amqp_addr))
        .env("CONVEYOR_HTTP", server.http_addr.to_string())
        .envs(server.tls_env())
        .envs(server.script_env.iter().map(|(key, value)| (key.as_str(), value.as_str())))
        .env("KAFKAJS_NO_PARTITIONER_WARNING", "1")
        .env("PYTHONUNBUFFERED", "1");
    command
}

/// How [`run_script_across_a_restart`] stops the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM; the broker must exit 0.
    Terminate,
    /// SIGKILL.
    Kill,
}

/// Runs `tests/interop/<script>` against a broker on a fixed Kafka port,
/// waits for its first stdout line (which must start with `first_line`),
/// stops the broker (`stop`), starts it again on the same data and port,
/// tells the script `restarted` on its stdin and asserts it ends with
/// `ok`. Returns the script's stderr lines.
pub fn run_script_across_a_restart(script: &str, first_line: &str, stop: Stop) -> Vec<String> {
    run_script_across_a_restart_with_config(script, first_line, stop, None)
}

/// [`run_script_across_a_restart`] with a config file holding `toml` (e.g.
/// a `[limits]` table) for both runs of the broker, whose HTTP port is
/// fixed too, so the script's `CONVEYOR_HTTP` still reaches it after the
/// restart.
pub fn run_script_across_a_restart_with_config(script: &str, first_line: &str, stop: Stop, toml: Option<&str>) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let kafka = format!("127.0.0.1:{}", free_port());
    let http = format!("127.0.0.1:{}", free_port());
    let config = dir.path().join("conveyor.toml");
    let config = config.to_str().expect("utf-8 path").to_owned();
    let mut args = vec!["--kafka-addr", &kafka, "--http-addr", &http];
    if let Some(toml) = toml {
        std::fs::write(&config, toml).expect("write the config file");
        args.extend(["--config", &config]);
    }
    let mut server = Server::start_with(&data, &args, &[]);
    let mut client = spawn_script(&server, script, &[]);
    let stdout = client.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(
        first.starts_with(first_line),
        "expected {script} to say {first_line:?} first, got {first:?}"
    );
    match stop {
        Stop::Terminate => assert!(server.terminate().0.success(), "SIGTERM exits 0"),
        Stop::Kill => server.kill(),
    }
    let _server = Server::start_with(&data, &args, &[]);
    writeln!(client.stdin.as_mut().expect("stdin"), "restarted").expect("tell the script");
    expect_script_ok(&mut client, lines)
}

/// Waits, bounded, for a script started with [`spawn_script`] (`lines`:
/// what is left of its stdout) and asserts it exits 0 with `ok` as its
/// last line. Returns its stderr lines.
pub fn expect_script_ok(client: &mut Child, lines: std::io::Lines<BufReader<std::process::ChildStdout>>) -> Vec<String> {
    let status = wait_bounded(client, SCRIPT_TIMEOUT);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let errors: Vec<String> = forward_lines(client.stderr.take().expect("stderr")).iter().collect();
    if status.is_none() {
        let _ = client.kill();
        let _ = client.wait();
    }
    assert!(
        status.is_some_and(|status| status.success()),
        "script failed: {status:?}\nstdout: {rest:?}\nstderr:\n{}",
        errors.join("\n")
    );
    assert_eq!(rest.last().map(String::as_str), Some("ok"));
    errors
}

/// Starts a broker whose config file holds `toml` (e.g. a `[limits]`
/// table), on a fresh temporary data directory.
pub fn start_with_config(toml: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("conveyor.toml");
    std::fs::write(&config, toml).expect("write the config file");
    let data = dir.path().join("data");
    let config = config.to_str().expect("utf-8 path").to_owned();
    let server = Server::start_with(&data, &["--config", &config], &[]);
    (dir, server)
}

/// A process's resident memory (`VmRSS`), in bytes.
pub fn rss_bytes(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("VmRSS line");
    let kibibytes: u64 = line["VmRSS:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("VmRSS in kB");
    kibibytes * 1024
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; true if it held.
pub fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of one sample of `/metrics` (name with its labels, as printed).
pub fn metric(server: &Server, sample: &str) -> Option<f64> {
    let (_, body) = server.http_get("/metrics");
    body.lines()
        .find_map(|line| line.strip_prefix(sample).and_then(|rest| rest.trim().parse().ok()))
}

/// A minimal HTTP/1.1 request with a JSON body; returns the status code and body.
pub fn http_send(addr: SocketAddr, method: &str, path: &str, json: &str) -> (u16, String) {
    let (status, response) = http_exchange(addr, method, path, &[("Content-Type", "application/json")], json);
    (status, body_of(&response).to_owned())
}

/// `n` cluster nodes, each a `conveyor serve` with its own data directory
/// and a free loopback cluster address (`cluster_port`), started together.
#[derive(Debug)]
pub struct ClusterNodes {
    pub dirs: Vec<tempfile::TempDir>,
    /// `--peers` as every node got it.
    pub peers: String,
    /// Node `i + 1`'s `--cluster-addr` when it is not its `--peers` entry.
    pub cluster_addrs: Vec<Option<String>>,
    /// Node `i + 1`; `None` while stopped.
    pub nodes: Vec<Option<Server>>,
}

impl ClusterNodes {
    /// Starts nodes 1..=n; each reports ready once its listeners are up
    /// (before a leader is elected).
    pub fn start(n: usize) -> ClusterNodes {
        let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().expect("tempdir")).collect();
        let peers = (1..=n)
            .map(|id| format!("{id}=127.0.0.1:{}", cluster_port()))
            .collect::<Vec<_>>()
            .join(",");
        ClusterNodes::started(dirs, peers, vec![None; n])
    }

    /// Starts nodes 1..=n with a [`net_proxy::NetProxy`] between them,
    /// which the test cuts and heals.
    pub fn start_behind_proxy(n: usize) -> (ClusterNodes, net_proxy::NetProxy) {
        let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().expect("tempdir")).collect();
        let ports: Vec<u16> = (0..n).map(|_| cluster_port()).collect();
        let proxy = net_proxy::NetProxy::start(&ports);
        let peers = (1..=n)
            .map(|id| format!("{id}={}", SocketAddr::new(net_proxy::proxy_ip(id), ports[id - 1])))
            .collect::<Vec<_>>()
            .join(",");
        let cluster_addrs = (1..=n)
            .map(|id| Some(SocketAddr::new(net_proxy::node_ip(id), ports[id - 1]).to_string()))
            .collect();
        (ClusterNodes::started(dirs, peers, cluster_addrs), proxy)
    }

    fn started(dirs: Vec<tempfile::TempDir>, peers: String, cluster_addrs: Vec<Option<String>>) -> ClusterNodes {
        let mut cluster = ClusterNodes {
            nodes: (0..dirs.len()).map(|_| None).collect(),
            dirs,
            peers,
            cluster_addrs,
        };
        for id in 1..=cluster.nodes.len() {
            cluster.restart(id);
        }
        cluster
    }

    /// Starts node `id` (again) on its data directory.
    pub fn restart(&mut self, id: usize) {
        let node_id = id.to_string();
        let mut args = vec!["--node-id", &node_id, "--peers", &self.peers];
        if let Some(cluster_addr) = &self.cluster_addrs[id - 1] {
            args.extend(["--cluster-addr", cluster_addr]);
        }
        let server = Server::start_with(self.dirs[id - 1].path(), &args, &[]);
        self.nodes[id - 1] = Some(server);
    }

    /// Starts one more node (the next id) on a fresh data directory and
    /// cluster address, with every node in its `--peers`; it is no member
    /// until the cluster adds it. Answers its id and cluster address.
    pub fn start_another(&mut self) -> (usize, String) {
        let id = self.nodes.len() + 1;
        let cluster_addr = format!("127.0.0.1:{}", cluster_port());
        self.peers = format!("{},{id}={cluster_addr}", self.peers);
        self.dirs.push(tempfile::tempdir().expect("tempdir"));
        self.cluster_addrs.push(None);
        self.nodes.push(None);
        self.restart(id);
        (id, cluster_addr)
    }

    pub fn node(&self, id: usize) -> &Server {
        self.nodes[id - 1].as_ref().expect("node is running")
    }

    /// SIGKILL to node `id`, waited for.
    pub fn kill(&mut self, id: usize) {
        if let Some(mut server) = self.nodes[id - 1].take() {
            server.kill();
        }
    }

    /// The ids of the running nodes.
    pub fn running(&self) -> Vec<usize> {
        (1..=self.nodes.len()).filter(|id| self.nodes[id - 1].is_some()).collect()
    }
}
