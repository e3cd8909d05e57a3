//! The server's side of AlertFlow: accept agents' connections, store each alert, acknowledge it.
//!
//! [`AlertServer::run`] accepts connections on a listener until its shutdown future completes,
//! one task per connection. For every ALERT frame the server calls [`AlertHandler::store`] and
//! writes an ALERT_ACK only when the handler returns `Ok` (stored, or already stored before:
//! agents resend until acknowledged, so the handler must deduplicate by alert id). On an error
//! nothing is acknowledged and the agent sends the alert again later. A frame with a bad tag or a
//! malformed body, a frame of another agent id than the connection's first, and an alert the
//! handler refuses end the connection, logged with the peer's address; other connections go on.
//!
//! Nobody can lock agents out by opening connections ([`AlertServerConfig`]): a connection must
//! deliver a whole, valid first frame within the handshake deadline, and until it has, it is
//! *unauthenticated*: when too many are, the oldest is closed to make room for a new one. At most
//! so many connections are open in all and from one address; an authenticated connection that
//! sends nothing for the idle timeout is closed (agents connect again when they have an alert);
//! and the bytes of partial frames of all connections together are bounded and given back when
//! a frame completes or its connection closes. Accept errors are retried with a back-off.

mod connection_task;
mod unauthenticated;

use super::KeyLookup;
use crate::limits::{AcceptBackoff, ConnectionLimiter, ConnectionPermit, LimitHit, MemoryBudget};
use crate::wire::Alert;
use async_net::{TcpListener, TcpStream};
use connection_task::ConnectionTask;
use futures_lite::FutureExt;
use serde::Serialize;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use unauthenticated::Unauthenticated;

/// What the handler did with an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreOutcome {
    Stored,
    /// An alert with this id was stored before (a resend); nothing changed.
    Duplicate,
    /// Not stored, and never will be (it names another agent than the one the frame comes
    /// from, ...): the connection is closed, and the reason logged.
    Refused(String),
}

/// Where received alerts go (the server's alert store).
pub trait AlertHandler: Send + Sync + 'static {
    /// Stores `alert` from agent `agent_id`, connected from `peer`, durably enough that the
    /// agent may forget it once this returns `Ok`. Called on a blocking-I/O thread, so it may
    /// write files. Must store each `alert_id` once, however often it is called with it.
    fn store(
        &self,
        agent_id: u32,
        peer: SocketAddr,
        alert: Alert,
    ) -> Result<StoreOutcome, Box<dyn std::error::Error + Send + Sync>>;
}

/// Settings of an [`AlertServer`].
#[derive(Debug, Clone)]
pub struct AlertServerConfig {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one address.
    pub max_per_address: usize,
    /// Most connections that have not delivered a valid first frame yet; past it the oldest of
    /// them is closed for a new one.
    pub max_unauthenticated: usize,
    /// A connection's first whole, valid frame must arrive within this.
    pub handshake_timeout: Duration,
    /// An authenticated connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Bytes the partial frames of all connections may hold together (past each one's first
    /// kilobyte).
    pub partial_frame_memory: usize,
}

impl Default for AlertServerConfig {
    fn default() -> Self {
        AlertServerConfig {
            max_connections: 10_000,
            max_per_address: 64,
            max_unauthenticated: 1024,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            partial_frame_memory: 64 * 1024 * 1024,
        }
    }
}

/// A snapshot of the server's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServerCounts {
    pub connections_accepted: u64,
    /// Connections closed at once because `max_connections` were open.
    pub connections_refused: u64,
    pub connections_open: u64,
    pub alerts_stored: u64,
    pub duplicates: u64,
    /// Alerts the handler failed to store (not acknowledged).
    pub store_errors: u64,
    /// Connections dropped for a malformed frame or a bad tag.
    pub malformed_frames: u64,
    /// Connections refused for the per-address limit.
    pub refused_per_address: u64,
    /// Connections closed for sending no valid first frame within the handshake deadline, or
    /// closed to make room for a newer unauthenticated one.
    pub handshake_timeouts: u64,
    pub evicted_unauthenticated: u64,
    /// Connections closed for staying idle.
    pub idle_closed: u64,
    /// Frames of agent ids that are not registered, or that have no key while keys are set.
    pub unknown_agents: u64,
    /// Connections closed because the handler refused an alert (another agent's name), or
    /// because a frame carried another agent id than the connection's first.
    pub refused_alerts: u64,
    /// Connections closed because partial frames had used up their memory.
    pub memory_full: u64,
}

/// The counters behind [`ServerCounts`].
#[derive(Debug, Default)]
struct Counters {
    connections_accepted: AtomicU64,
    connections_refused: AtomicU64,
    connections_open: AtomicU64,
    alerts_stored: AtomicU64,
    duplicates: AtomicU64,
    store_errors: AtomicU64,
    malformed_frames: AtomicU64,
    refused_per_address: AtomicU64,
    handshake_timeouts: AtomicU64,
    evicted_unauthenticated: AtomicU64,
    idle_closed: AtomicU64,
    unknown_agents: AtomicU64,
    refused_alerts: AtomicU64,
    memory_full: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ServerCounts {
        ServerCounts {
            connections_accepted: self.connections_accepted.load(Ordering::Relaxed),
            connections_refused: self.connections_refused.load(Ordering::Relaxed),
            connections_open: self.connections_open.load(Ordering::Relaxed),
            alerts_stored: self.alerts_stored.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            store_errors: self.store_errors.load(Ordering::Relaxed),
            malformed_frames: self.malformed_frames.load(Ordering::Relaxed),
            refused_per_address: self.refused_per_address.load(Ordering::Relaxed),
            handshake_timeouts: self.handshake_timeouts.load(Ordering::Relaxed),
            evicted_unauthenticated: self.evicted_unauthenticated.load(Ordering::Relaxed),
            idle_closed: self.idle_closed.load(Ordering::Relaxed),
            unknown_agents: self.unknown_agents.load(Ordering::Relaxed),
            refused_alerts: self.refused_alerts.load(Ordering::Relaxed),
            memory_full: self.memory_full.load(Ordering::Relaxed),
        }
    }
}

/// Counters of a running server; [`AlertServer::stats`] hands one out before `run` starts.
#[derive(Debug, Clone)]
pub struct ServerStats(Arc<Counters>);

impl ServerStats {
    pub fn counts(&self) -> ServerCounts {
        self.0.snapshot()
    }
}

/// What the accept loop hands every connection it admits.
struct Accepting {
    limiter: ConnectionLimiter,
    /// For the partial frames of all connections.
    memory: MemoryBudget,
    waiting: Arc<Unauthenticated>,
    /// Ends every connection task when its sender (held by `run`) is dropped.
    stopped: smol::channel::Receiver<()>,
}

/// The AlertFlow server. See the module documentation.
pub struct AlertServer {
    handler: Arc<dyn AlertHandler>,
    keys: KeyLookup,
    config: AlertServerConfig,
    counters: Arc<Counters>,
}

impl AlertServer {
    /// `keys` gives the key each agent id's frames are tagged with: `None` for an id that may
    /// not send alerts at all, `Some(None)` for plain SHA-256 tags, `Some(Some(key))` for HMAC
    /// tags with that key (the agent's session key).
    pub fn new(handler: Arc<dyn AlertHandler>, keys: KeyLookup) -> AlertServer {
        AlertServer {
            handler,
            keys,
            config: AlertServerConfig::default(),
            counters: Arc::default(),
        }
    }

    pub fn with_config(mut self, config: AlertServerConfig) -> AlertServer {
        self.config = config;
        self
    }

    pub fn stats(&self) -> ServerStats {
        ServerStats(Arc::clone(&self.counters))
    }

    /// Accepts and serves connections until `shutdown` completes; then closes every connection
    /// (an alert being stored meanwhile is stored but not acknowledged: the agent resends it and
    /// the handler sees a duplicate). Accept errors (out of file descriptors, ...) are logged
    /// and retried with a back-off, never fatal.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        // Every connection task ends when this sender is dropped, that is when `run` returns.
        let (_stop, stopped) = smol::channel::bounded::<()>(1);
        let accepting = Accepting {
            limiter: ConnectionLimiter::new(
                self.config.max_connections,
                self.config.max_per_address,
            ),
            memory: MemoryBudget::new(self.config.partial_frame_memory),
            waiting: Arc::new(Unauthenticated::default()),
            stopped,
        };
        let accept_loop = async {
            let mut backoff = AcceptBackoff::new("ALERTFLOW");
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => {
                        backoff.accepted();
                        accepted
                    }
                    Err(e) => {
                        async_io::Timer::after(backoff.failed(&e)).await;
                        continue;
                    }
                };
                self.make_room(&accepting).await;
                let Some(permit) = self.admit(&accepting.limiter, peer) else {
                    drop(stream);
                    continue;
                };
                self.spawn_connection(&accepting, stream, peer, permit);
            }
        };
        accept_loop.or(shutdown).await;
    }

    /// Room for a newcomer: the oldest connection that has not authenticated yet goes, when too
    /// many have not (or when every place is taken).
    async fn make_room(&self, accepting: &Accepting) {
        if (accepting.waiting.len() >= self.config.max_unauthenticated
            || accepting.limiter.open() >= self.config.max_connections)
            && accepting.waiting.evict_oldest()
        {
            self.counters
                .evicted_unauthenticated
                .fetch_add(1, Ordering::Relaxed);
            // Its task drops its permit when it ends: let it run first.
            futures_lite::future::yield_now().await;
        }
    }

    /// A place for a connection from `peer`; `None`, counted (and logged now and then), past
    /// the limits.
    fn admit(&self, limiter: &ConnectionLimiter, peer: SocketAddr) -> Option<ConnectionPermit> {
        let hit = match limiter.admit(peer.ip()) {
            Ok(permit) => return Some(permit),
            Err(hit) => hit,
        };
        let counter = match hit {
            LimitHit::Total(_) => &self.counters.connections_refused,
            LimitHit::PerAddress(_) => &self.counters.refused_per_address,
        };
        let refused = counter.fetch_add(1, Ordering::Relaxed) + 1;
        if refused.is_power_of_two() {
            crate::log::event(
                crate::log::Level::Warn,
                "ALERTFLOW",
                format_args!("refusing {peer}: {hit} ({refused} refused so far)"),
            );
        }
        None
    }

    /// Serves an admitted connection on its own task, until it ends, the server stops, or a
    /// newer connection takes its place while it is still unauthenticated.
    fn spawn_connection(
        &self,
        accepting: &Accepting,
        stream: TcpStream,
        peer: SocketAddr,
        permit: ConnectionPermit,
    ) {
        self.counters
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        self.counters
            .connections_open
            .fetch_add(1, Ordering::Relaxed);
        let (ticket, evicted) = accepting.waiting.enter();
        let connection = ConnectionTask {
            handler: Arc::clone(&self.handler),
            keys: Arc::clone(&self.keys),
            counters: Arc::clone(&self.counters),
            config: self.config.clone(),
            waiting: Arc::clone(&accepting.waiting),
            ticket,
            peer,
        };
        let stopped = accepting.stopped.clone();
        let memory = accepting.memory.clone();
        smol::spawn(async move {
            let _permit = permit;
            let counters = Arc::clone(&connection.counters);
            let waiting = Arc::clone(&connection.waiting);
            connection
                .serve(stream, memory)
                .or(async {
                    let _ = stopped.recv().await;
                })
                .or(async {
                    // Closed (not sent to) once the connection authenticated: then it can no
                    // longer be evicted.
                    if evicted.recv().await.is_err() {
                        futures_lite::future::pending::<()>().await;
                    }
                    crate::log::event(
                        crate::log::Level::Warn,
                        "ALERTFLOW",
                        format_args!(
                            "closing {peer}: no valid frame yet, and newer connections need its \
                             place"
                        ),
                    );
                })
                .await;
            waiting.leave(ticket);
            counters.connections_open.fetch_sub(1, Ordering::Relaxed);
        })
        .detach();
    }
}
