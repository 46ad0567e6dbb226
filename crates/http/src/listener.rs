//! The HTTP door's listeners, plain (`--http-addr`) and TLS
//! (`--https-addr`), and their accept loop: each accepted connection takes
//! a slot from the core's connection limits (refused past
//! `connections_max` or `connections_per_address_max`: the socket is closed
//! at once), is served by hyper's HTTP/1.1 connection (what axum's own
//! `serve` speaks here) with the client's address available to handlers
//! (`ConnectInfo<SocketAddr>`: loopback clients may be anonymous) and a
//! header read timeout (a client that takes longer than
//! `http_header_read_timeout_ms` to send a request's headers, or idles that
//! long between requests, is disconnected: the slowloris defence axum's
//! `serve` lacks), and at shutdown finishes its request in flight and
//! closes. Knows no routes: those are `router`'s.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use conveyor_core::limits::{Limit, Limits};
use conveyor_tls::{Accepted, Listener};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;
use tracing::{debug, info, warn};

/// Serves `app` on `listener` (plain TCP or TLS) until `shutdown` turns
/// true, then stops accepting and lets every open connection finish the
/// request it is serving (the caller bounds how long that may take).
pub async fn serve(listener: impl Into<Listener>, app: Router, limits: Arc<Limits>, mut shutdown: watch::Receiver<bool>) {
    let mut listener = listener.into();
    let tls = listener.is_tls();
    info!(addr = ?listener.local_addr().ok(), tls, "HTTP listener up");
    let header_read_timeout = Duration::from_millis(limits.config().http_header_read_timeout_ms);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    let peer = accepted.peer;
                    let Ok(slot) = limits.admit_connection(peer.ip()) else {
                        debug!(%peer, tls, "HTTP connection refused: connection limit");
                        continue;
                    };
                    let connection = serve_connection(accepted, app.clone(), Arc::clone(&limits), header_read_timeout, shutdown.clone());
                    connections.spawn(async move {
                        let _slot = slot;
                        connection.await;
                    });
                }
                Err(error) => {
                    // Typically EMFILE: back off instead of spinning.
                    warn!(%error, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Serves one connection until the client leaves, is too slow, or the broker shuts down.
async fn serve_connection(
    accepted: Accepted,
    app: Router,
    limits: Arc<Limits>,
    header_read_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let peer: SocketAddr = accepted.peer;
    // Connect info: the admin API's anonymous access depends on the client's address.
    let service = app.map_request(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.map(Body::new)
    });
    let service = TowerToHyperService::new(service.map_err(|never: Infallible| match never {}));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    let connection = builder.serve_connection(TokioIo::new(accepted.stream), service).with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                if error.is_timeout() {
                    limits.reach(Limit::HttpHeaderRead, format!("HTTP client {peer} was too slow sending headers"));
                }
                debug!(%peer, %error, "HTTP connection ended");
            }
            return;
        }
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
    // Finish the request in flight, then close.
    connection.as_mut().graceful_shutdown();
    if let Err(error) = connection.await {
        debug!(%peer, %error, "HTTP connection ended during shutdown");
    }
}
