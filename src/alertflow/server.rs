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

use super::connection::{Connection, ConnectionError};
use super::{KeyLookup, set_keepalive};
use crate::limits::{AcceptBackoff, ConnectionLimiter, MemoryBudget};
use crate::wire::{Alert, Frame, FrameBody, Key};
use async_net::{TcpListener, TcpStream};
use futures_lite::FutureExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
        let limiter =
            ConnectionLimiter::new(self.config.max_connections, self.config.max_per_address);
        let memory = MemoryBudget::new(self.config.partial_frame_memory);
        let waiting = Arc::new(Unauthenticated::default());
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
                // Room for the newcomer: the oldest connection that has not authenticated yet
                // goes, when too many have not (or when every place is taken).
                if (waiting.len() >= self.config.max_unauthenticated
                    || limiter.open() >= self.config.max_connections)
                    && waiting.evict_oldest()
                {
                    self.counters
                        .evicted_unauthenticated
                        .fetch_add(1, Ordering::Relaxed);
                    // Its task drops its permit when it ends: let it run first.
                    futures_lite::future::yield_now().await;
                }
                let permit = match limiter.admit(peer.ip()) {
                    Ok(permit) => permit,
                    Err(hit) => {
                        let counter = match hit {
                            crate::limits::LimitHit::Total(_) => &self.counters.connections_refused,
                            crate::limits::LimitHit::PerAddress(_) => {
                                &self.counters.refused_per_address
                            }
                        };
                        let refused = counter.fetch_add(1, Ordering::Relaxed) + 1;
                        if refused.is_power_of_two() {
                            crate::log::event(
                                crate::log::Level::Warn,
                                "ALERTFLOW",
                                format_args!("refusing {peer}: {hit} ({refused} refused so far)"),
                            );
                        }
                        drop(stream);
                        continue;
                    }
                };
                self.counters
                    .connections_accepted
                    .fetch_add(1, Ordering::Relaxed);
                self.counters
                    .connections_open
                    .fetch_add(1, Ordering::Relaxed);
                let (ticket, evicted) = waiting.enter();
                let connection = ConnectionTask {
                    handler: Arc::clone(&self.handler),
                    keys: Arc::clone(&self.keys),
                    counters: Arc::clone(&self.counters),
                    config: self.config.clone(),
                    waiting: Arc::clone(&waiting),
                    ticket,
                    peer,
                };
                let stopped = stopped.clone();
                let memory = memory.clone();
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
                            // Closed (not sent to) once the connection authenticated: then it
                            // can no longer be evicted.
                            if evicted.recv().await.is_err() {
                                futures_lite::future::pending::<()>().await;
                            }
                            crate::log::event(
                                crate::log::Level::Warn,
                                "ALERTFLOW",
                                format_args!(
                                    "closing {peer}: no valid frame yet, and newer connections \
                                     need its place"
                                ),
                            );
                        })
                        .await;
                    waiting.leave(ticket);
                    counters.connections_open.fetch_sub(1, Ordering::Relaxed);
                })
                .detach();
            }
        };
        accept_loop.or(shutdown).await;
    }
}

/// The connections that have not delivered a valid first frame yet, oldest first, each with
/// the sender that closes it.
#[derive(Debug, Default)]
struct Unauthenticated {
    inner: Mutex<(u64, BTreeMap<u64, smol::channel::Sender<()>>)>,
}

impl Unauthenticated {
    fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).1.len()
    }

    /// Adds a connection; returns its ticket and what tells it to close.
    fn enter(&self) -> (u64, smol::channel::Receiver<()>) {
        let (tx, rx) = smol::channel::bounded(1);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0 += 1;
        let ticket = inner.0;
        inner.1.insert(ticket, tx);
        (ticket, rx)
    }

    /// The connection authenticated, or ended.
    fn leave(&self, ticket: u64) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .remove(&ticket);
    }

    /// Closes the oldest; false when there is none.
    fn evict_oldest(&self) -> bool {
        let oldest = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .pop_first();
        match oldest {
            Some((_, tx)) => {
                let _ = tx.try_send(());
                true
            }
            None => false,
        }
    }
}

/// One agent's connection.
struct ConnectionTask {
    handler: Arc<dyn AlertHandler>,
    keys: KeyLookup,
    counters: Arc<Counters>,
    config: AlertServerConfig,
    waiting: Arc<Unauthenticated>,
    ticket: u64,
    peer: SocketAddr,
}

enum Read {
    Frame(Result<Option<Frame>, ConnectionError>),
    TimedOut,
}

impl ConnectionTask {
    fn warn(&self, text: std::fmt::Arguments<'_>) {
        crate::log::event(crate::log::Level::Warn, "ALERTFLOW", text);
    }

    async fn serve(&self, stream: TcpStream, memory: MemoryBudget) {
        let _ = stream.set_nodelay(true);
        set_keepalive(&stream);
        let peer = self.peer;
        let mut conn = Connection::with_budget(stream, memory);
        // The agent id of the connection's first valid frame: every later frame must carry it.
        let mut bound: Option<u32> = None;
        // An agent id that has no key here (or is not registered), seen while reading.
        let refused_id = AtomicU64::new(0); // id + 1; 0: none
        loop {
            let limit = if bound.is_none() {
                self.config.handshake_timeout
            } else {
                self.config.idle_timeout
            };
            let key_for = |id: u32| -> Option<Key> {
                match (self.keys)(id) {
                    Some(key) => key,
                    None => {
                        refused_id.store(u64::from(id) + 1, Ordering::Relaxed);
                        // A key no frame is tagged with: the frame is refused as a bad tag.
                        Key::from_bytes(b"no key for this agent id").ok()
                    }
                }
            };
            let read = async { Read::Frame(conn.read_frame(key_for).await) }
                .or(async {
                    async_io::Timer::after(limit).await;
                    Read::TimedOut
                })
                .await;
            let frame = match read {
                Read::TimedOut if bound.is_none() => {
                    self.counters
                        .handshake_timeouts
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Read::TimedOut => {
                    self.counters.idle_closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Read::Frame(Ok(Some(frame))) => frame,
                Read::Frame(Ok(None)) => return,
                Read::Frame(Err(_)) if refused_id.load(Ordering::Relaxed) != 0 => {
                    self.counters.unknown_agents.fetch_add(1, Ordering::Relaxed);
                    let id = refused_id.load(Ordering::Relaxed) - 1;
                    let n = self.counters.unknown_agents.load(Ordering::Relaxed);
                    if n.is_power_of_two() {
                        self.warn(format_args!(
                            "dropping the connection from {peer}: agent id {id} is not \
                             registered here, or has no key ({n} such connection(s) so far)"
                        ));
                    }
                    return;
                }
                Read::Frame(Err(e @ ConnectionError::MemoryFull { .. })) => {
                    self.counters.memory_full.fetch_add(1, Ordering::Relaxed);
                    self.warn(format_args!("dropping the connection from {peer}: {e}"));
                    return;
                }
                Read::Frame(Err(e @ ConnectionError::Malformed { .. })) => {
                    self.counters
                        .malformed_frames
                        .fetch_add(1, Ordering::Relaxed);
                    self.warn(format_args!("dropping the connection from {peer}: {e}"));
                    return;
                }
                Read::Frame(Err(e)) => {
                    if bound.is_some() {
                        self.warn(format_args!("connection from {peer} ended: {e}"));
                    }
                    return;
                }
            };
            let Frame {
                keyed,
                agent_id,
                body,
            } = frame;
            match bound {
                None => {
                    bound = Some(agent_id);
                    self.waiting.leave(self.ticket);
                }
                Some(first) if first != agent_id => {
                    self.counters.refused_alerts.fetch_add(1, Ordering::Relaxed);
                    self.warn(format_args!(
                        "dropping the connection from {peer}: a frame of agent {agent_id} on \
                         the connection of agent {first}"
                    ));
                    return;
                }
                Some(_) => {}
            }
            let alert = match body {
                FrameBody::Alert(alert) => alert,
                FrameBody::AlertAck { alert_id } => {
                    self.counters
                        .malformed_frames
                        .fetch_add(1, Ordering::Relaxed);
                    self.warn(format_args!(
                        "dropping the connection from {peer}: it sent an ALERT_ACK \
                         ({alert_id:016x}), which only the server sends"
                    ));
                    return;
                }
            };
            let alert_id = alert.alert_id;
            let handler = Arc::clone(&self.handler);
            let stored = smol::unblock(move || handler.store(agent_id, peer, alert)).await;
            match stored {
                Ok(StoreOutcome::Stored) => {
                    self.counters.alerts_stored.fetch_add(1, Ordering::Relaxed);
                }
                Ok(StoreOutcome::Duplicate) => {
                    self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                }
                Ok(StoreOutcome::Refused(why)) => {
                    self.counters.refused_alerts.fetch_add(1, Ordering::Relaxed);
                    self.warn(format_args!(
                        "dropping the connection from {peer}: alert {alert_id:016x} refused: {why}"
                    ));
                    return;
                }
                Err(e) => {
                    self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
                    self.warn(format_args!(
                        "cannot store alert {alert_id:016x} from agent {agent_id} ({peer}): {e}; \
                         not acknowledged, the agent will resend it"
                    ));
                    continue;
                }
            }
            let ack = Frame {
                keyed,
                agent_id,
                body: FrameBody::AlertAck { alert_id },
            };
            let key = (self.keys)(agent_id).flatten();
            if let Err(e) = conn.write_frame(&ack, key.as_ref()).await {
                self.warn(format_args!("connection from {peer} ended: {e}"));
                return;
            }
        }
    }
}
