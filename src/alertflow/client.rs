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

use super::connection::Connection;
use super::spool::{AlertSpool, DEFAULT_MAX_ALERTS, Pushed, SpoolError};
use crate::wire::{Alert, Frame, FrameBody, Key};
use async_io::Timer;
use async_net::TcpStream;
use event_listener::Event;
use futures_lite::FutureExt;
use serde::Serialize;
use smol::channel::{Receiver, Sender};
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
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

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    acknowledged: AtomicU64,
    pending: AtomicU64,
    dropped: AtomicU64,
    connections: AtomicU64,
    connection_failures: AtomicU64,
}

/// State shared by the senders and the task.
#[derive(Debug)]
struct Shared {
    spool: Mutex<AlertSpool>,
    /// Alerts the spool could not take, oldest first.
    memory: Mutex<VecDeque<Alert>>,
    counters: Counters,
    /// Notified whenever a counter changes.
    changed: Event,
}

impl Shared {
    /// Runs `f` on the spool and refreshes the counters that mirror it. Blocks on file I/O:
    /// call it through [`Shared::spool_io`] from async code.
    fn with_spool<T>(&self, f: impl FnOnce(&mut AlertSpool) -> T) -> T {
        let mut spool = self
            .spool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let out = f(&mut spool);
        let in_memory = self.memory.lock().unwrap_or_else(|e| e.into_inner()).len();
        self.counters
            .pending
            .store((spool.len() + in_memory) as u64, Ordering::Relaxed);
        self.counters
            .dropped
            .store(spool.dropped(), Ordering::Relaxed);
        drop(spool);
        self.changed.notify(usize::MAX);
        out
    }

    /// [`Shared::with_spool`] on a blocking-I/O thread, so file syncs never stall the executor.
    async fn spool_io<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut AlertSpool) -> T + Send + 'static,
    ) -> T {
        let shared = Arc::clone(self);
        smol::unblock(move || shared.with_spool(f)).await
    }

    /// Keeps an alert the spool did not take; returns the id of the oldest one dropped when
    /// [`MAX_IN_MEMORY`] are kept already.
    fn keep_in_memory(&self, alert: Alert) -> Option<u64> {
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        memory.push_back(alert);
        (memory.len() > MAX_IN_MEMORY)
            .then(|| memory.pop_front().map(|a| a.alert_id))
            .flatten()
    }

    fn memory_ids(&self) -> Vec<u64> {
        let memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        memory.iter().map(|a| a.alert_id).collect()
    }

    fn kept_alert(&self, id: u64) -> Option<Alert> {
        let memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        memory.iter().find(|a| a.alert_id == id).cloned()
    }

    /// Forgets an acknowledged alert kept in memory; true when it was there.
    fn forget_in_memory(&self, id: u64) -> bool {
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let before = memory.len();
        memory.retain(|a| a.alert_id != id);
        memory.len() != before
    }

    /// Moves alerts kept in memory into the spool while it takes them. Blocks on file I/O.
    fn spool_kept(&self) {
        loop {
            let Some(alert) = self
                .memory
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .front()
                .cloned()
            else {
                return;
            };
            let spooled = self.with_spool(|spool| spool.push(&alert).is_ok());
            if !spooled {
                return;
            }
            self.forget_in_memory(alert.alert_id);
        }
    }

    fn bump(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.changed.notify(usize::MAX);
    }

    fn counts(&self) -> AlertCounts {
        let c = &self.counters;
        AlertCounts {
            sent: c.sent.load(Ordering::Relaxed),
            acknowledged: c.acknowledged.load(Ordering::Relaxed),
            pending: c.pending.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            connections: c.connections.load(Ordering::Relaxed),
            connection_failures: c.connection_failures.load(Ordering::Relaxed),
        }
    }
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

/// How one connection ended.
enum SessionEnd {
    /// Every sender is gone.
    Stop,
    /// Connect again; `progressed` when the server acknowledged something, which resets the
    /// backoff.
    Reconnect { progressed: bool },
    /// The server closed the connection with nothing pending: connect again when there is an
    /// alert to send.
    Idle,
}

enum Wake {
    Frame(Result<Option<Frame>, super::ConnectionError>),
    Command(Option<Command>),
    AckTimeout,
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

    async fn session(&mut self, stream: TcpStream, destination: Destination) -> SessionEnd {
        let server = destination.server;
        let mut conn = Connection::new(stream);
        let key = self
            .config
            .key
            .as_ref()
            .map(|k| k.session(destination.instance));
        let window = self.config.window.max(1);
        {
            let shared = Arc::clone(&self.shared);
            smol::unblock(move || shared.spool_kept()).await;
        }
        let mut queue: VecDeque<u64> = self.shared.with_spool(|s| s.pending_ids()).into();
        queue.extend(self.shared.memory_ids());
        let mut in_flight: HashSet<u64> = HashSet::new();
        let mut waiting_since = Instant::now();
        let mut progressed = false;
        let fail = |shared: &Shared, why: String| {
            shared.bump(&shared.counters.connection_failures);
            crate::log::event(
                crate::log::Level::Warn,
                "ALERTFLOW",
                format_args!("connection to {server} lost ({why}); reconnecting"),
            );
        };
        loop {
            while in_flight.len() < window {
                let Some(id) = queue.pop_front() else { break };
                if in_flight.contains(&id) {
                    continue;
                }
                let alert = match self.shared.spool_io(move |s| s.load(id)).await {
                    Ok(Some(alert)) => alert,
                    // Kept in memory, or acknowledged (or dropped) meanwhile.
                    Ok(None) => match self.shared.kept_alert(id) {
                        Some(alert) => alert,
                        None => continue,
                    },
                    Err(e) => {
                        crate::log::event(
                            crate::log::Level::Warn,
                            "ALERTFLOW",
                            format_args!("{e}; alert {id:016x} is retried later"),
                        );
                        continue;
                    }
                };
                let frame = Frame {
                    keyed: key.is_some(),
                    agent_id: destination.agent_id,
                    body: FrameBody::Alert(alert),
                };
                if let Err(e) = conn.write_frame(&frame, key.as_ref()).await {
                    fail(&self.shared, e.to_string());
                    return SessionEnd::Reconnect { progressed };
                }
                if in_flight.is_empty() {
                    waiting_since = Instant::now();
                }
                in_flight.insert(id);
                self.shared.bump(&self.shared.counters.sent);
            }
            let ack_deadline =
                (!in_flight.is_empty()).then(|| waiting_since + self.config.ack_timeout);
            let wake = async { Wake::Frame(conn.read_frame(|_| key.clone()).await) }
                .or(async { Wake::Command(self.commands.recv().await.ok()) })
                .or(async {
                    match ack_deadline {
                        Some(t) => Timer::at(t).await,
                        None => Timer::never().await,
                    };
                    Wake::AckTimeout
                })
                .await;
            match wake {
                Wake::Frame(Ok(Some(Frame {
                    body: FrameBody::AlertAck { alert_id },
                    ..
                }))) => {
                    in_flight.remove(&alert_id);
                    waiting_since = Instant::now();
                    progressed = true;
                    // Counted inside the spool update, so that whoever sees `pending` drop
                    // also sees `acknowledged` rise.
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
                Wake::Frame(Ok(Some(Frame {
                    body: FrameBody::Alert(_),
                    ..
                }))) => {
                    fail(&self.shared, "the server sent an ALERT frame".into());
                    return SessionEnd::Reconnect { progressed };
                }
                Wake::Frame(Ok(None)) => {
                    if !in_flight.is_empty() {
                        fail(&self.shared, "the server closed the connection".into());
                        return SessionEnd::Reconnect { progressed };
                    }
                    if queue.is_empty() && self.shared.counts().pending == 0 {
                        return SessionEnd::Idle;
                    }
                    return SessionEnd::Reconnect { progressed };
                }
                Wake::Frame(Err(e)) => {
                    fail(&self.shared, e.to_string());
                    return SessionEnd::Reconnect { progressed };
                }
                Wake::Command(None) => return SessionEnd::Stop,
                Wake::Command(Some(Command::Raised(id))) => queue.push_back(id),
                Wake::Command(Some(Command::Destination(d))) => {
                    if d != Some(destination) {
                        self.destination = d;
                        return SessionEnd::Reconnect { progressed: true };
                    }
                }
                Wake::AckTimeout => {
                    fail(
                        &self.shared,
                        format!(
                            "{} alert(s) unacknowledged for {:?}",
                            in_flight.len(),
                            self.config.ack_timeout
                        ),
                    );
                    return SessionEnd::Reconnect { progressed };
                }
            }
        }
    }
}
