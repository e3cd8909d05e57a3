//! The server's side of AlertFlow: accept agents' connections, store each alert, acknowledge it.
//!
//! [`AlertServer::run`] accepts connections on a listener until its shutdown future completes,
//! one task per connection, at most [`AlertServerConfig::max_connections`] at once (more are
//! closed at once and counted; the agent retries). For every ALERT frame the server calls
//! [`AlertHandler::store`] and writes an ALERT_ACK only when the handler returns `Ok` (stored,
//! or already stored before: agents resend until acknowledged, so the handler must deduplicate
//! by alert id). On an error nothing is acknowledged and the agent sends the alert again later.
//! A frame with a bad tag or a malformed body ends its connection, logged with the peer's
//! address and the byte offset; other connections go on. Idle connections stay open: agents
//! keep theirs for as long as they run.

use super::connection::{Connection, ConnectionError};
use super::{KeyLookup, set_keepalive};
use crate::wire::{Alert, Frame, FrameBody};
use async_net::{TcpListener, TcpStream};
use futures_lite::FutureExt;
use serde::Serialize;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What the handler did with an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreOutcome {
    Stored,
    /// An alert with this id was stored before (a resend); nothing changed.
    Duplicate,
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
}

impl Default for AlertServerConfig {
    fn default() -> Self {
        AlertServerConfig {
            max_connections: 10_000,
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
    /// `keys` gives each agent's pre-shared key by agent id (`None`: plain SHA-256 tags).
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
    /// and retried, never fatal.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        // Every connection task ends when this sender is dropped, that is when `run` returns.
        let (_stop, stopped) = smol::channel::bounded::<()>(1);
        let accept_loop = async {
            let mut accept_errors = 0u64;
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        accept_errors += 1;
                        if accept_errors.is_power_of_two() {
                            crate::log::event(
                                crate::log::Level::Warn,
                                "ALERTFLOW",
                                format_args!(
                                    "accepting a connection failed ({e}); retrying \
                                 ({accept_errors} failure(s) so far)"
                                ),
                            );
                        }
                        async_io::Timer::after(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let open = self.counters.connections_open.load(Ordering::Relaxed);
                if open >= self.config.max_connections as u64 {
                    let refused = self
                        .counters
                        .connections_refused
                        .fetch_add(1, Ordering::Relaxed);
                    if refused.is_power_of_two() || refused == 0 {
                        crate::log::event(
                            crate::log::Level::Warn,
                            "ALERTFLOW",
                            format_args!(
                                "refusing {peer}: {open} connections are open, the \
                             maximum ({} refused so far)",
                                refused + 1
                            ),
                        );
                    }
                    drop(stream);
                    continue;
                }
                self.counters
                    .connections_accepted
                    .fetch_add(1, Ordering::Relaxed);
                self.counters
                    .connections_open
                    .fetch_add(1, Ordering::Relaxed);
                let connection = ConnectionTask {
                    handler: Arc::clone(&self.handler),
                    keys: Arc::clone(&self.keys),
                    counters: Arc::clone(&self.counters),
                    peer,
                };
                let stopped = stopped.clone();
                smol::spawn(async move {
                    let counters = Arc::clone(&connection.counters);
                    connection
                        .serve(stream)
                        .or(async {
                            let _ = stopped.recv().await;
                        })
                        .await;
                    counters.connections_open.fetch_sub(1, Ordering::Relaxed);
                })
                .detach();
            }
        };
        accept_loop.or(shutdown).await;
    }
}

/// One agent's connection.
struct ConnectionTask {
    handler: Arc<dyn AlertHandler>,
    keys: KeyLookup,
    counters: Arc<Counters>,
    peer: SocketAddr,
}

impl ConnectionTask {
    async fn serve(&self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        set_keepalive(&stream);
        let peer = self.peer;
        let mut conn = Connection::new(stream);
        loop {
            let frame = match conn.read_frame(|id| (self.keys)(id)).await {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(e @ ConnectionError::Malformed { .. }) => {
                    self.counters
                        .malformed_frames
                        .fetch_add(1, Ordering::Relaxed);
                    crate::log::event(
                        crate::log::Level::Warn,
                        "ALERTFLOW",
                        format_args!("dropping the connection from {peer}: {e}"),
                    );
                    return;
                }
                Err(e) => {
                    crate::log::event(
                        crate::log::Level::Warn,
                        "ALERTFLOW",
                        format_args!("connection from {peer} ended: {e}"),
                    );
                    return;
                }
            };
            let Frame {
                keyed,
                agent_id,
                body,
            } = frame;
            let alert = match body {
                FrameBody::Alert(alert) => alert,
                FrameBody::AlertAck { alert_id } => {
                    self.counters
                        .malformed_frames
                        .fetch_add(1, Ordering::Relaxed);
                    crate::log::event(
                        crate::log::Level::Warn,
                        "ALERTFLOW",
                        format_args!(
                            "dropping the connection from {peer}: it sent an \
                         ALERT_ACK ({alert_id:016x}), which only the server sends"
                        ),
                    );
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
                Err(e) => {
                    self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
                    crate::log::event(
                        crate::log::Level::Warn,
                        "ALERTFLOW",
                        format_args!(
                            "cannot store alert {alert_id:016x} from agent \
                         {agent_id} ({peer}): {e}; not acknowledged, the agent will resend it"
                        ),
                    );
                    continue;
                }
            }
            let ack = Frame {
                keyed,
                agent_id,
                body: FrameBody::AlertAck { alert_id },
            };
            let key = (self.keys)(agent_id);
            if let Err(e) = conn.write_frame(&ack, key.as_ref()).await {
                crate::log::event(
                    crate::log::Level::Warn,
                    "ALERTFLOW",
                    format_args!("connection from {peer} ended: {e}"),
                );
                return;
            }
        }
    }
}
