//! The HTTP door's listeners, plain (`--http-addr`) and TLS
//! (`--https-addr`), served by axum with the client's address available to
//! handlers (`ConnectInfo<SocketAddr>`: loopback clients may be anonymous).
//! Knows how axum takes connections; nothing of what is served.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use conveyor_tls::{Listener, Stream};
use tokio::sync::watch;
use tracing::{info, warn};

/// A plain or TLS listener as axum takes one.
#[derive(Debug)]
pub struct HttpListener(Listener);

impl axum::serve::Listener for HttpListener {
    type Io = Stream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Stream, SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok(accepted) => return (accepted.stream, accepted.peer),
                Err(error) => {
                    // Typically EMFILE: back off instead of spinning.
                    warn!(%error, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// Serves `app` on `listener` until `shutdown` turns true; in-flight requests finish first.
pub async fn serve(listener: impl Into<Listener>, app: Router, mut shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
    let listener = listener.into();
    info!(addr = ?listener.local_addr().ok(), tls = listener.is_tls(), "HTTP listener up");
    // `tap_io` gives the listener axum's `ConnectInfo<SocketAddr>` support.
    let listener = HttpListener(listener).tap_io(|_| {});
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
}
