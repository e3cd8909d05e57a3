//! `nms server`: registers agents, dispatches tasks, ingests metrics and alerts, stores them,
//! watches liveness and serves the HTTP API.
//!
//! Data flows one way: the NetTask driver owns the socket and the endpoint and hands events to
//! the event loop ([`run`]), which updates the [`State`] (registry, tasks, store) and sends
//! commands back to the driver. AlertFlow connections and HTTP requests use the same state.

pub mod alertmanager;
pub mod dispatch;
pub mod http;
mod http_head;
pub mod page;
pub mod prometheus;
pub mod registry;

use crate::log::{self, Level};
use crate::nettask::driver::{self, Command, SocketStats};
use crate::nettask::{Config, Keys, ServerEndpoint, ServerEvent, Stats};
use crate::store::{AlertRecord, MetricRecord, Store};
use crate::wire::{Alert, AlertType, Cancel, Message, Registered, Severity};
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
    /// Forward alerts to the Alertmanager at this base URL (`http://HOST:9093`).
    pub alertmanager: Option<String>,
}

/// What the event loop, AlertFlow and HTTP share.
#[derive(Debug)]
pub struct State {
    pub registry: Registry,
    pub dispatch: Dispatch,
    pub store: Store,
    /// Agent ids whose alerts of "did not come back" were raised, per liveness rules.
    /// Agents whose AGENT_DOWN was raised, with that alert's id (resolved when they return).
    down_alerted: std::collections::HashMap<u32, u64>,
    started_ms: u64,
    /// Where stored alerts are forwarded, with `--alertmanager`.
    pub alertmanager: Option<alertmanager::Forwarder>,
}

impl State {
    /// Stores an alert (once per id) and hands a new one to the Alertmanager forwarder, if any.
    pub fn store_alert(
        &mut self,
        record: AlertRecord,
    ) -> Result<crate::store::Stored, crate::store::StoreError> {
        let copy = self.alertmanager.as_ref().map(|_| record.clone());
        let stored = self.store.store_alert(record)?;
        if stored == crate::store::Stored::New
            && let (Some(forwarder), Some(record)) = (&self.alertmanager, copy)
        {
            forwarder.forward(record);
        }
        Ok(stored)
    }

    /// Stores alerts with one write (once per id) and forwards the new ones.
    pub fn store_alerts(
        &mut self,
        records: Vec<AlertRecord>,
    ) -> Result<Vec<crate::store::Stored>, crate::store::StoreError> {
        let copies = self.alertmanager.as_ref().map(|_| records.clone());
        let stored = self.store.store_alerts(records)?;
        if let (Some(forwarder), Some(copies)) = (&self.alertmanager, copies) {
            for (record, outcome) in copies.into_iter().zip(&stored) {
                if *outcome == crate::store::Stored::New {
                    forwarder.forward(record);
                }
            }
        }
        Ok(stored)
    }
}

/// The server's shared parts.
pub struct Shared {
    state: Mutex<State>,
    commands: Sender<Command<ServerEndpoint>>,
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
}

/// Where a running server listens (ports resolved when 0 was asked).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub nettask: SocketAddr,
    pub alertflow: SocketAddr,
    pub http: SocketAddr,
}

/// Runs the server until the process ends.
pub async fn run(options: ServerOptions) -> anyhow::Result<()> {
    if let Some(url) = &options.alertmanager {
        alertmanager::check_url(url)?;
    }
    std::fs::create_dir_all(&options.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            options.data_dir.display()
        )
    })?;
    let store = Store::open(&options.data_dir)?;
    let registry = Registry::open(&options.data_dir)?;
    let mut dispatch = Dispatch::open(&options.data_dir)?;

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
                    let number = dispatch.install(task, rules, "HTTP API")?;
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

    let nettask_addr = SocketAddr::new(options.listen, options.nettask_port);
    let socket = driver::bind(nettask_addr, 8 * 1024 * 1024)
        .with_context(|| format!("cannot bind the NetTask port udp/{nettask_addr}"))?;
    let alertflow_addr = SocketAddr::new(options.listen, options.alertflow_port);
    let alert_listener = async_net::TcpListener::bind(alertflow_addr)
        .await
        .with_context(|| format!("cannot bind the AlertFlow port tcp/{alertflow_addr}"))?;
    let http_listener = async_net::TcpListener::bind(options.http)
        .await
        .with_context(|| format!("cannot bind the HTTP API on {}", options.http))?;
    let bound = Bound {
        nettask: socket.local_addr()?,
        alertflow: alert_listener.local_addr()?,
        http: http_listener.local_addr()?,
    };

    let mut config = Config {
        initial_timeout: options.initial_timeout,
        max_retransmissions: options.max_retransmissions,
        keys: options.keys.clone(),
        ..Config::default()
    };
    config.max_queued_messages = 1000;
    let mut endpoint = ServerEndpoint::new(config);
    for agent in registry.all() {
        endpoint.know_agent(agent.id, &agent.name);
        endpoint.remember_registration(&agent.name, agent.last_registration_ms);
    }
    let alertmanager = match &options.alertmanager {
        Some(url) => {
            let forwarder = alertmanager::Forwarder::start(url, Some(http_base(bound.http)))?;
            log::event(
                Level::Info,
                "ALERTMGR",
                format_args!("forwarding alerts to {url}"),
            );
            Some(forwarder)
        }
        None => None,
    };
    let (command_tx, command_rx) = smol::channel::unbounded();
    let (event_tx, event_rx) = smol::channel::bounded(65536);
    let socket_stats = Arc::new(SocketStats::default());
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            registry,
            dispatch,
            store,
            down_alerted: Default::default(),
            started_ms: log::now_ms(),
            alertmanager,
        }),
        commands: command_tx,
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

    smol::spawn(driver::run(
        socket,
        endpoint,
        command_rx,
        event_tx,
        socket_stats,
    ))
    .detach();
    {
        let shared = shared.clone();
        let keys = options.keys.clone();
        smol::spawn(async move {
            let lookup_shared = shared.clone();
            let lookup: crate::alertflow::KeyLookup = Arc::new(move |agent_id| {
                let name = lookup_shared
                    .state()
                    .registry
                    .get(agent_id)
                    .map(|r| r.name.clone());
                name.and_then(|n| keys.for_agent(&n).cloned())
                    .or_else(|| keys.default.clone())
            });
            crate::alertflow::server::AlertServer::new(
                Arc::new(AlertIngest(shared.clone())),
                lookup,
            )
            .run(alert_listener, futures_lite::future::pending::<()>())
            .await
        })
        .detach();
    }
    smol::spawn(http::serve(http_listener, shared.clone())).detach();
    smol::spawn(liveness(shared.clone())).detach();
    smol::spawn(stats_refresh(shared.clone())).detach();
    if let Some(name) = &options.local_agent {
        crate::config::check_agent_name(name)?;
        let agent = crate::agent::AgentOptions {
            server: SocketAddr::new(loopback_of(options.listen), bound.nettask.port()).to_string(),
            id: name.clone(),
            data_dir: options.data_dir.join("local-agent").join(name),
            key: options.keys.for_agent(name).cloned(),
        };
        smol::spawn(async move {
            if let Err(e) = crate::agent::run(agent).await {
                log::event(
                    Level::Bad,
                    "AGENT",
                    format_args!("the local agent stopped: {e:#}"),
                );
            }
        })
        .detach();
    }

    // Agents already registered in an earlier run are sent their tasks when they register again.
    while let Ok(first) = event_rx.recv().await {
        let mut batch = vec![first];
        // Group commit: what arrives within a few milliseconds of the first event is handled
        // (and written, with one fdatasync) together. The driver has already acknowledged
        // these packets, so this adds no latency an agent sees; it saves a wake-up and a
        // sync per event when many agents report slowly.
        let gather_until = Instant::now() + EVENT_BATCH_WINDOW;
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
            async_io::Timer::at(gather_until).await;
        }
        handle_events(&shared, batch);
    }
    anyhow::bail!("the NetTask driver stopped")
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
/// and one fdatasync per batch). Acknowledgements do not wait for it: the driver sends them.
const EVENT_BATCH_WINDOW: Duration = Duration::from_millis(20);
/// Most events handled as one batch.
const EVENT_BATCH_MAX: usize = 1024;

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

fn handle_events(shared: &Arc<Shared>, batch: Vec<ServerEvent>) {
    let now_ms = log::now_ms();
    let mut records: Vec<MetricRecord> = Vec::new();
    let mut alerts: Vec<AlertRecord> = Vec::new();
    let mut state = shared.state();
    // Registrations first: ids are assigned and made durable with one write for the whole
    // batch, before any of them is answered.
    let mut ids = Vec::new();
    for event in &batch {
        if let ServerEvent::Registration { from, registration } = event {
            ids.push(state.registry.register(
                &registration.name,
                *from,
                now_ms,
                registration.capabilities,
                &registration.software,
                registration.time_ms,
            ));
        }
    }
    if let Err(e) = state.registry.flush() {
        log::event(
            Level::Bad,
            "REGISTER",
            format_args!("the agent registry was not saved: {e}"),
        );
    }
    let mut ids = ids.into_iter();
    for event in batch {
        match event {
            ServerEvent::Registration { from, registration } => {
                let id = match ids.next() {
                    Some(Ok(id)) => id,
                    None => continue,
                    Some(Err(e)) => {
                        log::event(
                            Level::Bad,
                            "REGISTER",
                            format_args!("{} from {from} refused: {e}", registration.name),
                        );
                        continue;
                    }
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
                agent_id, message, ..
            } => {
                mark_heard(&mut state, agent_id, now_ms, &mut alerts);
                let Some(name) = state.registry.get(agent_id).map(|r| r.name.clone()) else {
                    continue;
                };
                match message {
                    Message::Metrics(report) => {
                        let Some(task) = state.dispatch.by_number(report.task_number) else {
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
                        let (ping, iperf) = state.dispatch.targets(report.task_number, &name);
                        let has_ping = report
                            .samples
                            .iter()
                            .any(|s| matches!(s, crate::wire::Sample::Ping { .. }));
                        let has_iperf = report
                            .samples
                            .iter()
                            .any(|s| matches!(s, crate::wire::Sample::Iperf { .. }));
                        let target = if has_ping {
                            ping
                        } else if has_iperf {
                            iperf
                        } else {
                            None
                        };
                        records.push(MetricRecord::from_report(&name, &task_id, target, &report));
                    }
                    Message::Heartbeat(_) => {}
                    other => log::event(
                        Level::Warn,
                        "UNEXPECTED",
                        format_args!("{name} sent a {} message", other.packet_type().name()),
                    ),
                }
            }
            ServerEvent::Acknowledged { .. } => {}
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
            } => log::event(
                Level::Warn,
                "MALFORMED",
                format_args!("from {from} (agent {agent_id}): {reason}"),
            ),
        }
    }
    if shared.options.verbose {
        for r in &records {
            log::event(
                Level::Info,
                "METRICS",
                format_args!("{} {} {}", r.agent, r.task, summarize(r)),
            );
        }
    }
    if !alerts.is_empty() {
        let count = alerts.len();
        if let Err(e) = state.store_alerts(alerts) {
            log::event(
                Level::Bad,
                "STORE",
                format_args!("{count} alert(s) not stored: {e}"),
            );
        }
    }
    if !records.is_empty() {
        let count = records.len();
        if let Err(e) = state.store.store_metrics(records) {
            log::event(
                Level::Bad,
                "STORE",
                format_args!("{count} metrics report(s) not stored: {e}"),
            );
        }
    }
}

/// A one-line summary of a metrics record: `cpu 3.1% ram 41.0% rtt 0.05 ms ...`.
pub fn summarize(r: &MetricRecord) -> String {
    let mut parts: Vec<String> = Vec::new();
    let v = |k: &str| r.values.get(k).copied();
    if let Some(x) = v("cpu_percent") {
        parts.push(format!("cpu {x:.1}%"));
    }
    if let Some(x) = v("ram_percent") {
        parts.push(format!("ram {x:.1}%"));
    }
    if let Some(x) = v("rtt_avg_ms") {
        parts.push(format!("rtt {x:.3} ms"));
    }
    if let Some(x) = v("jitter_ms") {
        parts.push(format!("jitter {x:.3} ms"));
    }
    if let Some(x) = v("loss_percent") {
        parts.push(format!("loss {x:.1}%"));
    }
    if let Some(x) = v("bandwidth_bps") {
        parts.push(format!("tcp bandwidth {:.1} Mbit/s", x / 1e6));
    }
    if let Some(x) = v("udp_bandwidth_bps") {
        let offered =
            v("udp_offered_bps").map_or(String::new(), |o| format!(" of {:.1} offered", o / 1e6));
        parts.push(format!("udp bandwidth {:.1}{offered} Mbit/s", x / 1e6));
    }
    for (name, rates) in &r.interfaces {
        let state = rates
            .state
            .map_or(String::new(), |s| format!(" {}", s.name()));
        parts.push(format!(
            "{name}{state} {:.0} pkt/s {:.0} B/s {:.0} err/s",
            rates.packets_per_sec, rates.bytes_per_sec, rates.errors_per_sec
        ));
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

fn server_alert(
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
    }
}

/// Marks agents down when they were silent for too long, and raises AGENT_DOWN.
async fn liveness(shared: Arc<Shared>) {
    let limit_ms = (shared.options.heartbeat * shared.options.missed_heartbeats).as_millis() as u64;
    loop {
        async_io::Timer::after(Duration::from_millis(250)).await;
        let now_ms = log::now_ms();
        let mut state = shared.state();
        let started = state.started_ms;
        let mut newly_down = Vec::new();
        for record in state.registry.iter_mut() {
            let since = record.last_seen_ms.max(started);
            if now_ms.saturating_sub(since) <= limit_ms {
                continue;
            }
            match record.status {
                Status::Up => {
                    record.status = Status::Down;
                    newly_down.push((record.id, record.name.clone(), now_ms - record.last_seen_ms));
                }
                Status::Down => newly_down.push((
                    record.id,
                    record.name.clone(),
                    now_ms.saturating_sub(record.last_seen_ms),
                )),
            }
        }
        // One write for every agent found silent in this pass, however many.
        let mut alerts = Vec::new();
        for (id, name, silent_ms) in newly_down {
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
        if !alerts.is_empty() {
            let count = alerts.len();
            if let Err(e) = state.store_alerts(alerts) {
                log::event(
                    Level::Bad,
                    "STORE",
                    format_args!("{count} alert(s) not stored: {e}"),
                );
            }
        }
    }
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
        let number = state.dispatch.install(task, rules, "HTTP API")?;
        let Some(loaded) = state.dispatch.by_number(number).cloned() else {
            continue;
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
                .push(dispatch_device(shared, &mut state, &loaded, device));
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
                let message = Message::Cancel(Cancel {
                    task_number: number,
                });
                shared.command(move |ep, now| {
                    let _ = ep.send(now, agent_id, &message);
                });
                outcome.cancelled.push(name);
            }
        }
        outcomes.push(outcome);
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

/// Stores alerts that arrive over AlertFlow.
struct AlertIngest(Arc<Shared>);

impl crate::alertflow::server::AlertHandler for AlertIngest {
    fn store(
        &self,
        _agent_id: u32,
        peer: SocketAddr,
        alert: Alert,
    ) -> Result<crate::alertflow::server::StoreOutcome, Box<dyn std::error::Error + Send + Sync>>
    {
        let mut state = self.0.state();
        let record = AlertRecord::from_alert(&alert, log::now_ms());
        match state.store_alert(record) {
            Ok(crate::store::Stored::New) if alert.resolves != 0 => {
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
            Ok(crate::store::Stored::New) => {
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
            Ok(crate::store::Stored::Duplicate) => {
                Ok(crate::alertflow::server::StoreOutcome::Duplicate)
            }
            Err(e) => Err(Box::new(e)),
        }
    }
}
