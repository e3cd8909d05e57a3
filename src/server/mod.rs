//! `nms server`: registers agents, dispatches tasks, ingests metrics and alerts, stores them,
//! watches liveness and serves the HTTP API.
//!
//! Data flows one way: the NetTask driver owns the socket and the endpoint and hands events to
//! the event loop ([`run`]), which updates the [`State`] (registry, tasks, store) and sends
//! commands back to the driver. AlertFlow connections and HTTP requests use the same state.

pub mod ack;
pub mod alertmanager;
pub mod dispatch;
pub mod firing;
pub mod http;
mod http_head;
pub mod operate;
pub mod page;
pub mod prometheus;
pub mod registry;
pub mod remote_write;
pub mod silence;

pub use operate::reload;

use crate::log::{self, Level};
use crate::nettask::Receipt;
use crate::nettask::driver::{self, Command, SocketStats};
use crate::nettask::{Config, Keys, ServerEndpoint, ServerEvent, Stats};
use crate::store::{AlertRecord, Report, Store, StoreError, StoreOptions, Stored};
use crate::wire::{Alert, AlertType, Message, Registered, Severity};
use anyhow::Context;
use dispatch::{Dispatch, LoadedTask, TaskUpload};
use registry::{Registry, Status};
use serde::Serialize;
use smol::channel::Sender;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The validated configuration of a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub task_files: Vec<PathBuf>,
    pub listen: IpAddr,
    pub nettask_port: u16,
    pub alertflow_port: u16,
    /// The AlertFlow port announced to agents in REGISTERED, when it differs from the port the
    /// server listens on (a port forward or a proxy in between); `None` announces the real one.
    pub advertise_alertflow_port: Option<u16>,
    pub http: SocketAddr,
    pub data_dir: PathBuf,
    pub keys: Keys,
    /// How often agents must be heard from.
    pub heartbeat: Duration,
    /// Intervals without a word before an agent is down.
    pub missed_heartbeats: u32,
    pub initial_timeout: Duration,
    pub max_retransmissions: u32,
    /// Run an agent of this name in the same process.
    pub local_agent: Option<String>,
    /// Log every stored metrics report.
    pub verbose: bool,
    /// Forward alerts to each of these Alertmanagers (every one gets every alert): base URLs,
    /// with their credentials ([`alertmanager::Target`]).
    pub alertmanagers: Vec<alertmanager::Target>,
    /// The HTTP APIs of the other servers that serve the same agents: an agent silent here
    /// that one of them serves (it moved there) is not reported down.
    pub peers: Vec<String>,
    /// Send every stored report to each of these remote-write receivers.
    pub remote_writes: Vec<remote_write::Destination>,
    /// The URL others reach the HTTP API at (behind a proxy, say): alerts' `generatorURL` and
    /// links point there. Default: the `--http` address.
    pub external_url: Option<String>,
    /// Retention and limits of the time-series store.
    pub store: StoreOptions,
    /// Most agents registered at once; new names past it are refused.
    pub max_agents: usize,
    /// Without keys: new agent names accepted per second (after a burst of
    /// [`NEW_AGENTS_BURST`]).
    pub new_agents_per_second: u64,
    /// Agents that never sent anything after registering are forgotten after this long silent.
    pub forget_unreported_after: Duration,
    /// Who may read and write through the HTTP API.
    pub api: http::ApiAccess,
}

/// The origin of tasks posted over the HTTP API (others name their task file).
pub const HTTP_ORIGIN: &str = "HTTP API";

/// Checks `--external-url`: an `http://` or `https://` URL with a host, no query.
pub fn check_external_url(url: &str) -> anyhow::Result<String> {
    let uri: hyper::Uri = url
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("--external-url {url:?}: not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none_or(str::is_empty) {
        anyhow::bail!(
            "--external-url {url:?}: give the URL the HTTP API is reached at, e.g. \
             https://monitor.example.net/nms"
        );
    }
    if uri.query().is_some() {
        anyhow::bail!("--external-url {url:?}: a base URL has no query");
    }
    Ok(url.trim().trim_end_matches('/').to_string())
}

/// The default of `--max-agents`.
pub const DEFAULT_MAX_AGENTS: usize = 10_000;
/// The default of `--new-agents-per-second`.
pub const DEFAULT_NEW_AGENTS_PER_SECOND: u64 = 50;

/// What the event loop, AlertFlow and HTTP share under one lock: agents and tasks. The store
/// is not in it: it has locks of its own, and its writes and syncs happen outside this one.
#[derive(Debug)]
pub struct State {
    pub registry: Registry,
    pub dispatch: Dispatch,
    /// Agents whose AGENT_DOWN was raised, with that alert's id (resolved when they return).
    down_alerted: std::collections::HashMap<u32, u64>,
    /// Agents silent here that a `--peer` serves now, until when that answer holds.
    served_elsewhere: std::collections::HashMap<u32, u64>,
    started_ms: u64,
    /// Registrations of new names, rate-limited without keys.
    new_agents: NewAgentBucket,
    /// New agents refused (no room, too many at once), and alerts refused because they named
    /// another agent or came from an id that is not registered.
    pub refused_new_agents: u64,
    pub refused_alerts: u64,
    throttles: Throttles,
    /// Recent registrations of each name, to tell two agents sharing one `--id`.
    shared_names: SharedNames,
}

/// Two agents started with the same `--id` take the name from each other in turn: each
/// registration of one ends the other's session, which registers again. Registrations of a
/// name that alternate between two addresses (A, B, A within a minute) say so; an agent that
/// restarted (A, then B for good) does not.
#[derive(Debug)]
struct SharedNames {
    recent: std::collections::HashMap<String, Vec<(SocketAddr, u64)>>,
    warned: log::Throttles<String>,
}

impl SharedNames {
    const WINDOW_MS: u64 = 60_000;

    /// Notes a registration; returns the other address when the name is shared.
    fn registered(&mut self, name: &str, from: SocketAddr, now_ms: u64) -> Option<SocketAddr> {
        if self.recent.len() > 100_000 {
            self.recent.clear();
        }
        let list = self.recent.entry(name.to_string()).or_default();
        list.retain(|(_, t)| now_ms.saturating_sub(*t) < Self::WINDOW_MS);
        list.push((from, now_ms));
        if list.len() > 3 {
            list.remove(0);
        }
        match list.as_slice() {
            [.., (a, _), (b, _), (c, _)] if a == c && a != b => Some(*b),
            _ => None,
        }
    }
}

impl Default for SharedNames {
    fn default() -> Self {
        SharedNames {
            recent: Default::default(),
            warned: log::Throttles::new(Duration::from_secs(60), 10_000),
        }
    }
}

/// Reports on their way to the store, with the acknowledgements they hold.
struct IngestJob {
    reports: Vec<Report>,
    receipts: Vec<Receipt>,
}

/// The server's shared parts.
pub struct Shared {
    state: Mutex<State>,
    commands: Sender<Command<ServerEndpoint>>,
    pub store: Arc<Store>,
    /// Where stored alerts are forwarded, one per `--alertmanager`.
    pub alertmanagers: Vec<alertmanager::Forwarder>,
    /// Where stored reports are sent, one per `--remote-write`.
    pub remote_writers: Vec<remote_write::Writer>,
    /// Who may use the HTTP API (the token is read again on SIGHUP).
    api: Mutex<http::ApiAccess>,
    /// The alerts firing now.
    firing: Mutex<firing::Firing>,
    /// Silences and acknowledgements, kept in files of their own.
    silences: Mutex<silence::Silences>,
    acks: Mutex<ack::Acknowledgements>,
    /// The base URL of the HTTP API as others reach it (`--external-url`).
    pub external_url: String,
    pub options: ServerOptions,
    pub endpoint_stats: Mutex<Stats>,
    pub socket_stats: Arc<SocketStats>,
    pub alertflow_port: u16,
}

impl Shared {
    /// Locks the state; a panic elsewhere while holding it does not take the server down.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn command(&self, f: impl FnOnce(&mut ServerEndpoint, Instant) + Send + 'static) {
        // The channel is unbounded; it only fails when the driver is gone (shutting down).
        let _ = self.commands.try_send(Box::new(f));
    }

    /// Who may use the HTTP API now.
    pub fn api(&self) -> http::ApiAccess {
        self.api.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The alerts firing now (never held while the state lock is taken).
    pub fn firing(&self) -> MutexGuard<'_, firing::Firing> {
        self.firing.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn silences(&self) -> MutexGuard<'_, silence::Silences> {
        self.silences.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn acks(&self) -> MutexGuard<'_, ack::Acknowledgements> {
        self.acks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an alert is silenced now.
    pub fn silenced(&self, record: &AlertRecord, now_ms: u64) -> bool {
        self.silences().silencing(record, now_ms).is_some()
    }

    /// Hands a change to every Alertmanager forwarder.
    fn forward(&self, event: alertmanager::Event) {
        for forwarder in &self.alertmanagers {
            forwarder.send(event.clone());
        }
    }

    /// Stores alerts with one write (once per id) and forwards the new ones. Called without
    /// the state lock.
    pub fn store_alerts(&self, records: Vec<AlertRecord>) -> Result<Vec<Stored>, StoreError> {
        let copies = records.clone();
        let stored = self.store.store_alerts(records)?;
        let mut changes = Vec::new();
        {
            let mut firing = self.firing();
            for (record, outcome) in copies.iter().zip(&stored) {
                if *outcome == Stored::New {
                    changes.extend(firing.accept(record));
                }
            }
        }
        for change in changes {
            self.forward(match change {
                firing::Change::Fired(alert) => alertmanager::Event::Fired(alert),
                firing::Change::Ended { alert, at_ms } => {
                    alertmanager::Event::Ended { alert, at_ms }
                }
            });
        }
        Ok(stored)
    }

    /// [`Shared::store_alerts`], logging a failure.
    fn store_alerts_logged(&self, alerts: Vec<AlertRecord>) {
        if alerts.is_empty() {
            return;
        }
        let count = alerts.len();
        if let Err(e) = self.store_alerts(alerts) {
            log::event(
                Level::Bad,
                "STORE",
                format_args!("{count} alert(s) not stored: {e}"),
            );
        }
    }
}

/// Stores a batch of reports (one log write and one sync) and then releases their
/// acknowledgements; a batch that could not be stored is released unkept, so the agents send
/// it again. Called by the event loop after it let go of the state lock.
fn store_batch(shared: &Shared, job: IngestJob) {
    {
        let IngestJob { reports, receipts } = job;
        let kept = match shared.store.append(&reports, log::now_ms()) {
            Ok(outcomes) => {
                if shared.options.verbose {
                    for (r, o) in reports.iter().zip(&outcomes) {
                        if *o == Stored::New {
                            log::event(
                                Level::Info,
                                "METRICS",
                                format_args!("{} {} {}", r.agent, r.task, summarize(r)),
                            );
                        }
                    }
                }
                for (r, o) in reports.iter().zip(&outcomes) {
                    if let Stored::Refused(why) = o {
                        log_refusal(r, *why);
                    }
                }
                true
            }
            // Logged once per episode by the store.
            Err(_) => false,
        };
        shared.command(move |ep, _| {
            for r in receipts {
                ep.release(r, kept);
            }
        });
    }
}

/// A refused report is logged at most once a minute (with how many there were).
fn log_refusal(r: &Report, why: crate::store::Refusal) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    static SINCE: AtomicU64 = AtomicU64::new(0);
    let n = SINCE.fetch_add(1, Ordering::Relaxed) + 1;
    let now = log::now_ms();
    if now.saturating_sub(LAST.load(Ordering::Relaxed)) < 60_000 {
        return;
    }
    LAST.store(now, Ordering::Relaxed);
    SINCE.store(0, Ordering::Relaxed);
    let reason = match why {
        crate::store::Refusal::Future => "dated too far ahead of the server's clock",
        crate::store::Refusal::TooOld => "older than raw retention keeps",
    };
    log::event(
        Level::Warn,
        "METRICS",
        format_args!(
            "{} {}: report at {} refused: {reason} ({n} refused since the last such line)",
            r.agent,
            r.task,
            log::rfc3339(r.time_ms)
        ),
    );
}

/// Where a running server listens (ports resolved when 0 was asked).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub nettask: SocketAddr,
    pub alertflow: SocketAddr,
    pub http: SocketAddr,
}

/// Raises the soft limit of open files to the hard limit: every AlertFlow and HTTP
/// connection holds a descriptor, and the usual soft limit of 1024 is soon reached.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < 16_384 => log::event(
            Level::Warn,
            "START",
            format_args!(
                "open files are limited to {limit} (the hard limit): connections past it are \
                 refused; raise it (LimitNOFILE= in the systemd unit, ulimit -Hn)"
            ),
        ),
        Ok(_) => {}
        Err(e) => log::event(
            Level::Warn,
            "START",
            format_args!("cannot raise the limit of open files: {e}"),
        ),
    }
}

/// The sockets a server serves on, bound before [`run`] is called: the binary binds what the
/// options name ([`Listeners::bind`]); a test binds port 0 and reads the ports back.
pub struct Listeners {
    pub nettask: async_net::UdpSocket,
    pub alertflow: async_net::TcpListener,
    pub http: async_net::TcpListener,
}

impl Listeners {
    /// Binds the NetTask, AlertFlow and HTTP addresses of `options`.
    pub async fn bind(options: &ServerOptions) -> anyhow::Result<Listeners> {
        let nettask_addr = SocketAddr::new(options.listen, options.nettask_port);
        let nettask = driver::bind(nettask_addr, 8 * 1024 * 1024)
            .with_context(|| format!("cannot bind the NetTask port udp/{nettask_addr}"))?;
        let alertflow_addr = SocketAddr::new(options.listen, options.alertflow_port);
        let alertflow = async_net::TcpListener::bind(alertflow_addr)
            .await
            .with_context(|| format!("cannot bind the AlertFlow port tcp/{alertflow_addr}"))?;
        let http = async_net::TcpListener::bind(options.http)
            .await
            .with_context(|| format!("cannot bind the HTTP API on {}", options.http))?;
        Ok(Listeners {
            nettask,
            alertflow,
            http,
        })
    }

    /// Where the sockets are bound (ports resolved when 0 was asked).
    pub fn bound(&self) -> std::io::Result<Bound> {
        Ok(Bound {
            nettask: self.nettask.local_addr()?,
            alertflow: self.alertflow.local_addr()?,
            http: self.http.local_addr()?,
        })
    }
}

/// A started server: where it listens, its shared parts while it runs, and its end.
pub struct RunningServer {
    pub bound: Bound,
    shared: std::sync::Weak<Shared>,
    done: smol::Task<anyhow::Result<()>>,
}

impl RunningServer {
    /// The server's shared parts, while it runs (for reloads, and for tests to look inside).
    pub fn shared(&self) -> Option<Arc<Shared>> {
        self.shared.upgrade()
    }

    /// A handle on the shared parts that does not keep them alive.
    pub fn weak(&self) -> std::sync::Weak<Shared> {
        self.shared.clone()
    }

    /// Waits for the server to stop: `Ok` once its shutdown signal came and it stopped cleanly
    /// (nothing accepted any more, the last batch stored and acknowledged, the local agent and
    /// its probes stopped, the store closed); `Err` if it failed while running.
    pub async fn stopped(self) -> anyhow::Result<()> {
        self.done.await
    }
}

/// The parts [`run`] starts, stopped in order when the shutdown signal comes.
struct Started {
    driver: smol::Task<()>,
    alertflow: smol::Task<()>,
    http: smol::Task<()>,
    background: Vec<smol::Task<()>>,
    local_agent: Option<(smol::Task<()>, Sender<()>)>,
}

/// Starts a server on `listeners`; it runs until `shutdown` completes (the binary: SIGTERM or
/// SIGINT), then stops cleanly. Returns once everything is started: the caller then tells
/// systemd it is ready, and waits with [`RunningServer::stopped`].
pub async fn run(
    options: ServerOptions,
    listeners: Listeners,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<RunningServer> {
    raise_open_file_limit();
    for url in &options.alertmanagers {
        alertmanager::check_target(url)?;
    }
    std::fs::create_dir_all(&options.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            options.data_dir.display()
        )
    })?;
    let store = Arc::new(Store::open(&options.data_dir, options.store.clone())?);
    let registry = Registry::open(&options.data_dir)?;
    let mut dispatch = Dispatch::open(&options.data_dir)?;
    let silences = silence::Silences::open(&options.data_dir)?;
    let acks = ack::Acknowledgements::open(&options.data_dir)?;
    let firing = firing::Firing::load(&store).context("cannot read the firing alerts")?;
    // An agent already down when the server stopped is still down: its AGENT_DOWN fires on,
    // and no second one is raised.
    let down_alerted: std::collections::HashMap<u32, u64> = firing
        .matching(|r| r.kind == AlertType::AgentDown)
        .into_iter()
        .filter_map(|a| Some((registry.by_name(&a.record.agent)?.id, a.record.alert_id)))
        .collect();
    if !firing.is_empty() {
        log::event(
            Level::Info,
            "ALERTS",
            format_args!(
                "{} alert(s) firing, {} of them AGENT_DOWN",
                firing.len(),
                down_alerted.len()
            ),
        );
    }

    for path in &options.task_files {
        let tasks = Dispatch::read_file(path)?;
        for (task, rules) in tasks {
            let id = task.task_id.clone();
            let number = dispatch.install(task, rules, &path.display().to_string())?;
            log::event(
                Level::Info,
                "TASK",
                format_args!("loaded {id} (#{number}) from {}", path.display()),
            );
        }
    }
    report_unscheduled(&dispatch.take_plan_changes().unplaced);
    for (path, upload) in dispatch.persisted_uploads() {
        match upload
            .map_err(anyhow::Error::msg)
            .and_then(|u| Dispatch::read_upload(&u).map_err(anyhow::Error::from))
        {
            Ok(tasks) => {
                for (task, rules) in tasks {
                    let id = task.task_id.clone();
                    let number = dispatch.install(task, rules, HTTP_ORIGIN)?;
                    log::event(
                        Level::Info,
                        "TASK",
                        format_args!("restored {id} (#{number}) posted earlier"),
                    );
                }
            }
            Err(e) => log::event(
                Level::Warn,
                "TASK",
                format_args!("{}: not restored: {e:#}", path.display()),
            ),
        }
    }
    report_unscheduled(&dispatch.take_plan_changes().unplaced);

    let bound = listeners.bound()?;
    let Listeners {
        nettask: socket,
        alertflow: alert_listener,
        http: http_listener,
    } = listeners;

    let mut config = Config {
        initial_timeout: options.initial_timeout,
        max_retransmissions: options.max_retransmissions,
        keys: options.keys.clone(),
        // A report is acknowledged once it is stored and synced ([`store_batch`]).
        held_types: crate::nettask::HeldTypes::of(&[crate::wire::PacketType::Metrics]),
        ..Config::default()
    };
    config.max_queued_messages = 1000;
    let mut endpoint = ServerEndpoint::new(config);
    endpoint.set_wall_clock(Instant::now(), log::now_ms());
    for agent in registry.all() {
        endpoint.know_agent(agent.id, &agent.name);
        endpoint.remember_registration(&agent.name, agent.last_registration_ms);
    }
    let external = options
        .external_url
        .clone()
        .unwrap_or_else(|| http_base(bound.http));
    let mut forwarders = Vec::new();
    for target in &options.alertmanagers {
        let forwarder = alertmanager::Forwarder::start(target, Some(external.clone()))?;
        log::event(
            Level::Info,
            "ALERTMGR",
            format_args!("forwarding alerts to {}", forwarder.url()),
        );
        forwarder.send(alertmanager::Event::Silences(silences.all()));
        for alert in firing.all() {
            forwarder.send(alertmanager::Event::Fired(alert));
        }
        forwarders.push(forwarder);
    }
    let mut remote_writers = Vec::new();
    for destination in &options.remote_writes {
        remote_writers.push(remote_write::Writer::start(
            destination.clone(),
            store.clone(),
        )?);
    }
    let (command_tx, command_rx) = smol::channel::unbounded();
    let (event_tx, event_rx) = smol::channel::bounded(65536);
    let socket_stats = Arc::new(SocketStats::default());
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            registry,
            dispatch,
            down_alerted,
            served_elsewhere: std::collections::HashMap::new(),
            started_ms: log::now_ms(),
            new_agents: NewAgentBucket::default(),
            refused_new_agents: 0,
            refused_alerts: 0,
            throttles: Throttles::default(),
            shared_names: SharedNames::default(),
        }),
        commands: command_tx,
        store,
        alertmanagers: forwarders,
        remote_writers,
        api: Mutex::new(options.api.clone()),
        firing: Mutex::new(firing),
        silences: Mutex::new(silences),
        acks: Mutex::new(acks),
        external_url: external,
        options: options.clone(),
        endpoint_stats: Mutex::new(Stats::default()),
        socket_stats: socket_stats.clone(),
        alertflow_port: options
            .advertise_alertflow_port
            .unwrap_or(bound.alertflow.port()),
    });

    log::event(
        Level::Good,
        "START",
        format_args!(
            "nms server: NetTask udp/{}, AlertFlow tcp/{}, HTTP http://{}, data in {}",
            bound.nettask,
            bound.alertflow,
            bound.http,
            std::path::absolute(&options.data_dir)
                .unwrap_or_else(|_| options.data_dir.clone())
                .display()
        ),
    );
    if !options.keys.is_keyed() {
        log::event(
            Level::Warn,
            "SECURITY",
            "no --key-file: NetTask and AlertFlow traffic is not authenticated (integrity tag only)",
        );
    }

    // Closed when the shutdown signal comes: every part waits on it.
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let stopped = move || {
        let stop_rx = stop_rx.clone();
        async move {
            let _ = stop_rx.recv().await;
        }
    };
    smol::spawn(async move {
        shutdown.await;
        stop_tx.close();
    })
    .detach();

    let driver_task = smol::spawn(driver::run(
        socket,
        endpoint,
        command_rx,
        event_tx,
        socket_stats,
    ));
    let alertflow_task = {
        let shared = shared.clone();
        let keys = options.keys.clone();
        let stop = stopped();
        smol::spawn(async move {
            let lookup_shared = Arc::downgrade(&shared);
            // A frame is tagged with the session key of the agent's latest registration (kept
            // in the registry, so it holds across a server restart). An id that is not
            // registered, or whose name has no key while keys are configured, gets nothing.
            let lookup: crate::alertflow::KeyLookup = Arc::new(move |agent_id| {
                let shared = lookup_shared.upgrade()?;
                let state = shared.state();
                let record = state.registry.get(agent_id)?;
                if !keys.admits(&record.name) {
                    return None;
                }
                Some(keys.session_key(&record.name, record.instance))
            });
            crate::alertflow::server::AlertServer::new(
                Arc::new(AlertIngest(Arc::downgrade(&shared))),
                lookup,
            )
            .run(alert_listener, stop)
            .await
        })
    };
    let http_task = smol::spawn(http::serve(http_listener, shared.clone(), stopped()));
    let background = vec![
        smol::spawn(liveness(shared.clone())),
        smol::spawn(stats_refresh(shared.clone())),
    ];
    let local_agent = match &options.local_agent {
        Some(name) => {
            crate::config::check_agent_name(name)?;
            let agent = crate::agent::AgentOptions {
                servers: vec![
                    SocketAddr::new(loopback_of(options.listen), bound.nettask.port()).to_string(),
                ],
                prefer_first: false,
                id: name.clone(),
                data_dir: options.data_dir.join("local-agent").join(name),
                key: options.keys.for_agent(name).cloned(),
            };
            let (agent_stop_tx, agent_stop_rx) = smol::channel::bounded::<()>(1);
            let task = smol::spawn(async move {
                let stop = async move {
                    let _ = agent_stop_rx.recv().await;
                };
                if let Err(e) = crate::agent::run(agent, stop).await {
                    log::event(
                        Level::Bad,
                        "AGENT",
                        format_args!("the local agent stopped: {e:#}"),
                    );
                }
            });
            Some((task, agent_stop_tx))
        }
        None => None,
    };
    let started = Started {
        driver: driver_task,
        alertflow: alertflow_task,
        http: http_task,
        background,
        local_agent,
    };
    let weak = Arc::downgrade(&shared);
    let done = smol::spawn(serve(shared, event_rx, stopped(), started));
    Ok(RunningServer {
        bound,
        shared: weak,
        done,
    })
}

/// The event loop, then the shutdown: handles the endpoint's events batch by batch until the
/// stop signal, then stops accepting, stores and acknowledges what was received, stops the
/// local agent and closes the store.
async fn serve(
    shared: Arc<Shared>,
    event_rx: smol::channel::Receiver<ServerEvent>,
    stop: impl std::future::Future<Output = ()>,
    started: Started,
) -> anyhow::Result<()> {
    use futures_lite::FutureExt;
    enum Next {
        Event(ServerEvent),
        Stop,
        DriverGone,
    }
    let mut stop = std::pin::pin!(stop);
    // Agents already registered in an earlier run are sent their tasks when they register again.
    let outcome = loop {
        // The stop signal is looked at first: under load events never stop coming.
        let next = async {
            (&mut stop).await;
            Next::Stop
        }
        .or(async {
            match event_rx.recv().await {
                Ok(e) => Next::Event(e),
                Err(_) => Next::DriverGone,
            }
        })
        .await;
        let first = match next {
            Next::Event(e) => e,
            Next::Stop => break Ok(()),
            Next::DriverGone => break Err(anyhow::anyhow!("the NetTask driver stopped")),
        };
        let mut batch = vec![first];
        // Group commit: what arrives within a few milliseconds of the first event is handled
        // and stored, with one fdatasync, together. The store is written right here, on the
        // event loop and outside the state lock: a hand-off to another thread cost the agents
        // more in acknowledgement latency (and so throughput) than the sync itself.
        let gather_until = Instant::now() + EVENT_BATCH_WINDOW;
        let mut window = async_io::Timer::at(gather_until);
        loop {
            while batch.len() < EVENT_BATCH_MAX {
                match event_rx.try_recv() {
                    Ok(e) => batch.push(e),
                    Err(_) => break,
                }
            }
            if batch.len() >= EVENT_BATCH_MAX || Instant::now() >= gather_until {
                break;
            }
            // The next event or the window's end, whichever comes first: a full batch goes
            // at once.
            let next = futures_lite::future::or(async { event_rx.recv().await.ok() }, async {
                (&mut window).await;
                None
            })
            .await;
            match next {
                Some(e) => batch.push(e),
                None => break,
            }
        }
        if let Some(job) = handle_events(&shared, batch) {
            store_batch(&shared, job);
        }
    };
    shut_down(shared, started).await;
    outcome
}

/// Stops what [`run`] started, in the order that loses nothing: no new connections or
/// requests, no liveness verdicts, the local agent (and its probes) stopped, the last reports
/// stored and acknowledged, then the store closed.
async fn shut_down(shared: Arc<Shared>, started: Started) {
    log::event(
        Level::Info,
        "STOPPING",
        "no new connections; storing what arrived",
    );
    let Started {
        driver,
        alertflow,
        http,
        background,
        local_agent,
    } = started;
    for task in background {
        task.cancel().await;
    }
    alertflow.await;
    http.await;
    if let Some((task, stop)) = local_agent {
        stop.close();
        task.await;
    }
    // The last batch was stored and released by the event loop before it ended; the driver
    // sends those acknowledgements, then ends when its command channel is closed.
    shared.commands.close();
    driver.await;
    for forwarder in &shared.alertmanagers {
        forwarder.close();
    }
    for writer in &shared.remote_writers {
        writer.close(Duration::from_secs(5)).await;
    }
    // Requests still being answered hold the shared parts a moment longer.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&shared) > 1 && Instant::now() < deadline {
        async_io::Timer::after(Duration::from_millis(20)).await;
    }
    // The store's maintenance thread is joined when the last handle goes.
    smol::unblock(move || drop(shared)).await;
    log::event(Level::Good, "STOPPED", "the server stopped cleanly");
}

/// The base URL of the HTTP API as others reach it (the host name when it listens everywhere).
fn http_base(http: SocketAddr) -> String {
    if http.ip().is_unspecified()
        && let Ok(host) = crate::config::host_name()
    {
        return format!("http://{host}:{}", http.port());
    }
    format!("http://{http}")
}

/// How long the event loop gathers events before handling them as one batch (one store write
/// and one fdatasync per batch): many slow agents then cost a sync per few dozen reports.
const EVENT_BATCH_WINDOW: Duration = Duration::from_millis(8);
/// Most events handled as one batch: under load a batch fills long before the window ends, so
/// acknowledgements wait for a small batch's sync, not for the window (measured in
/// BENCHMARKS.md: larger batches cut the throughput the agents' windows allow).
const EVENT_BATCH_MAX: usize = 256;

/// The loopback address of the family the server listens on (its own agent connects there).
fn loopback_of(listen: IpAddr) -> IpAddr {
    match listen {
        IpAddr::V4(a) if !a.is_unspecified() => listen,
        IpAddr::V6(a) if !a.is_unspecified() => listen,
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    }
}

/// Copies the endpoint's counters for the API now and then.
async fn stats_refresh(shared: Arc<Shared>) {
    loop {
        let (tx, rx) = smol::channel::bounded(1);
        shared.command(move |ep, _| {
            let _ = tx.try_send(ep.stats().clone());
        });
        if let Ok(stats) = rx.recv().await {
            *shared
                .endpoint_stats
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = stats;
        }
        async_io::Timer::after(Duration::from_secs(1)).await;
    }
}

/// Handles a batch of endpoint events under the state lock; returns the metrics reports for
/// the store's writer.
fn handle_events(shared: &Arc<Shared>, batch: Vec<ServerEvent>) -> Option<IngestJob> {
    let now_ms = log::now_ms();
    let mut reports: Vec<Report> = Vec::new();
    let mut receipts: Vec<Receipt> = Vec::new();
    let mut alerts: Vec<AlertRecord> = Vec::new();
    let mut state = shared.state();
    // Registrations first: ids are assigned and made durable with one write for the whole
    // batch, before any of them is answered.
    let mut ids = Vec::new();
    for event in &batch {
        if let ServerEvent::Registration { from, registration } = event {
            ids.push(admit_registration(
                shared,
                &mut state,
                *from,
                registration,
                now_ms,
            ));
        }
    }
    // Nobody is answered before the ids are durable: an id answered and then lost with the
    // registry would be handed to another agent after a restart. The agents repeat their
    // registrations, and each copy tries the write again.
    let saved = match state.registry.flush() {
        Ok(()) => true,
        Err(e) => {
            if let Some(held_back) = state.throttles.registry.allow(now_ms) {
                log::event(
                    Level::Bad,
                    "REGISTER",
                    format_args!(
                        "the agent registry was not saved: {e}; registrations wait for it{}",
                        log::held_back_note(held_back)
                    ),
                );
            }
            false
        }
    };
    let mut ids = ids.into_iter();
    for event in batch {
        match event {
            ServerEvent::Registration { from, registration } => {
                let id = match ids.next() {
                    Some(Some(id)) if saved => id,
                    Some(Some(_)) => {
                        shared.command(move |ep, _| ep.defer_registration(&registration));
                        continue;
                    }
                    None | Some(None) => continue,
                };
                let reply = Registered {
                    instance: registration.instance,
                    alertflow_port: shared.alertflow_port,
                    heartbeat_ms: shared.options.heartbeat.as_millis() as u32,
                    timeout_ms: shared.options.initial_timeout.as_millis() as u32,
                    max_retransmissions: shared.options.max_retransmissions.min(255) as u8,
                    server_time_ms: now_ms,
                };
                let registration_copy = registration.clone();
                shared.command(move |ep, now| {
                    ep.accept_registration(now, from, id, &registration_copy, reply)
                });
                log::event(
                    Level::Good,
                    "REGISTER",
                    format_args!("{} is agent {id}, from {from}", registration.name),
                );
                mark_heard(&mut state, id, now_ms, &mut alerts);
                dispatch_agent(shared, &mut state, &registration.name);
            }
            ServerEvent::Message {
                agent_id,
                message,
                receipt,
                ..
            } => {
                mark_heard(&mut state, agent_id, now_ms, &mut alerts);
                state.registry.mark_reported(agent_id);
                let Some(name) = state.registry.get(agent_id).map(|r| r.name.clone()) else {
                    // Nobody to store it for: acknowledged, it can never be stored.
                    if let Some(r) = receipt {
                        shared.command(move |ep, _| ep.release(r, true));
                    }
                    continue;
                };
                match message {
                    Message::Metrics(report) => {
                        let Some(task) = state.dispatch.by_number(report.task_number) else {
                            if let Some(r) = receipt {
                                shared.command(move |ep, _| ep.release(r, true));
                            }
                            // A task removed while the agent could not hear the CANCEL.
                            operate::send_cancel(shared, agent_id, report.task_number);
                            log::event(
                                Level::Warn,
                                "METRICS",
                                format_args!(
                                    "{name}: report for unknown task #{} dropped",
                                    report.task_number
                                ),
                            );
                            continue;
                        };
                        let task_id = task.task.task_id.clone();
                        let has_ping = report
                            .samples
                            .iter()
                            .any(|s| matches!(s, crate::wire::Sample::Ping { .. }));
                        let has_iperf = report
                            .samples
                            .iter()
                            .any(|s| matches!(s, crate::wire::Sample::Iperf { .. }));
                        // Only link measurements have a target (looked up only for them).
                        let target = if has_ping || has_iperf {
                            let (ping, iperf) = state.dispatch.targets(report.task_number, &name);
                            if has_ping { ping } else { iperf }
                        } else {
                            None
                        };
                        reports.push(Report {
                            agent: name,
                            task: task_id,
                            target,
                            time_ms: report.time_ms,
                            readings: crate::schema::readings(&report.samples),
                        });
                        receipts.extend(receipt);
                    }
                    Message::Heartbeat(_) => {}
                    other => log::event(
                        Level::Warn,
                        "UNEXPECTED",
                        format_args!("{name} sent a {} message", other.packet_type().name()),
                    ),
                }
            }
            ServerEvent::Acknowledged { agent_id, .. } => {
                // An agent that acknowledged what was sent to it (its task, a cancel) is a real
                // one at the address it registered from: killed before its first report, it is
                // still reported down rather than forgotten as a spoofed registration.
                mark_heard(&mut state, agent_id, now_ms, &mut alerts);
                state.registry.mark_reported(agent_id);
            }
            ServerEvent::Dropped { agent_id, id } => log::event(
                Level::Warn,
                "DROPPED",
                format_args!("message {id} to agent {agent_id} dropped from a full queue"),
            ),
            ServerEvent::PeerLost { agent_id } => log::event(
                Level::Warn,
                "SILENT",
                format_args!("{} stopped acknowledging", agent_label(&state, agent_id)),
            ),
            ServerEvent::PeerRecovered { agent_id } => log::event(
                Level::Good,
                "ANSWERS",
                format_args!("{} acknowledges again", agent_label(&state, agent_id)),
            ),
            ServerEvent::RegistrationRefused { from, name, reason } => log::event(
                Level::Bad,
                "REFUSED",
                format_args!("registration of {name} from {from}: {reason}"),
            ),
            ServerEvent::Malformed {
                from,
                agent_id,
                reason,
            } => {
                if let Some(held_back) = state.throttles.malformed.allow(now_ms) {
                    log::event(
                        Level::Warn,
                        "MALFORMED",
                        format_args!(
                            "from {from} (agent {agent_id}): {reason}{}",
                            log::held_back_note(held_back)
                        ),
                    );
                }
            }
        }
    }
    drop(state);
    shared.store_alerts_logged(alerts);
    if reports.is_empty() && receipts.is_empty() {
        return None;
    }
    Some(IngestJob { reports, receipts })
}

/// Takes a registration into the registry, or refuses it (answered with REFUSED `full`) when
/// it is a new name and the server is at `--max-agents`, or, without keys, new names arrive
/// faster than `--new-agents-per-second`. Returns the id, or `None` when refused.
fn admit_registration(
    shared: &Arc<Shared>,
    state: &mut State,
    from: SocketAddr,
    registration: &crate::wire::Registration,
    now_ms: u64,
) -> Option<u32> {
    let known = state.registry.by_name(&registration.name).is_some();
    let refusal = if known {
        None
    } else if state.registry.len() >= shared.options.max_agents {
        Some(format!(
            "the server has {} agents, its --max-agents",
            state.registry.len()
        ))
    } else if !shared.options.keys.is_keyed()
        && !state
            .new_agents
            .take(now_ms, shared.options.new_agents_per_second)
    {
        Some(format!(
            "more than {} new agents a second (new names are rate-limited without keys: \
             --new-agents-per-second)",
            shared.options.new_agents_per_second
        ))
    } else {
        None
    };
    let refusal = match refusal {
        Some(why) => why,
        None => match state.registry.register(
            &registration.name,
            from,
            now_ms,
            registration.capabilities,
            &registration.software,
            registration.time_ms,
            registration.instance,
        ) {
            Ok(id) => {
                if let Some(other) = state
                    .shared_names
                    .registered(&registration.name, from, now_ms)
                    && let Some(held_back) = state
                        .shared_names
                        .warned
                        .allow(registration.name.clone(), now_ms)
                {
                    log::event(
                        Level::Bad,
                        "DUPLICATE",
                        format_args!(
                            "two agents use the name {}: from {from} and from {other} they take \
                             it from each other in turn; give each its own --id{}",
                            registration.name,
                            log::held_back_note(held_back)
                        ),
                    );
                }
                return Some(id);
            }
            Err(e) => e.to_string(),
        },
    };
    state.refused_new_agents += 1;
    if let Some(held_back) = state.throttles.admission.allow(now_ms) {
        log::event(
            Level::Bad,
            "REFUSED",
            format_args!(
                "new agent {} from {from}: {refusal}{}",
                registration.name,
                log::held_back_note(held_back)
            ),
        );
    }
    let registration = registration.clone();
    shared.command(move |ep, now| ep.refuse_registration(now, from, &registration));
    None
}

/// How many new names may arrive at once before the rate applies.
pub const NEW_AGENTS_BURST: u64 = 2000;

/// A token bucket for registrations of new names.
#[derive(Debug, Clone)]
pub struct NewAgentBucket {
    tokens_milli: u64,
    last_ms: u64,
}

impl Default for NewAgentBucket {
    fn default() -> Self {
        NewAgentBucket {
            tokens_milli: NEW_AGENTS_BURST * 1000,
            last_ms: 0,
        }
    }
}

impl NewAgentBucket {
    /// Takes one token at `now_ms`, refilled at `per_second`; false when the bucket is empty.
    pub fn take(&mut self, now_ms: u64, per_second: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        let burst = NEW_AGENTS_BURST.max(per_second) * 1000;
        self.tokens_milli = self
            .tokens_milli
            .saturating_add(elapsed.saturating_mul(per_second))
            .min(burst);
        if self.tokens_milli < 1000 {
            return false;
        }
        self.tokens_milli -= 1000;
        true
    }
}

/// The log throttles of the event loop.
#[derive(Debug)]
pub struct Throttles {
    pub malformed: log::Throttle,
    pub admission: log::Throttle,
    pub registry: log::Throttle,
}

impl Default for Throttles {
    fn default() -> Self {
        let every = |s| log::Throttle::new(Duration::from_secs(s));
        Throttles {
            malformed: every(10),
            admission: every(10),
            registry: every(10),
        }
    }
}

/// A one-line summary of a metrics report: `cpu 3.1%  ram 41.0%  rtt 0.050 ms ...`.
pub fn summarize(r: &Report) -> String {
    use crate::schema::{Field, SampleKind};
    let mut parts: Vec<String> = Vec::new();
    let mut interfaces: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for reading in &r.readings {
        let def = reading.field.def();
        let text = match reading.field {
            Field::CpuPercent => format!("cpu {:.1}%", reading.value),
            Field::RamPercent => format!("ram {:.1}%", reading.value),
            Field::RttAvgMs => format!("rtt {:.3} ms", reading.value),
            Field::JitterMs | Field::IperfJitterMs => format!("jitter {:.3} ms", reading.value),
            Field::LossPercent | Field::IperfLossPercent => format!("loss {:.1}%", reading.value),
            Field::BandwidthBps => format!(
                "bandwidth {:.1} Mbit/s ({})",
                reading.value / 1e6,
                reading.instance.as_deref().unwrap_or("?")
            ),
            Field::OfferedBps => format!("offered {:.1} Mbit/s", reading.value / 1e6),
            Field::LinkState => {
                let state =
                    crate::wire::LinkState::from_u8(reading.value as u8).map_or("?", |s| s.name());
                interfaces
                    .entry(reading.instance.as_deref().unwrap_or("?"))
                    .or_default()
                    .insert(0, state.to_string());
                continue;
            }
            Field::RttMinMs | Field::RttMaxMs => continue,
            // Counters (interface totals, pings sent) are for Prometheus, not for this line.
            _ if def.rollup == crate::schema::Rollup::Counter => continue,
            _ if def.sample == SampleKind::Interface => {
                interfaces
                    .entry(reading.instance.as_deref().unwrap_or("?"))
                    .or_default()
                    .push(format!("{:.0} {}", reading.value, def.unit));
                continue;
            }
            _ => format!("{} {} {}", def.name, reading.value, def.unit),
        };
        parts.push(text);
    }
    for (name, values) in interfaces {
        parts.push(format!("{name} {}", values.join(" ")));
    }
    if let Some(t) = &r.target {
        parts.push(format!("-> {t}"));
    }
    parts.join("  ")
}

/// `name (agent N)` for log lines.
fn agent_label(state: &State, agent_id: u32) -> String {
    let name = state
        .registry
        .get(agent_id)
        .map_or("?", |r| r.name.as_str());
    format!("{name} (agent {agent_id})")
}

/// Records that an agent was heard from; a down agent comes back up, and its AGENT_UP alert
/// joins `alerts`, which the caller stores with one write.
fn mark_heard(state: &mut State, agent_id: u32, now_ms: u64, alerts: &mut Vec<AlertRecord>) {
    let was_alerted = state.down_alerted.remove(&agent_id);
    let Some(record) = state.registry.get_mut(agent_id) else {
        return;
    };
    record.last_seen_ms = now_ms;
    if record.status == Status::Up {
        return;
    }
    record.status = Status::Up;
    let name = record.name.clone();
    if let Some(down_id) = was_alerted {
        log::event(Level::Good, "UP", format_args!("{name} is back"));
        let alert = server_alert(
            &name,
            AlertType::AgentUp,
            Severity::Info,
            0.0,
            0.0,
            format!("agent {name} is reporting again"),
        );
        // The AGENT_DOWN alert stops firing: store its resolution too.
        let mut resolution = server_alert(
            &name,
            AlertType::AgentDown,
            Severity::Critical,
            0.0,
            0.0,
            format!("resolved: agent {name} is reporting again"),
        );
        resolution.resolves = down_id;
        alerts.push(AlertRecord::from_alert(&alert, now_ms));
        alerts.push(AlertRecord::from_alert(&resolution, now_ms));
    }
}

pub(crate) fn server_alert(
    agent: &str,
    kind: AlertType,
    severity: Severity,
    value: f64,
    threshold: f64,
    message: String,
) -> Alert {
    let mut id = [0u8; 8];
    let _ = getrandom::fill(&mut id);
    Alert {
        alert_id: u64::from_be_bytes(id),
        resolves: 0,
        agent: agent.to_string(),
        task: String::new(),
        alert_type: kind,
        severity,
        value,
        threshold,
        time_ms: log::now_ms(),
        rule: "liveness".to_string(),
        message,
        subject: String::new(),
    }
}

/// Forgets the agent `name`: its registry entry (a tombstone is saved at once), its session
/// and what it was assigned. Returns its id, `None` when there is no such agent.
pub fn forget_agent(
    shared: &Arc<Shared>,
    name: &str,
) -> Result<Option<u32>, registry::RegistryError> {
    let mut state = shared.state();
    let Some(record) = state.registry.forget(name) else {
        return Ok(None);
    };
    state.registry.flush()?;
    forget_session(shared, &mut state, &record);
    drop(state);
    // Its alerts stop firing; its tasks keep naming it (it gets them again if it comes back).
    let resolved = operate::resolve_firing(
        shared,
        |r| r.agent == record.name,
        &format!("resolved: agent {} was forgotten", record.name),
    );
    log::event(
        Level::Warn,
        "FORGOTTEN",
        format_args!(
            "{} (agent {}); {resolved} firing alert(s) resolved",
            record.name, record.id
        ),
    );
    Ok(Some(record.id))
}

/// What the server holds of a forgotten agent besides its registry entry.
fn forget_session(shared: &Arc<Shared>, state: &mut State, record: &registry::AgentRecord) {
    state.down_alerted.remove(&record.id);
    state.dispatch.assigned.remove(&record.name);
    let id = record.id;
    shared.command(move |ep, _| ep.forget(id));
}

/// Forgets agents that never sent anything after registering and stayed silent for
/// `--forget-unreported-after` (a flood of spoofed registrations goes away by itself).
fn forget_unreported(shared: &Arc<Shared>, state: &mut State, now_ms: u64) {
    let after = shared.options.forget_unreported_after.as_millis() as u64;
    let stale: Vec<String> = state
        .registry
        .all()
        .into_iter()
        .filter(|r| !r.reported && now_ms.saturating_sub(r.last_seen_ms) > after)
        .map(|r| r.name.clone())
        .collect();
    if stale.is_empty() {
        return;
    }
    let mut forgotten = Vec::new();
    for name in &stale {
        if let Some(record) = state.registry.forget(name) {
            forgotten.push(record);
        }
    }
    if let Err(e) = state.registry.flush() {
        log::event(
            Level::Bad,
            "REGISTRY",
            format_args!("forgetting silent agents was not saved: {e}"),
        );
    }
    for record in &forgotten {
        forget_session(shared, state, record);
    }
    log::event(
        Level::Warn,
        "FORGOTTEN",
        format_args!(
            "{} agent(s) that never reported and were silent for {} s (first: {})",
            forgotten.len(),
            after / 1000,
            stale[0]
        ),
    );
}

/// Marks agents down when they were silent for too long, and raises AGENT_DOWN.
async fn liveness(shared: Arc<Shared>) {
    let limit_ms = (shared.options.heartbeat * shared.options.missed_heartbeats).as_millis() as u64;
    loop {
        async_io::Timer::after(Duration::from_millis(250)).await;
        let now_ms = log::now_ms();
        let candidates = {
            let mut state = shared.state();
            forget_unreported(&shared, &mut state, now_ms);
            let started = state.started_ms;
            let mut newly_down = Vec::new();
            for record in state.registry.iter_mut() {
                // An agent that never sent anything is not reported down: it is forgotten instead
                // (spoofed registrations would otherwise each store an alert at every start).
                if !record.reported {
                    continue;
                }
                let since = record.last_seen_ms.max(started);
                if now_ms.saturating_sub(since) <= limit_ms {
                    continue;
                }
                match record.status {
                    Status::Up => {
                        record.status = Status::Down;
                        newly_down.push((
                            record.id,
                            record.name.clone(),
                            now_ms - record.last_seen_ms,
                        ));
                    }
                    Status::Down => newly_down.push((
                        record.id,
                        record.name.clone(),
                        now_ms.saturating_sub(record.last_seen_ms),
                    )),
                }
            }
            newly_down
                .into_iter()
                .filter(|(id, ..)| {
                    !state.down_alerted.contains_key(id)
                        && state
                            .served_elsewhere
                            .get(id)
                            .is_none_or(|until| *until <= now_ms)
                })
                .collect::<Vec<(u32, String, u64)>>()
        };
        // Agents another server serves now are not down: the peers are asked (outside the
        // state lock) before an AGENT_DOWN is raised.
        let elsewhere = if candidates.is_empty() || shared.options.peers.is_empty() {
            std::collections::HashMap::new()
        } else {
            served_by_peers(&shared).await
        };
        let mut state = shared.state();
        // One write for every agent found silent in this pass, however many.
        let mut alerts = Vec::new();
        for (id, name, silent_ms) in candidates {
            if let Some(peer) = elsewhere.get(&name) {
                let known = state
                    .served_elsewhere
                    .insert(id, now_ms + PEER_ANSWER_HOLDS.as_millis() as u64);
                if known.is_none() {
                    log::event(
                        Level::Info,
                        "MOVED",
                        format_args!(
                            "{name} silent here for {:.1} s, and served by {peer}: not reported down",
                            silent_ms as f64 / 1000.0
                        ),
                    );
                }
                continue;
            }
            state.served_elsewhere.remove(&id);
            if state.down_alerted.contains_key(&id) {
                continue;
            }
            log::event(
                Level::Bad,
                "DOWN",
                format_args!("{name} silent for {:.1} s", silent_ms as f64 / 1000.0),
            );
            let alert = server_alert(
                &name,
                AlertType::AgentDown,
                Severity::Critical,
                silent_ms as f64 / 1000.0,
                limit_ms as f64 / 1000.0,
                format!("agent {name} silent for {:.1} s", silent_ms as f64 / 1000.0),
            );
            state.down_alerted.insert(id, alert.alert_id);
            alerts.push(AlertRecord::from_alert(&alert, now_ms));
        }
        drop(state);
        shared.store_alerts_logged(alerts);
    }
}

/// How long a peer's word that it serves an agent holds before it is asked again.
const PEER_ANSWER_HOLDS: Duration = Duration::from_secs(30);
/// How long a peer has to answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(2);

/// The agents the peers report up, with the peer that serves each. A peer that does not
/// answer serves nobody (then the agent is down as far as this server can tell).
async fn served_by_peers(shared: &Shared) -> std::collections::HashMap<String, String> {
    let token = shared.api().token;
    let mut served = std::collections::HashMap::new();
    for peer in &shared.options.peers {
        let ask = crate::client::get_json_as(peer, token.as_deref(), "/api/agents");
        let answer = futures_lite::future::or(async { ask.await.ok() }, async {
            async_io::Timer::after(PEER_TIMEOUT).await;
            None
        })
        .await;
        let Some(list) = answer.as_ref().and_then(|a| a.as_array()) else {
            continue;
        };
        for agent in list {
            if agent["status"] == "up"
                && let Some(name) = agent["name"].as_str()
            {
                served.insert(name.to_string(), peer.clone());
            }
        }
    }
    served
}

/// Says once, when it happens, that an iperf test could not be given a time slot (and so is
/// not run).
fn report_unscheduled(unplaced: &[crate::task::plan::Unplaced]) -> Vec<String> {
    unplaced
        .iter()
        .map(|u| {
            let text = format!("{} is not scheduled: {}", u.run, u.reason);
            log::event(Level::Bad, "PLAN", &text);
            text
        })
        .collect()
}

/// What dispatching one task did for one device.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceOutcome {
    pub device: String,
    /// `sent`, `waiting` (agent not registered), or `blocked` (an address is missing).
    pub status: &'static str,
    pub agent_id: Option<u32>,
    pub items: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Sends one device its assignment of one task, if its agent is registered.
fn dispatch_device(
    shared: &Arc<Shared>,
    state: &mut State,
    loaded: &LoadedTask,
    device: &str,
) -> DeviceOutcome {
    let agent = state.registry.by_name(device).map(|r| (r.id, r.status));
    let registry = &state.registry;
    let resolve = |d: &str| {
        registry
            .by_name(d)
            .and_then(|r| r.address)
            .map(|a| a.ip().to_string())
    };
    let Some(result) = state.dispatch.assignment(loaded, device, resolve) else {
        return DeviceOutcome {
            device: device.to_string(),
            status: "unknown",
            agent_id: None,
            items: Vec::new(),
            reason: Some("not a device of this task".into()),
        };
    };
    let assignment = match result {
        Ok(a) => a,
        Err(e) => {
            return DeviceOutcome {
                device: device.to_string(),
                status: "blocked",
                agent_id: agent.map(|a| a.0),
                items: Vec::new(),
                reason: Some(e.to_string()),
            };
        }
    };
    let items: Vec<String> = assignment.items.iter().map(|i| i.describe()).collect();
    if let Some(mismatch) = state
        .registry
        .by_name(device)
        .and_then(|r| r.address)
        .and_then(|a| loaded.task.address_mismatch(device, a.ip()))
    {
        log::event(Level::Warn, "TASK", &mismatch);
    }
    let Some((agent_id, _)) = agent.filter(|(_, status)| *status == Status::Up) else {
        return DeviceOutcome {
            device: device.to_string(),
            status: "waiting",
            agent_id: agent.map(|a| a.0),
            items,
            reason: Some("the agent is not connected; it gets the task when it registers".into()),
        };
    };
    state
        .dispatch
        .assigned
        .entry(device.to_string())
        .or_default()
        .insert(loaded.number);
    let message = Message::Task(assignment);
    shared.command(move |ep, now| {
        if let Err(e) = ep.send(now, agent_id, &message) {
            log::event(
                Level::Warn,
                "TASK",
                format_args!("not sent to agent {agent_id}: {e}"),
            );
        }
    });
    log::event(
        Level::Info,
        "TASK",
        format_args!(
            "{} (#{}) sent to {device}: {}",
            loaded.task.task_id,
            loaded.number,
            items.join(", ")
        ),
    );
    DeviceOutcome {
        device: device.to_string(),
        status: "sent",
        agent_id: Some(agent_id),
        items,
        reason: None,
    }
}

/// Sends a newly registered agent every task naming it, and re-sends the iperf clients that
/// connect to it (its address may have changed).
fn dispatch_agent(shared: &Arc<Shared>, state: &mut State, name: &str) {
    for loaded in state.dispatch.tasks_of(name) {
        let outcome = dispatch_device(shared, state, &loaded, name);
        if outcome.status == "blocked" {
            log::event(
                Level::Warn,
                "TASK",
                format_args!(
                    "{} for {name} waits: {}",
                    loaded.task.task_id,
                    outcome.reason.unwrap_or_default()
                ),
            );
        }
        for client in Dispatch::iperf_clients_of(&loaded, name) {
            if state
                .registry
                .by_name(&client)
                .is_some_and(|r| r.status == Status::Up)
            {
                dispatch_device(shared, state, &loaded, &client);
            }
        }
    }
}

/// What installing one task did.
#[derive(Debug, Clone, Serialize)]
pub struct TaskOutcome {
    pub task_id: String,
    pub number: u32,
    pub devices: Vec<DeviceOutcome>,
    /// Agents that ran the task before and no longer do.
    pub cancelled: Vec<String>,
    /// iperf tests of the task that could not be given a time slot, and why (not run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unscheduled: Vec<String>,
}

/// Validates and installs an uploaded task file, dispatches it, and keeps it for restarts.
pub fn install_upload(
    shared: &Arc<Shared>,
    upload: &TaskUpload,
) -> Result<Vec<TaskOutcome>, dispatch::LoadError> {
    let tasks = Dispatch::read_upload(upload)?;
    let mut state = shared.state();
    let mut outcomes = Vec::new();
    let mut ids = Vec::new();
    for (task, rules) in tasks {
        ids.push(task.task_id.clone());
        let number = state.dispatch.install(task, rules, HTTP_ORIGIN)?;
        outcomes.push(dispatch_installed(shared, &mut state, number));
    }
    // The new tasks may have moved the iperf slots of others: send those devices their new
    // slots; say once what could not be scheduled.
    let changes = state.dispatch.take_plan_changes();
    for unplaced in &changes.unplaced {
        if let Some(outcome) = outcomes
            .iter_mut()
            .find(|o| o.task_id == unplaced.run.task_id)
        {
            outcome
                .unscheduled
                .extend(report_unscheduled(std::slice::from_ref(unplaced)));
        } else {
            report_unscheduled(std::slice::from_ref(unplaced));
        }
    }
    for (number, device) in changes.moved {
        let Some(loaded) = state.dispatch.by_number(number).cloned() else {
            continue;
        };
        let sent_now = outcomes.iter().any(|o| o.number == number);
        let assigned = state
            .dispatch
            .assigned
            .get(&device)
            .is_some_and(|n| n.contains(&number));
        if !sent_now && assigned {
            dispatch_device(shared, &mut state, &loaded, &device);
        }
    }
    state.dispatch.persist_upload(&ids, upload)?;
    Ok(outcomes)
}

/// Dispatches the task just installed as `number` to each of its devices, and sends CANCEL to
/// the agents that ran it before and are not named any more.
fn dispatch_installed(shared: &Arc<Shared>, state: &mut State, number: u32) -> TaskOutcome {
    let Some(loaded) = state.dispatch.by_number(number).cloned() else {
        return TaskOutcome {
            task_id: String::new(),
            number,
            devices: Vec::new(),
            cancelled: Vec::new(),
            unscheduled: Vec::new(),
        };
    };
    let devices: Vec<String> = loaded
        .task
        .devices
        .iter()
        .map(|d| d.device_id.clone())
        .collect();
    let mut outcome = TaskOutcome {
        task_id: loaded.task.task_id.clone(),
        number,
        devices: Vec::new(),
        cancelled: Vec::new(),
        unscheduled: Vec::new(),
    };
    for device in &devices {
        outcome
            .devices
            .push(dispatch_device(shared, state, &loaded, device));
    }
    // Agents that ran this task and are not named any more stop running it.
    let stale: Vec<String> = state
        .dispatch
        .assigned
        .iter()
        .filter(|(name, numbers)| numbers.contains(&number) && !devices.contains(name))
        .map(|(name, _)| name.clone())
        .collect();
    for name in stale {
        if let Some(numbers) = state.dispatch.assigned.get_mut(&name) {
            numbers.remove(&number);
        }
        if let Some(agent_id) = state.registry.by_name(&name).map(|r| r.id) {
            operate::send_cancel(shared, agent_id, number);
            outcome.cancelled.push(name);
        }
    }
    outcome
}

/// Stores alerts that arrive over AlertFlow (until the server stops).
struct AlertIngest(std::sync::Weak<Shared>);

impl crate::alertflow::server::AlertHandler for AlertIngest {
    fn store(
        &self,
        agent_id: u32,
        peer: SocketAddr,
        mut alert: Alert,
    ) -> Result<crate::alertflow::server::StoreOutcome, Box<dyn std::error::Error + Send + Sync>>
    {
        let Some(shared) = self.0.upgrade() else {
            return Err("the server is stopping".into());
        };
        let mut state = shared.state();
        // The alert belongs to the agent whose registration (and key) the frame came with,
        // never to a name the body claims.
        let Some(name) = state.registry.get(agent_id).map(|r| r.name.clone()) else {
            state.refused_alerts += 1;
            return Ok(crate::alertflow::server::StoreOutcome::Refused(format!(
                "agent id {agent_id} is not registered"
            )));
        };
        if !alert.agent.is_empty() && alert.agent != name {
            state.refused_alerts += 1;
            return Ok(crate::alertflow::server::StoreOutcome::Refused(format!(
                "the alert names agent {:?}, but the frame comes from {name} (agent {agent_id})",
                alert.agent
            )));
        }
        alert.agent = name;
        let mut record = AlertRecord::from_alert(&alert, log::now_ms());
        // A ping or iperf alert names what it measured towards (Alertmanager's `target`).
        if let Some(task) = state.dispatch.get(&alert.task) {
            let (ping, iperf) = state.dispatch.targets(task.number, &alert.agent);
            record.target = match alert.subject.as_str() {
                "ping" => ping,
                "iperf" => iperf,
                _ => None,
            };
        }
        drop(state);
        let stored = shared
            .store_alerts(vec![record])
            .map(|o| o.first().copied().unwrap_or(Stored::Duplicate));
        match stored {
            Ok(Stored::New) if alert.resolves != 0 => {
                log::event(
                    Level::Good,
                    "RESOLVED",
                    format_args!(
                        "{} {} {}: {} (rule {})",
                        alert.agent,
                        alert.alert_type.name(),
                        alert.task,
                        alert.message,
                        alert.rule
                    ),
                );
                Ok(crate::alertflow::server::StoreOutcome::Stored)
            }
            Ok(Stored::New) => {
                log::event(
                    if alert.severity == Severity::Critical {
                        Level::Bad
                    } else {
                        Level::Warn
                    },
                    "ALERT",
                    format_args!(
                        "{} {} {}: {} (value {}, threshold {}, rule {}) from {peer}",
                        alert.agent,
                        alert.alert_type.name(),
                        alert.task,
                        alert.message,
                        alert.value,
                        alert.threshold,
                        alert.rule
                    ),
                );
                Ok(crate::alertflow::server::StoreOutcome::Stored)
            }
            // Refused (dated outside what the store keeps): acknowledged, never stored.
            Ok(Stored::Duplicate | Stored::Refused(_)) => {
                Ok(crate::alertflow::server::StoreOutcome::Duplicate)
            }
            Err(e) => Err(Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SharedNames;

    #[test]
    fn alternating_addresses_are_two_agents_and_a_restart_is_not() {
        let a = "192.0.2.1:5000".parse().unwrap();
        let b = "192.0.2.2:5000".parse().unwrap();
        let mut names = SharedNames::default();
        assert_eq!(names.registered("r1", a, 0), None);
        assert_eq!(
            names.registered("r1", b, 1000),
            None,
            "a restart from elsewhere"
        );
        assert_eq!(names.registered("r1", b, 2000), None);
        assert_eq!(
            names.registered("r1", a, 3000),
            None,
            "B B A is not alternating"
        );
        assert_eq!(names.registered("r1", b, 4000), Some(a), "B A B");
        assert_eq!(names.registered("r2", a, 0), None);
        assert_eq!(names.registered("r2", b, 1000), None);
        assert_eq!(
            names.registered("r2", a, 90_000),
            None,
            "more than a minute apart"
        );
    }
}
