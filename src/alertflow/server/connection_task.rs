//! One agent's connection to the AlertFlow server: read frames (within the handshake deadline
//! until the first valid one, within the idle timeout after), hold every frame to the agent id
//! of the first, hand each alert to the [`AlertHandler`] and acknowledge it once stored.

use super::unauthenticated::Unauthenticated;
use super::{AlertHandler, AlertServerConfig, Counters, StoreOutcome};
use crate::alertflow::KeyLookup;
use crate::alertflow::connection::{Connection, ConnectionError};
use crate::alertflow::set_keepalive;
use crate::limits::MemoryBudget;
use crate::wire::{Alert, Frame, FrameBody, Key};
use async_net::TcpStream;
use futures_lite::FutureExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One agent's connection.
pub(super) struct ConnectionTask {
    pub(super) handler: Arc<dyn AlertHandler>,
    pub(super) keys: KeyLookup,
    pub(super) counters: Arc<Counters>,
    pub(super) config: AlertServerConfig,
    pub(super) waiting: Arc<Unauthenticated>,
    pub(super) ticket: u64,
    pub(super) peer: SocketAddr,
}

enum Read {
    Frame(Result<Option<Frame>, ConnectionError>),
    TimedOut,
}

/// What became of an alert handed to the handler.
enum Handled {
    /// Stored now or before: acknowledge it.
    Acknowledge,
    /// Not stored this time: the agent resends it; the connection goes on.
    Unacknowledged,
    /// Refused: the connection is closed.
    Close,
}

/// What a connection has learnt about its agent.
struct Peer {
    /// The agent id of the connection's first valid frame: every later frame must carry it.
    bound: Option<u32>,
    /// An agent id that has no key here (or is not registered), seen while reading: id + 1;
    /// 0: none.
    refused_id: AtomicU64,
}

impl ConnectionTask {
    fn warn(&self, text: std::fmt::Arguments<'_>) {
        crate::log::event(crate::log::Level::Warn, "ALERTFLOW", text);
    }

    pub(super) async fn serve(&self, stream: TcpStream, memory: MemoryBudget) {
        let _ = stream.set_nodelay(true);
        set_keepalive(&stream);
        let mut conn = Connection::with_budget(stream, memory);
        let mut agent = Peer {
            bound: None,
            refused_id: AtomicU64::new(0),
        };
        loop {
            let read = self.read_frame(&mut conn, &agent).await;
            let Some(frame) = self.frame_or_close(read, &agent) else {
                return;
            };
            let Frame {
                keyed,
                agent_id,
                body,
            } = frame;
            if !self.bind(&mut agent, agent_id) {
                return;
            }
            let Some(alert) = self.alert_of(body) else {
                return;
            };
            let alert_id = alert.alert_id;
            match self.store(agent_id, alert).await {
                Handled::Acknowledge => {}
                Handled::Unacknowledged => continue,
                Handled::Close => return,
            }
            let ack = Frame {
                keyed,
                agent_id,
                body: FrameBody::AlertAck { alert_id },
            };
            let key = (self.keys)(agent_id).flatten();
            if let Err(e) = conn.write_frame(&ack, key.as_ref()).await {
                self.warn(format_args!("connection from {} ended: {e}", self.peer));
                return;
            }
        }
    }

    /// Reads the next frame, or times out: at the handshake deadline before the first valid
    /// frame, at the idle timeout after it.
    async fn read_frame(&self, conn: &mut Connection<TcpStream>, agent: &Peer) -> Read {
        let limit: Duration = if agent.bound.is_none() {
            self.config.handshake_timeout
        } else {
            self.config.idle_timeout
        };
        let key_for = |id: u32| -> Option<Key> {
            match (self.keys)(id) {
                Some(key) => key,
                None => {
                    agent.refused_id.store(u64::from(id) + 1, Ordering::Relaxed);
                    // A key no frame is tagged with: the frame is refused as a bad tag.
                    Key::from_bytes(b"no key for this agent id").ok()
                }
            }
        };
        async { Read::Frame(conn.read_frame(key_for).await) }
            .or(async {
                async_io::Timer::after(limit).await;
                Read::TimedOut
            })
            .await
    }

    /// The frame read, or `None` (counted and logged) when the connection ends.
    fn frame_or_close(&self, read: Read, agent: &Peer) -> Option<Frame> {
        let peer = self.peer;
        let counters = &self.counters;
        match read {
            Read::TimedOut if agent.bound.is_none() => {
                counters.handshake_timeouts.fetch_add(1, Ordering::Relaxed);
                None
            }
            Read::TimedOut => {
                counters.idle_closed.fetch_add(1, Ordering::Relaxed);
                None
            }
            Read::Frame(Ok(Some(frame))) => Some(frame),
            Read::Frame(Ok(None)) => None,
            Read::Frame(Err(_)) if agent.refused_id.load(Ordering::Relaxed) != 0 => {
                counters.unknown_agents.fetch_add(1, Ordering::Relaxed);
                let id = agent.refused_id.load(Ordering::Relaxed) - 1;
                let n = counters.unknown_agents.load(Ordering::Relaxed);
                if n.is_power_of_two() {
                    self.warn(format_args!(
                        "dropping the connection from {peer}: agent id {id} is not \
                         registered here, or has no key ({n} such connection(s) so far)"
                    ));
                }
                None
            }
            Read::Frame(Err(e @ ConnectionError::MemoryFull { .. })) => {
                counters.memory_full.fetch_add(1, Ordering::Relaxed);
                self.warn(format_args!("dropping the connection from {peer}: {e}"));
                None
            }
            Read::Frame(Err(e @ ConnectionError::Malformed { .. })) => {
                counters.malformed_frames.fetch_add(1, Ordering::Relaxed);
                self.warn(format_args!("dropping the connection from {peer}: {e}"));
                None
            }
            Read::Frame(Err(e)) => {
                if agent.bound.is_some() {
                    self.warn(format_args!("connection from {peer} ended: {e}"));
                }
                None
            }
        }
    }

    /// Binds the connection to the agent id of its first valid frame (it is then no longer
    /// unauthenticated); false, and logged, for a frame of another agent id later.
    fn bind(&self, agent: &mut Peer, agent_id: u32) -> bool {
        match agent.bound {
            None => {
                agent.bound = Some(agent_id);
                self.waiting.leave(self.ticket);
                true
            }
            Some(first) if first != agent_id => {
                self.counters.refused_alerts.fetch_add(1, Ordering::Relaxed);
                self.warn(format_args!(
                    "dropping the connection from {}: a frame of agent {agent_id} on \
                     the connection of agent {first}",
                    self.peer
                ));
                false
            }
            Some(_) => true,
        }
    }

    /// The alert a frame carries; `None`, counted as malformed and logged, for an ALERT_ACK.
    fn alert_of(&self, body: FrameBody) -> Option<Alert> {
        match body {
            FrameBody::Alert(alert) => Some(alert),
            FrameBody::AlertAck { alert_id } => {
                self.counters
                    .malformed_frames
                    .fetch_add(1, Ordering::Relaxed);
                self.warn(format_args!(
                    "dropping the connection from {}: it sent an ALERT_ACK \
                     ({alert_id:016x}), which only the server sends",
                    self.peer
                ));
                None
            }
        }
    }

    /// Hands the alert to the handler on a blocking-I/O thread, and counts what it did.
    async fn store(&self, agent_id: u32, alert: Alert) -> Handled {
        let peer = self.peer;
        let alert_id = alert.alert_id;
        let handler = Arc::clone(&self.handler);
        let stored = smol::unblock(move || handler.store(agent_id, peer, alert)).await;
        match stored {
            Ok(StoreOutcome::Stored) => {
                self.counters.alerts_stored.fetch_add(1, Ordering::Relaxed);
                Handled::Acknowledge
            }
            Ok(StoreOutcome::Duplicate) => {
                self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                Handled::Acknowledge
            }
            Ok(StoreOutcome::Refused(why)) => {
                self.counters.refused_alerts.fetch_add(1, Ordering::Relaxed);
                self.warn(format_args!(
                    "dropping the connection from {peer}: alert {alert_id:016x} refused: {why}"
                ));
                Handled::Close
            }
            Err(e) => {
                self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
                self.warn(format_args!(
                    "cannot store alert {alert_id:016x} from agent {agent_id} ({peer}): {e}; \
                     not acknowledged, the agent will resend it"
                ));
                Handled::Unacknowledged
            }
        }
    }
}
