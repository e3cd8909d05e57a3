//! The agent's side of AlertFlow: spool every alert, keep a connection to the server, resend
//! until acknowledged.
//!
//! [`AlertClient`] is one task that owns the TCP connection; [`AlertSender`] is the cloneable
//! handle the rest of the agent uses. [`AlertSender::raise`] writes the alert to the
//! [`AlertSpool`] and returns once it is durable, then tells the task to send it. The task learns
//! where to send from [`AlertSender::set_destination`] (the agent learns the server's AlertFlow
//! address and its own agent id when it registers over NetTask, and again if it re-registers).
//!
//! After each (re)connection the task sends every spooled alert, oldest first, at most
//! [`AlertClientConfig::window`] of them unacknowledged at a time (so neither side can block
//! the other on full socket buffers), and deletes each alert from the spool when its ALERT_ACK
//! arrives. A refused connection, a reset, a frame cut in half, a malformed reply or a server
//! that stops acknowledging ([`AlertClientConfig::ack_timeout`]) only ends the connection: the
//! task waits (100 ms, doubling up to 5 s by default) and connects again. It never gives up and
//! never panics; alerts wait in the spool meanwhile. When the server closes an idle connection
//! and nothing is pending, the task connects again only when there is an alert to send.
//!
//! With a key, frames are tagged with the key of the agent's current NetTask session (the
//! pre-shared key and the registration instance in [`Destination`]), so frames recorded in an
//! earlier session are refused. An alert that cannot be spooled (the disk is full) is kept in
//! memory (bounded), sent like the others, and spooled as soon as the spool takes it.

mod session;
mod shared;

use super::spool::{AlertSpool, DEFAULT_MAX_ALERTS, Pushed, SpoolError};
use crate::wire::{Alert, Key};
use async_io::Timer;
use async_net::TcpStream;
use event_listener::Event;
use futures_lite::FutureExt;
use serde::Serialize;
use session::SessionEnd;
use shared::{Counters, Shared};
use smol::channel::{Receiver, Sender};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Settings of an [`AlertClient`]. [`AlertClientConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct AlertClientConfig {
    /// Directory of the spool (created if missing).
    pub spool_dir: PathBuf,
    /// Most alerts kept pending; past it the oldest is dropped.
    pub max_spooled: usize,
    /// Pre-shared key: frames carry an HMAC tag with it, and acknowledgements must too.
    pub key: Option<Key>,
    /// Longest wait for a TCP connection to be accepted.
    pub connect_timeout: Duration,
    /// Longest wait for an acknowledgement while alerts are unacknowledged; past it the
    /// connection is dropped and made again, and the alerts are resent.
    pub ack_timeout: Duration,
    /// Wait before the first reconnection; it doubles after each failure, up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Most alerts sent and not yet acknowledged on one connection.
    pub window: usize,
}

impl AlertClientConfig {
    pub fn new(spool_dir: impl Into<PathBuf>) -> AlertClientConfig {
        AlertClientConfig {
            spool_dir: spool_dir.into(),
            max_spooled: DEFAULT_MAX_ALERTS,
            key: None,
            connect_timeout: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(30),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            window: 64,
        }
    }
}

/// Where alerts go: the server's AlertFlow address, the id the server gave this agent, and the
/// instance of the registration that started its session (keyed frames are bound to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination {
    pub server: SocketAddr,
    pub agent_id: u32,
    pub instance: u64,
}

/// Most alerts kept in memory when the spool cannot take them.
pub const MAX_IN_MEMORY: usize = 1000;

/// A snapshot of the client's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AlertCounts {
    /// ALERT frames written (resends included).
    pub sent: u64,
    /// Alerts acknowledged by the server and deleted from the spool.
    pub acknowledged: u64,
    /// Alerts in the spool, waiting for an acknowledgement.
    pub pending: u64,
    /// Alerts dropped because the spool was full.
    pub dropped: u64,
    /// Connections made to the server.
    pub connections: u64,
    /// Connection attempts that failed and connections that ended in an error.
    pub connection_failures: u64,
}

enum Command {
    /// An alert was spooled; send it if connected.
    Raised(u64),
    Destination(Option<Destination>),
}

/// The handle the agent raises alerts with. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AlertSender {
    shared: Arc<Shared>,
    commands: Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Raised(id) => write!(f, "Raised({id:016x})"),
            Command::Destination(d) => write!(f, "Destination({d:?})"),
        }
    }
}

impl AlertSender {
    /// Spools `alert` durably, then hands it to the task to send. When this returns `Ok`, the
    /// alert will reach the server eventually, across connection losses and agent restarts,
    /// unless the spool overflows (reported in [`Pushed::dropped`]). An alert the server could
    /// never decode (see [`AlertSpool::push`]) is refused with an error.
    ///
    /// When the spool cannot write the alert (a full disk, ...), it is kept in memory instead
    /// ([`Pushed::kept_in_memory`], with the error) and sent all the same; it is spooled when
    /// the spool takes it again, and lost only if the agent stops first.
    pub async fn raise(&self, alert: Alert) -> Result<Pushed, SpoolError> {
        let id = alert.alert_id;
        let copy = alert.clone();
        let pushed = match self.shared.spool_io(move |spool| spool.push(&alert)).await {
            Ok(pushed) => pushed,
            Err(e @ SpoolError::InvalidAlert { .. }) => return Err(e),
            Err(e) => {
                let dropped = self.shared.keep_in_memory(copy);
                self.shared.with_spool(|_| ());
                Pushed {
                    dropped,
                    kept_in_memory: Some(e.to_string()),
                }
            }
        };
        // The task may be gone (the client was dropped): the alert is spooled all the same and
        // goes out with the next client that opens the spool.
        let _ = self.commands.try_send(Command::Raised(id));
        Ok(pushed)
    }

    /// Sets (or changes) where alerts go. A change drops the current connection and resends
    /// every pending alert to the new destination.
    pub fn set_destination(&self, destination: Destination) {
        let _ = self
            .commands
            .try_send(Command::Destination(Some(destination)));
    }

    /// Stops sending (alerts keep being spooled) until a destination is set again.
    pub fn clear_destination(&self) {
        let _ = self.commands.try_send(Command::Destination(None));
    }

    pub fn counts(&self) -> AlertCounts {
        self.shared.counts()
    }

    /// Waits until `condition` holds for the counters, and returns them.
    pub async fn wait_until(&self, condition: impl Fn(&AlertCounts) -> bool) -> AlertCounts {
        loop {
            let listener = self.shared.changed.listen();
            let counts = self.shared.counts();
            if condition(&counts) {
                return counts;
            }
            listener.await;
        }
    }

    /// Waits until no alert is pending: every raised alert was acknowledged (or dropped).
    pub async fn wait_until_delivered(&self) -> AlertCounts {
        self.wait_until(|c| c.pending == 0).await
    }
}

/// The task that delivers spooled alerts. See the module documentation.
#[derive(Debug)]
pub struct AlertClient {
    shared: Arc<Shared>,
    config: AlertClientConfig,
    commands: Receiver<Command>,
    /// Kept only to make senders before `run`; dropped when it starts, so that `run` ends once
    /// every [`AlertSender`] is gone.
    sender: Option<Sender<Command>>,
    destination: Option<Destination>,
}

impl AlertClient {
    /// Opens the spool. Nothing is sent until [`AlertClient::run`] runs and a destination is set.
    pub fn open(config: AlertClientConfig) -> Result<AlertClient, SpoolError> {
        let spool = AlertSpool::open(&config.spool_dir, config.max_spooled)?;
        let shared = Arc::new(Shared {
            spool: Mutex::new(spool),
            memory: Mutex::new(VecDeque::new()),
            counters: Counters::default(),
            changed: Event::new(),
        });
        shared.with_spool(|_| ());
        let (tx, rx) = smol::channel::unbounded();
        Ok(AlertClient {
            shared,
            config,
            commands: rx,
            sender: Some(tx),
            destination: None,
        })
    }

    /// Opens the spool and runs the task on smol's global executor. Cancelling (or dropping)
    /// the returned task stops delivery; spooled alerts stay on disk for the next client.
    pub fn spawn(config: AlertClientConfig) -> Result<(AlertSender, smol::Task<()>), SpoolError> {
        let client = AlertClient::open(config)?;
        let sender = client.sender();
        Ok((sender, smol::spawn(client.run())))
    }

    /// A handle to raise alerts with.
    pub fn sender(&self) -> AlertSender {
        AlertSender {
            shared: Arc::clone(&self.shared),
            commands: self
                .sender
                .clone()
                .unwrap_or_else(|| smol::channel::unbounded().0),
        }
    }

    /// Delivers alerts until every [`AlertSender`] has been dropped.
    pub async fn run(mut self) {
        self.sender = None;
        let mut backoff = self.config.min_backoff;
        let mut failed_attempts = 0u64;
        loop {
            while let Ok(command) = self.commands.try_recv() {
                self.apply(command);
            }
            let Some(destination) = self.destination else {
                match self.commands.recv().await {
                    Ok(command) => self.apply(command),
                    Err(_) => return,
                }
                continue;
            };
            let started = Instant::now();
            let progressed = match self.connect(destination.server).await {
                Ok(stream) => {
                    self.shared.bump(&self.shared.counters.connections);
                    if failed_attempts > 0 {
                        crate::log::event(
                            crate::log::Level::Warn,
                            "ALERTFLOW",
                            format_args!(
                                "connected to {} after {failed_attempts} failed \
                             attempt(s); sending {} pending alert(s)",
                                destination.server,
                                self.shared.counts().pending
                            ),
                        );
                        failed_attempts = 0;
                    }
                    match self.session(stream, destination).await {
                        SessionEnd::Stop => return,
                        SessionEnd::Reconnect { progressed } => progressed,
                        SessionEnd::Idle => {
                            if !self.wait_for_work().await {
                                return;
                            }
                            backoff = self.config.min_backoff;
                            continue;
                        }
                    }
                }
                Err(e) => {
                    self.shared.bump(&self.shared.counters.connection_failures);
                    failed_attempts += 1;
                    if failed_attempts.is_power_of_two() {
                        crate::log::event(
                            crate::log::Level::Warn,
                            "ALERTFLOW",
                            format_args!(
                                "cannot connect to {} ({e}); alerts stay spooled and \
                             will be sent when it answers ({failed_attempts} attempt(s) so far)",
                                destination.server
                            ),
                        );
                    }
                    false
                }
            };
            if progressed || started.elapsed() >= self.config.max_backoff {
                backoff = self.config.min_backoff;
            }
            if !self.pause(backoff).await {
                return;
            }
            backoff = (backoff * 2).min(self.config.max_backoff);
        }
    }

    /// After an idle close: waits until an alert is raised (or the destination changes), or
    /// alerts are pending already. Returns false when every sender is gone.
    async fn wait_for_work(&mut self) -> bool {
        loop {
            if self.shared.counts().pending > 0 {
                return true;
            }
            match self.commands.recv().await {
                Err(_) => return false,
                Ok(Command::Raised(_)) => return true,
                Ok(Command::Destination(d)) => {
                    self.destination = d;
                }
            }
        }
    }

    fn apply(&mut self, command: Command) {
        if let Command::Destination(d) = command {
            self.destination = d;
        }
        // `Raised` needs nothing while disconnected: the alert is in the spool, and every
        // connection starts by sending the whole spool.
    }

    /// Waits `delay` before reconnecting; a new destination cuts the wait short. Returns false
    /// when every sender is gone.
    async fn pause(&mut self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        loop {
            let command = async { Some(self.commands.recv().await.ok()) }
                .or(async {
                    Timer::at(deadline).await;
                    None
                })
                .await;
            match command {
                None => return true,
                Some(None) => return false,
                Some(Some(Command::Raised(_))) => {}
                Some(Some(Command::Destination(d))) => {
                    let changed = d != self.destination;
                    self.destination = d;
                    if changed {
                        return true;
                    }
                }
            }
        }
    }

    async fn connect(&self, server: SocketAddr) -> std::io::Result<TcpStream> {
        let timeout = self.config.connect_timeout;
        let stream = TcpStream::connect(server)
            .or(async {
                Timer::after(timeout).await;
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {timeout:?}"),
                ))
            })
            .await?;
        let _ = stream.set_nodelay(true);
        super::set_keepalive(&stream);
        Ok(stream)
    }
}
