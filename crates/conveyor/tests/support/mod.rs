//! Starts a real `conveyor serve` process on loopback ports for integration
//! tests, and stops it by its PID. Every wait is bounded.

#![allow(dead_code, reason = "each test binary uses a different part of the harness")]

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
    pub data_dir: PathBuf,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `conveyor serve` on `data_dir` with every listener on a free
    /// loopback port, and waits until it reports ready.
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[], &[])
    }

    pub fn start_with(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(binary());
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--http-addr",
                "127.0.0.1:0",
                "--kafka-addr",
                "127.0.0.1:0",
                "--amqp-addr",
                "127.0.0.1:0",
            ])
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
        let http_addr = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match ready_rx.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some(addr) = parse_ready(&line) {
                        break addr;
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
            data_dir: data_dir.to_owned(),
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
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

fn parse_ready(line: &str) -> Option<SocketAddr> {
    let rest = line.split(" ready: http ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
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
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("write request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status code");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}
