//! A listening socket that yields ready connections: plain TCP ones as
//! they are accepted, TLS ones once their handshake is done. Handshakes run
//! concurrently in a task of their own, each bounded in time and their
//! number bounded, so a slow or silent client holds up nobody. Knows
//! sockets and TLS; not what is spoken over them.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use crate::identity::common_name;
use crate::stream::Stream;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; connections beyond are closed at once.
const HANDSHAKES_MAX: usize = 1024;
/// Finished handshakes waiting for the door to take them.
const READY_MAX: usize = 64;

/// A connection ready for a door.
#[derive(Debug)]
pub struct Accepted {
    pub stream: Stream,
    pub peer: SocketAddr,
    /// The address the client connected to.
    pub local: SocketAddr,
    /// The CN of the client's verified certificate, if it presented one.
    pub client_common_name: Option<String>,
}

#[derive(Debug)]
pub enum Listener {
    Plain(TcpListener),
    Tls {
        local: SocketAddr,
        ready: mpsc::Receiver<Accepted>,
    },
}

impl Listener {
    /// Starts handshaking the connections `listener` accepts, until the
    /// returned listener is dropped.
    pub fn tls(listener: TcpListener, acceptor: TlsAcceptor) -> io::Result<Listener> {
        let local = listener.local_addr()?;
        let (ready_tx, ready) = mpsc::channel(READY_MAX);
        tokio::spawn(handshake_loop(listener, acceptor, ready_tx));
        Ok(Listener::Tls { local, ready })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Listener::Plain(listener) => listener.local_addr(),
            Listener::Tls { local, .. } => Ok(*local),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Listener::Tls { .. })
    }

    /// The next connection. An error is the accept's (typically EMFILE):
    /// the caller backs off and calls again.
    pub async fn accept(&mut self) -> io::Result<Accepted> {
        match self {
            Listener::Plain(listener) => {
                let (stream, peer) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr()?;
                Ok(Accepted {
                    stream: Stream::Plain(stream),
                    peer,
                    local,
                    client_common_name: None,
                })
            }
            Listener::Tls { ready, .. } => ready
                .recv()
                .await
                .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "the TLS listener's task ended")),
        }
    }
}

async fn handshake_loop(listener: TcpListener, acceptor: TlsAcceptor, ready: mpsc::Sender<Accepted>) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            () = ready.closed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if handshakes.len() >= HANDSHAKES_MAX {
                        debug!(%peer, "too many TLS handshakes in progress; closing the connection");
                        continue;
                    }
                    handshakes.spawn(handshake(stream, peer, acceptor.clone()));
                }
                Err(error) => {
                    warn!(%error, "accepting a TLS connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(done) = handshakes.join_next(), if !handshakes.is_empty() => {
                if let Ok(Some(accepted)) = done
                    && ready.send(accepted).await.is_err()
                {
                    break;
                }
            }
        }
    }
}

async fn handshake(stream: TcpStream, peer: SocketAddr, acceptor: TlsAcceptor) -> Option<Accepted> {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().ok()?;
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            debug!(%peer, %error, "TLS handshake failed");
            return None;
        }
        Err(_) => {
            debug!(%peer, "TLS handshake timed out");
            return None;
        }
    };
    let client_common_name = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| common_name(leaf.as_ref()));
    Some(Accepted {
        stream: Stream::Tls(Box::new(stream)),
        peer,
        local,
        client_common_name,
    })
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Listener {
        Listener::Plain(listener)
    }
}
