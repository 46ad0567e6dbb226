//! A network between cluster nodes that a test can cut, on loopback only.
//!
//! Node `i` listens on its own loopback address, `127.0.0.{10 + i}`, and
//! its peers reach it through a proxy on `127.0.0.{20 + i}`, same port
//! (`--peers` names the proxies). A node's calls leave from its
//! `--cluster-addr`'s address, so the proxy knows which node calls from the
//! connection's source address. [`NetProxy::cut`] closes every connection
//! between two nodes and refuses new ones, in both directions, until
//! [`NetProxy::heal`].

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The loopback address node `id` listens on.
pub fn node_ip(id: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + id as u8))
}

/// The loopback address of the proxy in front of node `id`.
pub fn proxy_ip(id: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 20 + id as u8))
}

/// The node a connection comes from, by its source address (0: not a node).
fn caller(source: SocketAddr) -> usize {
    match source.ip() {
        IpAddr::V4(ip) if ip.octets()[..3] == [127, 0, 0] && ip.octets()[3] > 10 && ip.octets()[3] < 20 => usize::from(ip.octets()[3] - 10),
        _ => 0,
    }
}

#[derive(Debug, Default)]
struct Links {
    /// Pairs of nodes that cannot reach each other, lower id first.
    cut: BTreeSet<(usize, usize)>,
    /// Every proxied connection: its two nodes and both of its sockets.
    open: Vec<((usize, usize), TcpStream, TcpStream)>,
}

fn pair(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

/// One proxy per node, each forwarding to its node's real cluster port.
#[derive(Debug)]
pub struct NetProxy {
    links: Arc<Mutex<Links>>,
    stop: Arc<AtomicBool>,
    listeners: Vec<(SocketAddr, JoinHandle<()>)>,
}

impl NetProxy {
    /// Proxies for nodes `1..=ports.len()`, node `i` on port `ports[i - 1]`.
    pub fn start(ports: &[u16]) -> NetProxy {
        let links = Arc::new(Mutex::new(Links::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let listeners = ports
            .iter()
            .enumerate()
            .map(|(index, port)| {
                let target = index + 1;
                let addr = SocketAddr::new(proxy_ip(target), *port);
                let listener = TcpListener::bind(addr).unwrap_or_else(|error| panic!("proxy on {addr}: {error}"));
                let (links, stop) = (Arc::clone(&links), Arc::clone(&stop));
                let backend = SocketAddr::new(node_ip(target), *port);
                let accepting = std::thread::spawn(move || {
                    for incoming in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let Ok(client) = incoming else { continue };
                        let from = client.peer_addr().map(caller).unwrap_or(0);
                        forward(&links, (from, target), client, backend);
                    }
                });
                (addr, accepting)
            })
            .collect();
        NetProxy { links, stop, listeners }
    }

    /// Node `id` can no longer reach any other node, nor they it.
    pub fn isolate(&self, id: usize, nodes: usize) {
        for other in (1..=nodes).filter(|other| *other != id) {
            self.cut(id, other);
        }
    }

    /// Nodes `a` and `b` can no longer reach each other: their open
    /// connections are closed and new ones refused.
    pub fn cut(&self, a: usize, b: usize) {
        let mut links = self.links.lock().expect("links");
        links.cut.insert(pair(a, b));
        links.open.retain(|(nodes, client, backend)| {
            if *nodes != pair(a, b) {
                return true;
            }
            let _ = client.shutdown(Shutdown::Both);
            let _ = backend.shutdown(Shutdown::Both);
            false
        });
    }

    /// Every node reaches every other again.
    pub fn heal(&self) {
        self.links.lock().expect("links").cut.clear();
    }
}

/// Forwards `client`'s connection to `backend` in both directions, unless
/// its two nodes are cut apart (then it is closed at once).
fn forward(links: &Arc<Mutex<Links>>, (from, to): (usize, usize), client: TcpStream, backend: SocketAddr) {
    let mut guard = links.lock().expect("links");
    if guard.cut.contains(&pair(from, to)) {
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let Ok(server) = TcpStream::connect_timeout(&backend, Duration::from_secs(1)) else {
        return;
    };
    let (Ok(client_copy), Ok(server_copy), Ok(client_kept), Ok(server_kept)) =
        (client.try_clone(), server.try_clone(), client.try_clone(), server.try_clone())
    else {
        return;
    };
    guard.open.push((pair(from, to), client_kept, server_kept));
    drop(guard);
    // Each direction ends when its reader sees the end or an error, and
    // then closes the other side, so both threads end.
    std::thread::spawn(move || pipe(client, server_copy));
    std::thread::spawn(move || pipe(server, client_copy));
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                if to.write_all(&buffer[..read]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

impl Drop for NetProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for (addr, _) in &self.listeners {
            // Wakes the accepting thread, which sees `stop` and ends.
            let _ = TcpStream::connect_timeout(addr, Duration::from_secs(1));
        }
        for (_, accepting) in self.listeners.drain(..) {
            let _ = accepting.join();
        }
        for (_, client, backend) in self.links.lock().expect("links").open.drain(..) {
            let _ = client.shutdown(Shutdown::Both);
            let _ = backend.shutdown(Shutdown::Both);
        }
    }
}
