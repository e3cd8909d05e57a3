//! Runs an agent's tasks on schedule: one worker per work item, each measuring every
//! `frequency` seconds, reporting the measurement over NetTask and evaluating the task's rules
//! on it. An iperf3 client starts in the time slot the server planned for it, on the server's
//! clock, and iperf3 clients run one at a time on an agent (as in the original design); an
//! iperf3 server item shares the agent's one listener of its port with every other task that
//! needs it. A measurement that fails raises one ERROR alert per cause (TIMEOUT when it could
//! not finish within its frequency), firing while the cause persists and resolved when the
//! measurement works again. A task received again with the same number replaces the running
//! one; a task that stops (replaced, cancelled) stops its programs and resolves its alerts.

use super::reporter::{Reporter, log_reports};
use crate::alertflow::random_id;
use crate::log::{self, Level};
use crate::probes::iperf::{IperfListener, ListenerStatus};
use crate::probes::{self, Destination, ProbeError, SystemSampler, Tools};
use crate::rules::{RaisedAlert, RuleSet, SampleInput};
use crate::wire::{
    Alert, AlertType, MetricsReport, ParamValue, ProbeSample, Sample, Severity, TaskAssignment,
    WorkItem,
};
use smol::lock::Mutex as AsyncMutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How long after receiving its task an iperf3 client waits at least before its first test,
/// so that the server's listener (another agent, sent its task at the same moment) is up.
const FIRST_TEST_GRACE_MS: i64 = 2000;

/// The server's clock as this agent estimates it: the difference between the server's Unix
/// time and the agent's, learned from REGISTERED (within half a round trip). iperf slots are
/// on the server's clock, so that agents with unsynchronised clocks still keep to them.
#[derive(Debug, Default)]
pub struct ServerClock {
    ahead_ms: AtomicI64,
}

impl ServerClock {
    /// Records that the server's clock read `server_ms` when the agent's read `local_ms`.
    pub fn set(&self, server_ms: u64, local_ms: u64) {
        let ahead = server_ms as i64 - local_ms as i64;
        self.ahead_ms.store(ahead, Ordering::Relaxed);
    }

    /// The server's Unix time now, milliseconds.
    fn now_ms(&self) -> i64 {
        log::now_ms() as i64 + self.ahead_ms.load(Ordering::Relaxed)
    }
}

/// The start of the first slot at or after `not_before`: a time `offset_ms` past a multiple of
/// `period_ms` (all on the server's clock, milliseconds).
pub fn next_slot(not_before: i64, offset_ms: u32, period_ms: u64) -> i64 {
    let period = period_ms.max(1) as i64;
    let offset = i64::from(offset_ms) % period;
    let periods = (not_before - offset).div_euclid(period);
    let start = periods * period + offset;
    if start < not_before {
        start + period
    } else {
        start
    }
}

/// A task running on this agent.
struct Running {
    assignment: TaskAssignment,
    context: Arc<TaskContext>,
    _workers: Vec<smol::Task<()>>,
}

impl Running {
    /// The task stops (replaced or cancelled): its alerts that are firing stop firing.
    fn resolve_firing(&self, why: &str) {
        let firing: Vec<_> = self
            .context
            .firing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for ((rule, kind, subject), original) in firing {
            self.context.reporter.raise(Alert {
                alert_id: random_id(),
                resolves: original,
                agent: self.context.agent.clone(),
                task: self.context.task_id.clone(),
                alert_type: kind,
                severity: Severity::Info,
                value: 0.0,
                threshold: 0.0,
                time_ms: log::now_ms(),
                rule,
                message: format!("resolved: the task was {why}"),
                subject: crate::wire::alertflow::clip_subject(&subject),
            });
        }
    }
}

/// Everything the workers of one task share.
struct TaskContext {
    agent: String,
    task_id: String,
    task_number: u32,
    rules: Mutex<RuleSet>,
    reporter: Reporter,
    /// Ids of the alerts firing now, by (rule, kind, subject), to send their resolution.
    firing: Mutex<HashMap<(String, AlertType, String), u64>>,
    host: Arc<Host>,
}

/// What the tasks of one agent share: the programs, the server's clock, the iperf3 listeners
/// and the turn of iperf3 clients.
struct Host {
    tools: Tools,
    clock: Arc<ServerClock>,
    listeners: Mutex<HashMap<u16, Weak<Listener>>>,
    iperf_lock: AsyncMutex<()>,
}

/// A port's listener, shared by the tasks that need it; stopped (and said so) when the last
/// one lets go.
struct Listener(IperfListener);

impl Drop for Listener {
    fn drop(&mut self) {
        log::event(
            Level::Info,
            "LISTEN",
            format_args!(
                "iperf3 server on port {}: no task needs it any more, stopping it",
                self.0.port()
            ),
        );
    }
}

impl Host {
    /// The listener of `port`, started if no task holds it now.
    fn listener(&self, port: u16) -> Arc<Listener> {
        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(listener) = listeners.get(&port).and_then(Weak::upgrade) {
            return listener;
        }
        let listener = Arc::new(Listener(self.tools.iperf_listener(port)));
        log::event(
            Level::Info,
            "LISTEN",
            format_args!("iperf3 server on port {port}"),
        );
        listeners.retain(|_, l| l.strong_count() > 0);
        listeners.insert(port, Arc::downgrade(&listener));
        listener
    }
}

/// The tasks an agent runs.
pub struct Scheduler {
    agent: String,
    reporter: Reporter,
    running: HashMap<u32, Running>,
    host: Arc<Host>,
}

impl Scheduler {
    /// A scheduler that runs `tools`, with iperf slots on `clock`.
    pub fn new(agent: &str, reporter: Reporter, tools: Tools, clock: Arc<ServerClock>) -> Self {
        Scheduler {
            agent: agent.to_string(),
            reporter,
            running: HashMap::new(),
            host: Arc::new(Host {
                tools,
                clock,
                listeners: Mutex::new(HashMap::new()),
                iperf_lock: AsyncMutex::new(()),
            }),
        }
    }

    /// Starts (or replaces) a task.
    pub fn install(&mut self, assignment: TaskAssignment) {
        if self
            .running
            .get(&assignment.task_number)
            .is_some_and(|r| r.assignment == assignment)
        {
            return; // the same work again (the server re-sends tasks on registration)
        }
        let rules = match RuleSet::for_assignment(&assignment) {
            Ok(r) => r,
            Err(e) => {
                log::event(
                    Level::Bad,
                    "RULES",
                    format_args!("task {}: {e}", assignment.task_id),
                );
                self.reporter.raise(error_alert(
                    &self.agent,
                    &assignment.task_id,
                    AlertType::Error,
                    "rules",
                    format!("rules of task {} do not compile: {e}", assignment.task_id),
                ));
                RuleSet::compile(&[]).unwrap_or_else(|_| unreachable!("an empty rule set compiles"))
            }
        };
        let context = Arc::new(TaskContext {
            agent: self.agent.clone(),
            task_id: assignment.task_id.clone(),
            task_number: assignment.task_number,
            rules: Mutex::new(rules),
            reporter: self.reporter.clone(),
            firing: Mutex::new(HashMap::new()),
            host: self.host.clone(),
        });
        // The new workers start (and take the listeners they share with the old ones) before
        // the old ones stop, so a listener survives its task being replaced.
        let workers = assignment
            .items
            .iter()
            .cloned()
            .map(|item| smol::spawn(work(context.clone(), item)))
            .collect();
        // The same task under another number: another server numbered it (the agent moved
        // between servers whose task numbers differ). One copy runs, the newest.
        let renumbered: Vec<u32> = self
            .running
            .iter()
            .filter(|(n, r)| {
                **n != assignment.task_number && r.assignment.task_id == assignment.task_id
            })
            .map(|(n, _)| *n)
            .collect();
        for old_number in renumbered {
            if let Some(old) = self.running.remove(&old_number) {
                old.resolve_firing("replaced");
                log::event(
                    Level::Warn,
                    "RENUMBERED",
                    format_args!(
                        "task {} was #{old_number} and is #{} now: the servers number their tasks differently; load the same task files in the same order on every server, or reports sent to one may be stored under another task by the other",
                        assignment.task_id, assignment.task_number
                    ),
                );
            }
        }
        let replaced = self.running.insert(
            assignment.task_number,
            Running {
                assignment: assignment.clone(),
                context,
                _workers: workers,
            },
        );
        if let Some(old) = &replaced {
            old.resolve_firing("replaced");
        }
        let what: Vec<String> = assignment.items.iter().map(WorkItem::describe).collect();
        log::event(
            Level::Info,
            if replaced.is_some() {
                "REPLACED"
            } else {
                "TASK"
            },
            format_args!(
                "{} (#{}): {}",
                assignment.task_id,
                assignment.task_number,
                what.join(", ")
            ),
        );
    }

    /// Stops a task: its workers end, the programs they run are killed, the listeners no other
    /// task needs are stopped.
    pub fn cancel(&mut self, task_number: u32) {
        if let Some(r) = self.running.remove(&task_number) {
            r.resolve_firing("cancelled");
            log::event(
                Level::Info,
                "CANCELLED",
                format_args!("{} (#{task_number})", r.assignment.task_id),
            );
        }
    }

    /// Stops every task (the agent is stopping): each worker is cancelled and waited for, so
    /// the programs it was running (ping, iperf3) are killed before this returns. Alerts that
    /// are firing stay firing.
    pub async fn stop(&mut self) {
        for (_, running) in self.running.drain() {
            for worker in running._workers {
                worker.cancel().await;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

/// The failures of one worker's measurements: one alert per cause, raised when the cause
/// appears and resolved when it is gone.
struct Failures {
    source: String,
    /// (kind, cause) of each alert this worker has firing.
    raised: Vec<(AlertType, String)>,
}

impl Failures {
    fn new(item: &WorkItem) -> Failures {
        Failures {
            source: source_name(item),
            raised: Vec::new(),
        }
    }

    fn rule(&self) -> String {
        format!("probe:{}", self.source)
    }

    /// This measurement's errors (none: it worked).
    fn update(&mut self, ctx: &TaskContext, errors: &[ProbeError]) {
        let now: Vec<(AlertType, String, &ProbeError)> = errors
            .iter()
            .map(|e| (e.alert_type(), e.cause(), e))
            .collect();
        let rule = self.rule();
        let gone: Vec<(AlertType, String)> = self
            .raised
            .iter()
            .filter(|(kind, cause)| !now.iter().any(|(k, c, _)| k == kind && c == cause))
            .cloned()
            .collect();
        for (kind, cause) in gone {
            self.raised.retain(|(k, c)| !(*k == kind && *c == cause));
            let original = ctx
                .firing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&(rule.clone(), kind, cause.clone()));
            let Some(original) = original else { continue };
            let message = if errors.is_empty() {
                format!("resolved: {} works again", self.source)
            } else {
                format!("resolved: {}: that cause is gone", self.source)
            };
            log::event(
                Level::Good,
                "PROBE",
                format_args!("{} {message}", ctx.task_id),
            );
            let mut alert = error_alert(&ctx.agent, &ctx.task_id, kind, &self.source, message);
            alert.resolves = original;
            alert.severity = Severity::Info;
            alert.subject = crate::wire::alertflow::clip_subject(&cause);
            ctx.reporter.raise(alert);
        }
        for (kind, cause, e) in now {
            if self.raised.iter().any(|(k, c)| *k == kind && *c == cause) {
                continue;
            }
            log::event(
                Level::Warn,
                "PROBE",
                format_args!("{} {}: {e}", ctx.task_id, self.source),
            );
            let mut alert = probe_alert(ctx, e, &self.source);
            // Each cause is an alert of its own (Alertmanager's `subject` label).
            alert.subject = crate::wire::alertflow::clip_subject(&cause);
            ctx.firing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((rule.clone(), kind, cause.clone()), alert.alert_id);
            self.raised.push((kind, cause));
            ctx.reporter.raise(alert);
        }
    }
}

/// One worker: measures, reports and evaluates rules every `frequency` seconds.
async fn work(ctx: Arc<TaskContext>, item: WorkItem) {
    let mut failures = Failures::new(&item);
    match &item {
        WorkItem::IperfClient {
            offset_ms,
            frequency_s,
            ..
        } => iperf_client(&ctx, &item, *offset_ms, *frequency_s, &mut failures).await,
        WorkItem::IperfServer {
            port, frequency_s, ..
        } => iperf_server(&ctx, *port, *frequency_s, &mut failures).await,
        _ => periodic(&ctx, &item, &mut failures).await,
    }
}

/// System metrics and ping: a measurement every frequency, the first one frequency after start
/// for system metrics (they measure over an interval), at once for ping.
async fn periodic(ctx: &TaskContext, item: &WorkItem, failures: &mut Failures) {
    let frequency = Duration::from_secs(item.frequency_s().max(1).into());
    let mut sampler = match item {
        WorkItem::MetricsGathering { .. } => match SystemSampler::new(Instant::now()) {
            Ok(s) => Some(s),
            Err(e) => {
                failures.update(ctx, &[e]);
                return;
            }
        },
        _ => None,
    };
    if sampler.is_some() {
        async_io::Timer::after(frequency.min(Duration::from_secs(1))).await;
    }
    // Echo requests and replies of this worker so far: ping samples carry counters.
    let mut ping_totals = (0u64, 0u64);
    let mut next = Instant::now();
    loop {
        let started = Instant::now();
        let mut outcome = measure(&ctx.host, item, frequency, sampler.as_mut()).await;
        if let Ok((samples, _)) = &mut outcome {
            for sample in samples.iter_mut() {
                if let Sample::Ping { sent, received, .. } = sample {
                    ping_totals.0 += *sent;
                    ping_totals.1 += *received;
                    (*sent, *received) = ping_totals;
                }
            }
        }
        finish(ctx, failures, outcome);
        next += frequency;
        let now = Instant::now();
        if next < now {
            // The run took longer than the frequency: skip the missed slots.
            log::event(
                Level::Warn,
                "SLOW",
                format_args!(
                    "{} {} took {:.1} s",
                    ctx.task_id,
                    failures.source,
                    now.duration_since(started).as_secs_f64()
                ),
            );
            next = now;
        }
        async_io::Timer::at(next).await;
    }
}

/// Reports the samples of one measurement and updates its failures.
fn finish(
    ctx: &TaskContext,
    failures: &mut Failures,
    outcome: Result<(Vec<Sample>, Vec<ProbeError>), ProbeError>,
) {
    match outcome {
        Ok((samples, errors)) => {
            failures.update(ctx, &errors);
            if !samples.is_empty() {
                report(ctx, samples);
            }
        }
        Err(e) => failures.update(ctx, &[e]),
    }
}

/// An iperf3 client: one test per period, in its slot on the server's clock.
async fn iperf_client(
    ctx: &TaskContext,
    item: &WorkItem,
    offset_ms: u32,
    frequency_s: u32,
    failures: &mut Failures,
) {
    let period_ms = u64::from(frequency_s.max(1)) * 1000;
    let frequency = Duration::from_millis(period_ms);
    let clock = &ctx.host.clock;
    let mut not_before = clock.now_ms() + FIRST_TEST_GRACE_MS;
    loop {
        let start = next_slot(not_before, offset_ms, period_ms);
        let wait = start - clock.now_ms();
        if wait > 0 {
            async_io::Timer::after(Duration::from_millis(wait as u64)).await;
        }
        let outcome = measure(&ctx.host, item, frequency, None).await;
        finish(ctx, failures, outcome);
        not_before = (start + 1).max(clock.now_ms());
    }
}

/// An iperf3 server item: holds its port's listener for as long as the task runs, and says
/// when the listener cannot run. The tests' figures are reported by their clients.
async fn iperf_server(ctx: &TaskContext, port: u16, frequency_s: u32, failures: &mut Failures) {
    let listener = ctx.host.listener(port);
    let check = Duration::from_secs(frequency_s.clamp(1, 10).into());
    loop {
        async_io::Timer::after(check).await;
        match listener.0.status() {
            ListenerStatus::Failed(message) => {
                failures.update(ctx, &[ProbeError::Iperf(message)]);
            }
            ListenerStatus::Listening => failures.update(ctx, &[]),
            ListenerStatus::Starting => {}
        }
    }
}

/// Runs one measurement within the frequency; a timeout becomes a TIMEOUT error.
async fn measure(
    host: &Host,
    item: &WorkItem,
    frequency: Duration,
    sampler: Option<&mut SystemSampler>,
) -> Result<(Vec<Sample>, Vec<ProbeError>), ProbeError> {
    match item {
        WorkItem::MetricsGathering {
            cpu,
            ram,
            interfaces,
            ..
        } => {
            let Some(sampler) = sampler else {
                return Ok((Vec::new(), Vec::new()));
            };
            Ok(sampler.sample(Instant::now(), *cpu, *ram, interfaces))
        }
        WorkItem::Ping {
            destination,
            packet_count,
            interval_ms,
            ..
        } => {
            let destination = Destination::new(destination)?;
            let deadline =
                probes::ping::suggested_deadline(*packet_count, *interval_ms).min(frequency);
            let sample = host
                .tools
                .ping(&destination, *packet_count, *interval_ms, deadline)
                .await?;
            Ok((vec![sample], Vec::new()))
        }
        WorkItem::IperfClient {
            server_address,
            port,
            duration_s,
            transport,
            rate_bps,
            ..
        } => {
            let destination = Destination::new(server_address)?;
            let started = Instant::now();
            let _exclusive = host.iperf_lock.lock().await;
            let left = frequency.saturating_sub(started.elapsed());
            let deadline = probes::iperf::suggested_deadline(*duration_s).min(left);
            let sample = host
                .tools
                .iperf_client(
                    &destination,
                    *port,
                    *duration_s,
                    *transport,
                    *rate_bps,
                    deadline,
                )
                .await?;
            Ok((vec![sample], Vec::new()))
        }
        WorkItem::IperfServer { .. } => Ok((Vec::new(), Vec::new())),
        WorkItem::Probe(item) => {
            let def = probes::by_name(&item.probe).ok_or_else(|| {
                ProbeError::InvalidArgument(format!(
                    "this agent has no probe {:?}; it runs: {}",
                    item.probe,
                    probes::PROBES
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            def.check(item).map_err(ProbeError::InvalidArgument)?;
            let values = (def.run)(item).await?;
            let sample = Sample::Probe(ProbeSample {
                probe: def.number,
                values,
            });
            Ok((vec![sample], Vec::new()))
        }
    }
}

fn source_name(item: &WorkItem) -> String {
    match item {
        WorkItem::MetricsGathering { .. } => "system metrics".into(),
        WorkItem::Ping { destination, .. } => format!("ping {destination}"),
        WorkItem::IperfClient { server_address, .. } => {
            format!("iperf3 client to {server_address}")
        }
        WorkItem::IperfServer { port, .. } => format!("iperf3 server on port {port}"),
        WorkItem::Probe(item) => std::iter::once(item.probe.clone())
            .chain(item.params.iter().filter_map(|p| match &p.value {
                ParamValue::Text(t) => Some(t.clone()),
                ParamValue::Integer(_) => None,
            }))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Sends a report and evaluates the task's rules on it.
fn report(ctx: &TaskContext, samples: Vec<Sample>) {
    let report = MetricsReport {
        task_number: ctx.task_number,
        time_ms: ctx.reporter.report_time(),
        samples,
    };
    if log_reports() {
        log::event(
            Level::Info,
            "REPORT",
            format_args!("{} {}", ctx.task_id, report.time_ms),
        );
    }
    let evaluation = {
        let mut rules = ctx.rules.lock().unwrap_or_else(|e| e.into_inner());
        rules.evaluate(&SampleInput::new(&ctx.agent, &ctx.task_id, &report))
    };
    ctx.reporter.report(report);
    for e in &evaluation.errors {
        log::event(Level::Warn, "RULE", format_args!("{e}"));
    }
    for raised in evaluation.raised {
        raise_rule_alert(ctx, &raised);
    }
    for resolved in evaluation.resolved {
        log::event(
            Level::Good,
            "RESOLVED",
            format_args!(
                "{} {} ({})",
                resolved.alert.kind.name(),
                resolved.alert.message,
                resolved.alert.rule
            ),
        );
        let key = (
            resolved.alert.rule.clone(),
            resolved.alert.kind,
            resolved.alert.subject.clone(),
        );
        let original = ctx
            .firing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        if let Some(original) = original {
            let mut alert = resolved.alert.to_alert(random_id());
            alert.resolves = original;
            alert.time_ms = resolved.time_ms;
            alert.message = resolution_message(&resolved.alert);
            ctx.reporter.raise(alert);
        }
    }
}

/// The message of a resolution: what is back to normal, and what had fired (`resolved: CPU
/// back within its threshold of 90 (it fired with: CPU usage 99.0% is above 90%)`).
fn resolution_message(alert: &RaisedAlert) -> String {
    let threshold = if alert.threshold.is_finite() {
        format!(" of {}", alert.threshold)
    } else {
        String::new()
    };
    format!(
        "resolved: {} back within its threshold{threshold} (it fired with: {})",
        alert.kind.name(),
        alert.message
    )
}

fn raise_rule_alert(ctx: &TaskContext, raised: &RaisedAlert) {
    let alert = raised.to_alert(random_id());
    ctx.firing.lock().unwrap_or_else(|e| e.into_inner()).insert(
        (raised.rule.clone(), raised.kind, raised.subject.clone()),
        alert.alert_id,
    );
    log::event(
        if raised.severity == Severity::Critical {
            Level::Bad
        } else {
            Level::Warn
        },
        "ALERT",
        format_args!(
            "{} {}: {} (rule {}, alert {:016x})",
            ctx.task_id,
            raised.kind.name(),
            raised.message,
            raised.rule,
            alert.alert_id
        ),
    );
    ctx.reporter.raise(alert);
}

fn probe_alert(ctx: &TaskContext, e: &ProbeError, source: &str) -> Alert {
    error_alert(
        &ctx.agent,
        &ctx.task_id,
        e.alert_type(),
        source,
        format!("{source}: {e}"),
    )
}

fn error_alert(agent: &str, task: &str, kind: AlertType, source: &str, message: String) -> Alert {
    Alert {
        alert_id: random_id(),
        resolves: 0,
        agent: agent.to_string(),
        task: task.to_string(),
        alert_type: kind,
        severity: Severity::Warning,
        value: 0.0,
        threshold: 0.0,
        time_ms: log::now_ms(),
        rule: format!("probe:{source}"),
        message,
        subject: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::next_slot;

    #[test]
    fn slots_start_at_their_offset_in_every_period() {
        // A 20 s period, slot at +6 s: 6, 26, 46 s...
        assert_eq!(next_slot(0, 6000, 20_000), 6000);
        assert_eq!(next_slot(6000, 6000, 20_000), 6000);
        assert_eq!(next_slot(6001, 6000, 20_000), 26_000);
        assert_eq!(next_slot(1_764_236_401_234, 0, 30_000), 1_764_236_430_000);
        assert_eq!(
            next_slot(1_764_236_401_234, 11_000, 30_000),
            1_764_236_411_000
        );
    }
}
