//! The open client connections of every protocol, for operators: who is
//! connected (protocol, peer address, client name, user, since when, open
//! channels) and a way to close one. A front door registers a connection
//! when it accepts it and holds the [`Registration`] until the connection
//! ends; dropping it deregisters, so the list cannot outlive the sockets.
//! Closing is a request the connection's own loop acts on (AMQP tells the
//! client why first; Kafka drops the socket): the registry never touches a
//! socket and knows no wire format.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use conveyor_log::clock::Clock;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

/// The protocols whose connections are registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Kafka,
    Amqp,
}

impl Protocol {
    pub const ALL: [Protocol; 2] = [Protocol::Kafka, Protocol::Amqp];

    /// The lowercase name used in the admin API and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Kafka => "kafka",
            Protocol::Amqp => "amqp",
        }
    }
}

/// One open connection as the registry holds it.
#[derive(Debug)]
pub struct ClientConnection {
    pub id: u64,
    pub protocol: Protocol,
    pub peer: SocketAddr,
    pub connected_at_ms: u64,
    /// What the client says it is and who logged in; known after the first
    /// request (Kafka) or the handshake (AMQP).
    identity: Mutex<Identity>,
    /// AMQP: channels open on the connection; Kafka has none.
    channels: AtomicU64,
    /// Turns true when an operator asks for the connection to close.
    close: watch::Sender<bool>,
}

#[derive(Debug, Default, Clone)]
struct Identity {
    client: String,
    user: Option<String>,
    vhost: Option<String>,
}

/// A connection at one moment, for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub id: u64,
    pub protocol: Protocol,
    pub peer: SocketAddr,
    /// Kafka: the requests' client id; AMQP: the connection name, or the
    /// client library's product and version. Empty until known.
    pub client: String,
    /// AMQP: the login; Kafka: none (no SASL yet).
    pub user: Option<String>,
    /// AMQP: the vhost the connection opened; Kafka: none.
    pub vhost: Option<String>,
    pub connected_at_ms: u64,
    pub channels: u64,
}

impl ClientConnection {
    pub fn set_client(&self, client: impl Into<String>) {
        self.identity.lock().client = client.into();
    }

    /// Whether the client is still unknown (so a front door sets it once).
    pub fn client_unknown(&self) -> bool {
        self.identity.lock().client.is_empty()
    }

    pub fn set_user(&self, user: impl Into<String>) {
        self.identity.lock().user = Some(user.into());
    }

    pub fn set_vhost(&self, vhost: impl Into<String>) {
        self.identity.lock().vhost = Some(vhost.into());
    }

    pub fn set_channels(&self, open: u64) {
        self.channels.store(open, Ordering::Relaxed);
    }

    pub fn channels(&self) -> u64 {
        self.channels.load(Ordering::Relaxed)
    }

    /// Asks the connection to close; its loop notices at its next wait.
    pub fn close(&self) {
        self.close.send_replace(true);
    }

    /// Resolves once a close was asked for (at once if it already was).
    /// Owned, so a connection loop can keep it across `select!`s.
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut requested = self.close.subscribe();
        async move {
            // The sender lives as long as the registration that owns this
            // connection; gone means the connection is ending anyway.
            if requested.wait_for(|closing| *closing).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    pub fn info(&self) -> ConnectionInfo {
        let identity = self.identity.lock().clone();
        ConnectionInfo {
            id: self.id,
            protocol: self.protocol,
            peer: self.peer,
            client: identity.client,
            user: identity.user,
            vhost: identity.vhost,
            connected_at_ms: self.connected_at_ms,
            channels: self.channels(),
        }
    }
}

/// Every open connection, by id.
#[derive(Debug)]
pub struct Connections {
    clock: Arc<dyn Clock>,
    next_id: AtomicU64,
    open: RwLock<BTreeMap<u64, Arc<ClientConnection>>>,
}

impl Connections {
    pub fn new(clock: Arc<dyn Clock>) -> Connections {
        Connections {
            clock,
            next_id: AtomicU64::new(1),
            open: RwLock::new(BTreeMap::new()),
        }
    }

    /// Registers a connection just accepted from `peer`; it stays listed
    /// until the returned registration is dropped.
    pub fn register(self: &Arc<Self>, protocol: Protocol, peer: SocketAddr) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(ClientConnection {
            id,
            protocol,
            peer,
            connected_at_ms: u64::try_from(self.clock.now_ms()).unwrap_or(0),
            identity: Mutex::new(Identity::default()),
            channels: AtomicU64::new(0),
            close: watch::Sender::new(false),
        });
        self.open.write().insert(id, Arc::clone(&connection));
        Registration {
            connections: Arc::clone(self),
            connection,
        }
    }

    /// Every open connection, by id (the order they were accepted in).
    pub fn list(&self) -> Vec<ConnectionInfo> {
        self.open.read().values().map(|connection| connection.info()).collect()
    }

    pub fn get(&self, id: u64) -> Option<ConnectionInfo> {
        self.open.read().get(&id).map(|connection| connection.info())
    }

    /// Asks connection `id` to close; false when there is no such connection.
    pub fn close(&self, id: u64) -> bool {
        match self.open.read().get(&id) {
            Some(connection) => {
                connection.close();
                true
            }
            None => false,
        }
    }

    /// Asks every connection in vhost `name` to close (the vhost is being
    /// deleted, as RabbitMQ closes them); returns how many.
    pub fn close_vhost(&self, name: &str) -> usize {
        let open = self.open.read();
        let mut closed = 0;
        for connection in open.values() {
            if connection.identity.lock().vhost.as_deref() == Some(name) {
                connection.close();
                closed += 1;
            }
        }
        closed
    }

    /// Open connections and their open channels, per protocol (every
    /// protocol listed, with zeros, so the metric series always exist).
    pub fn totals(&self) -> Vec<(Protocol, u64, u64)> {
        let open = self.open.read();
        Protocol::ALL
            .iter()
            .map(|protocol| {
                let of_protocol = open.values().filter(|connection| connection.protocol == *protocol);
                let (count, channels) = of_protocol.fold((0, 0), |(count, channels), connection| {
                    (count + 1, channels + connection.channels())
                });
                (*protocol, count, channels)
            })
            .collect()
    }
}

/// A registered connection; deregisters it when dropped.
#[derive(Debug)]
pub struct Registration {
    connections: Arc<Connections>,
    connection: Arc<ClientConnection>,
}

impl Registration {
    pub fn connection(&self) -> &Arc<ClientConnection> {
        &self.connection
    }
}

impl std::ops::Deref for Registration {
    type Target = ClientConnection;

    fn deref(&self) -> &ClientConnection {
        &self.connection
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.connections.open.write().remove(&self.connection.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_log::clock::ManualClock;

    fn registry() -> Arc<Connections> {
        Arc::new(Connections::new(ManualClock::new(1_700_000_000_000)))
    }

    #[test]
    fn connections_are_listed_while_registered_with_what_their_front_door_learned() {
        let connections = registry();
        let peer: SocketAddr = ([127, 0, 0, 1], 40000).into();
        let kafka = connections.register(Protocol::Kafka, peer);
        let amqp = connections.register(Protocol::Amqp, peer);
        kafka.set_client("billing-consumer");
        amqp.set_client("orders-app");
        amqp.set_user("alice");
        amqp.set_channels(2);
        let listed = connections.list();
        assert_eq!(listed.len(), 2);
        assert_eq!(
            (listed[0].protocol, listed[0].client.as_str(), listed[0].user.as_deref()),
            (Protocol::Kafka, "billing-consumer", None)
        );
        assert_eq!(
            (listed[1].client.as_str(), listed[1].user.as_deref(), listed[1].channels),
            ("orders-app", Some("alice"), 2)
        );
        assert_eq!(listed[1].connected_at_ms, 1_700_000_000_000);
        assert!(listed[0].id < listed[1].id);
        assert_eq!(connections.totals(), vec![(Protocol::Kafka, 1, 0), (Protocol::Amqp, 1, 2)]);
        drop(kafka);
        assert_eq!(connections.list().len(), 1);
        assert_eq!(connections.get(amqp.id).map(|info| info.id), Some(amqp.id));
        drop(amqp);
        assert!(connections.list().is_empty());
        assert_eq!(connections.totals(), vec![(Protocol::Kafka, 0, 0), (Protocol::Amqp, 0, 0)]);
    }

    #[tokio::test]
    async fn closing_wakes_the_connection_and_unknown_ids_are_refused() {
        let connections = registry();
        let registration = connections.register(Protocol::Amqp, ([127, 0, 0, 1], 1).into());
        let closed = registration.closed();
        let waiter = tokio::spawn(closed);
        assert!(!connections.close(registration.id + 1));
        assert!(connections.close(registration.id));
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
        // A close asked before anyone waits is not lost.
        tokio::time::timeout(std::time::Duration::from_secs(5), registration.closed())
            .await
            .expect("already closed");
    }
}
