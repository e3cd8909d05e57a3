//! One connection of the [`AlertClient`] to the server: send the pending alerts (a window of
//! them unacknowledged at a time), delete each from the spool when its ALERT_ACK arrives, and say
//! how the connection ended so that the task knows whether and when to connect again.

use super::{AlertClient, Command, Destination};
use crate::alertflow::connection::{Connection, ConnectionError};
use crate::wire::{Alert, Frame, FrameBody, Key};
use async_io::Timer;
use async_net::TcpStream;
use futures_lite::FutureExt;
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// How one connection ended.
pub(super) enum SessionEnd {
    /// Every sender is gone.
    Stop,
    /// Connect again; `progressed` when the server acknowledged something, which resets the
    /// backoff.
    Reconnect { progressed: bool },
    /// The server closed the connection with nothing pending: connect again when there is an
    /// alert to send.
    Idle,
}

/// What woke a connection up.
enum Wake {
    Frame(Result<Option<Frame>, ConnectionError>),
    Command(Option<Command>),
    AckTimeout,
}

/// The alerts of one connection: those still to send and those sent and not yet acknowledged.
struct Outbox {
    /// Ids to send, oldest first (an id may appear twice; it is sent once).
    queue: VecDeque<u64>,
    /// Ids sent and not yet acknowledged, at most the window.
    in_flight: HashSet<u64>,
    /// When the wait for an acknowledgement began: the first send into an empty window, or the
    /// last acknowledgement.
    waiting_since: Instant,
    /// The server acknowledged something on this connection.
    progressed: bool,
}

impl Outbox {
    fn reconnect(&self) -> SessionEnd {
        SessionEnd::Reconnect {
            progressed: self.progressed,
        }
    }
}

/// One connection: where it goes, and the key its frames are tagged with.
struct Link {
    conn: Connection<TcpStream>,
    destination: Destination,
    key: Option<Key>,
}

impl AlertClient {
    pub(super) async fn session(
        &mut self,
        stream: TcpStream,
        destination: Destination,
    ) -> SessionEnd {
        let mut link = Link {
            conn: Connection::new(stream),
            destination,
            key: self
                .config
                .key
                .as_ref()
                .map(|k| k.session(destination.instance)),
        };
        let mut outbox = self.pending_outbox().await;
        loop {
            if let Err(e) = self.fill_window(&mut link, &mut outbox).await {
                self.connection_lost(destination.server, &e.to_string());
                return outbox.reconnect();
            }
            let wake = self.next_wake(&mut link, &outbox).await;
            if let Some(end) = self.handle_wake(wake, &link, &mut outbox).await {
                return end;
            }
        }
    }

    /// Spools what the spool takes of the alerts kept in memory, then queues every pending
    /// alert: the spool's, oldest first, then those still in memory.
    async fn pending_outbox(&self) -> Outbox {
        {
            let shared = Arc::clone(&self.shared);
            smol::unblock(move || shared.spool_kept()).await;
        }
        let mut queue: VecDeque<u64> = self.shared.with_spool(|s| s.pending_ids()).into();
        queue.extend(self.shared.memory_ids());
        Outbox {
            queue,
            in_flight: HashSet::new(),
            waiting_since: Instant::now(),
            progressed: false,
        }
    }

    /// Sends queued alerts until the window is full or the queue empty.
    async fn fill_window(
        &self,
        link: &mut Link,
        outbox: &mut Outbox,
    ) -> Result<(), ConnectionError> {
        let window = self.config.window.max(1);
        while outbox.in_flight.len() < window {
            let Some(id) = outbox.queue.pop_front() else {
                break;
            };
            if outbox.in_flight.contains(&id) {
                continue;
            }
            let Some(alert) = self.load_alert(id).await else {
                continue;
            };
            let frame = Frame {
                keyed: link.key.is_some(),
                agent_id: link.destination.agent_id,
                body: FrameBody::Alert(alert),
            };
            link.conn.write_frame(&frame, link.key.as_ref()).await?;
            if outbox.in_flight.is_empty() {
                outbox.waiting_since = Instant::now();
            }
            outbox.in_flight.insert(id);
            self.shared.bump(&self.shared.counters.sent);
        }
        Ok(())
    }

    /// The pending alert `id`, from the spool or from memory; `None` when it was acknowledged
    /// (or dropped) meanwhile, or cannot be read now (it is retried on the next connection).
    async fn load_alert(&self, id: u64) -> Option<Alert> {
        match self.shared.spool_io(move |s| s.load(id)).await {
            Ok(Some(alert)) => Some(alert),
            // Kept in memory, or acknowledged (or dropped) meanwhile.
            Ok(None) => self.shared.kept_alert(id),
            Err(e) => {
                crate::log::event(
                    crate::log::Level::Warn,
                    "ALERTFLOW",
                    format_args!("{e}; alert {id:016x} is retried later"),
                );
                None
            }
        }
    }

    /// Waits for a frame from the server, a command from a sender, or (while alerts are
    /// unacknowledged) the acknowledgement deadline.
    async fn next_wake(&self, link: &mut Link, outbox: &Outbox) -> Wake {
        let ack_deadline =
            (!outbox.in_flight.is_empty()).then(|| outbox.waiting_since + self.config.ack_timeout);
        let key = &link.key;
        async { Wake::Frame(link.conn.read_frame(|_| key.clone()).await) }
            .or(async { Wake::Command(self.commands.recv().await.ok()) })
            .or(async {
                match ack_deadline {
                    Some(t) => Timer::at(t).await,
                    None => Timer::never().await,
                };
                Wake::AckTimeout
            })
            .await
    }

    /// Acts on what woke the connection; `Some` when the connection ends.
    async fn handle_wake(
        &mut self,
        wake: Wake,
        link: &Link,
        outbox: &mut Outbox,
    ) -> Option<SessionEnd> {
        let server = link.destination.server;
        match wake {
            Wake::Frame(Ok(Some(Frame {
                body: FrameBody::AlertAck { alert_id },
                ..
            }))) => {
                outbox.in_flight.remove(&alert_id);
                outbox.waiting_since = Instant::now();
                outbox.progressed = true;
                self.acknowledged(alert_id).await;
                None
            }
            Wake::Frame(Ok(Some(Frame {
                body: FrameBody::Alert(_),
                ..
            }))) => {
                self.connection_lost(server, "the server sent an ALERT frame");
                Some(outbox.reconnect())
            }
            Wake::Frame(Ok(None)) => Some(self.closed_by_server(server, outbox)),
            Wake::Frame(Err(e)) => {
                self.connection_lost(server, &e.to_string());
                Some(outbox.reconnect())
            }
            Wake::Command(None) => Some(SessionEnd::Stop),
            Wake::Command(Some(Command::Raised(id))) => {
                outbox.queue.push_back(id);
                None
            }
            Wake::Command(Some(Command::Destination(d))) => {
                if d == Some(link.destination) {
                    return None;
                }
                self.destination = d;
                Some(SessionEnd::Reconnect { progressed: true })
            }
            Wake::AckTimeout => {
                let why = format!(
                    "{} alert(s) unacknowledged for {:?}",
                    outbox.in_flight.len(),
                    self.config.ack_timeout
                );
                self.connection_lost(server, &why);
                Some(outbox.reconnect())
            }
        }
    }

    /// Deletes an acknowledged alert from the spool (or from memory).
    async fn acknowledged(&self, alert_id: u64) {
        // Counted inside the spool update, so that whoever sees `pending` drop also sees
        // `acknowledged` rise.
        let shared = Arc::clone(&self.shared);
        let removed = self.shared.spool_io(move |s| {
            let removed = s.remove(alert_id);
            let in_memory = shared.forget_in_memory(alert_id);
            if matches!(removed, Ok(true)) || in_memory {
                shared.counters.acknowledged.fetch_add(1, Ordering::Relaxed);
            }
            removed
        });
        match removed.await {
            // `Ok(false)`: a second acknowledgement of a resent alert.
            Ok(_) => {}
            Err(e) => crate::log::event(
                crate::log::Level::Warn,
                "ALERTFLOW",
                format_args!("alert {alert_id:016x} was acknowledged but {e}"),
            ),
        }
    }

    /// The server closed the connection between frames: a loss while alerts are
    /// unacknowledged, an idle close when nothing is pending.
    fn closed_by_server(&self, server: SocketAddr, outbox: &Outbox) -> SessionEnd {
        if !outbox.in_flight.is_empty() {
            self.connection_lost(server, "the server closed the connection");
            return outbox.reconnect();
        }
        if outbox.queue.is_empty() && self.shared.counts().pending == 0 {
            return SessionEnd::Idle;
        }
        outbox.reconnect()
    }

    /// Counts and logs a connection that ended in an error.
    fn connection_lost(&self, server: SocketAddr, why: &str) {
        self.shared.bump(&self.shared.counters.connection_failures);
        crate::log::event(
            crate::log::Level::Warn,
            "ALERTFLOW",
            format_args!("connection to {server} lost ({why}); reconnecting"),
        );
    }
}
