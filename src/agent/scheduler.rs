//! Runs an agent's tasks on schedule: one worker per work item, each measuring every
//! `frequency` seconds, reporting the measurement over NetTask and evaluating the task's rules
//! on it. iperf3 clients run one at a time on an agent (as in the original design). A
//! measurement that fails raises an ERROR alert with the reason (once, until it succeeds again);
//! one that cannot finish within its task's frequency raises TIMEOUT. A task received again with
//! the same number replaces the running one.

use super::Reporter;
use crate::log::{self, Level};
use crate::probes::{self, Destination, ProbeError, SystemSampler};
use crate::rules::{RaisedAlert, RuleSet, SampleInput};
use crate::wire::{Alert, AlertType, MetricsReport, Sample, Severity, TaskAssignment, WorkItem};
use smol::lock::Mutex as AsyncMutex;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

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
                subject,
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
}

/// The tasks an agent runs.
pub struct Scheduler {
    agent: String,
    reporter: Reporter,
    running: HashMap<u32, Running>,
    iperf_lock: Arc<AsyncMutex<()>>,
}

impl Scheduler {
    pub fn new(agent: &str, reporter: Reporter) -> Self {
        Scheduler {
            agent: agent.to_string(),
            reporter,
            running: HashMap::new(),
            iperf_lock: Arc::new(AsyncMutex::new(())),
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
        });
        let workers = assignment
            .items
            .iter()
            .cloned()
            .map(|item| smol::spawn(work(context.clone(), item, self.iperf_lock.clone())))
            .collect();
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

    /// Stops a task.
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

/// One worker: measures, reports and evaluates rules every `frequency` seconds.
async fn work(ctx: Arc<TaskContext>, item: WorkItem, iperf_lock: Arc<AsyncMutex<()>>) {
    let frequency = Duration::from_secs(item.frequency_s().max(1).into());
    let mut sampler = match &item {
        WorkItem::MetricsGathering { .. } => match SystemSampler::new(Instant::now()) {
            Ok(s) => Some(s),
            Err(e) => {
                ctx.reporter.raise(probe_alert(&ctx, &e, "system"));
                return;
            }
        },
        _ => None,
    };
    // Metrics are measured over an interval: the first sample comes one interval after start.
    // An iperf client waits a moment so that its server (another agent) is listening.
    let first_delay = match &item {
        WorkItem::MetricsGathering { .. } => frequency.min(Duration::from_secs(1)),
        WorkItem::IperfClient { .. } => Duration::from_secs(2),
        _ => Duration::ZERO,
    };
    async_io::Timer::after(first_delay).await;
    let mut last_error: Option<String> = None;
    // Echo requests and replies of this worker so far: ping samples carry counters.
    let mut ping_totals = (0u64, 0u64);
    let mut next = Instant::now();
    loop {
        let started = Instant::now();
        let outcome = measure(&item, frequency, sampler.as_mut(), &iperf_lock).await;
        let source = source_name(&item);
        match outcome {
            Ok((mut samples, errors)) => {
                for sample in &mut samples {
                    if let Sample::Ping { sent, received, .. } = sample {
                        ping_totals.0 += *sent;
                        ping_totals.1 += *received;
                        (*sent, *received) = ping_totals;
                    }
                }
                for e in &errors {
                    let text = e.to_string();
                    if last_error.as_deref() != Some(&text) {
                        ctx.reporter.raise(probe_alert(&ctx, e, &source));
                        last_error = Some(text);
                    }
                }
                if errors.is_empty() {
                    last_error = None;
                }
                if !samples.is_empty() {
                    report(&ctx, samples);
                }
            }
            Err(e) => {
                let text = e.to_string();
                log::event(
                    Level::Warn,
                    "PROBE",
                    format_args!("{} {source}: {text}", ctx.task_id),
                );
                if last_error.as_deref() != Some(&text) {
                    ctx.reporter.raise(probe_alert(&ctx, &e, &source));
                    last_error = Some(text);
                }
            }
        }
        next += frequency;
        let now = Instant::now();
        if next < now {
            // The run took longer than the frequency: skip the missed slots.
            let behind = now.duration_since(started);
            log::event(
                Level::Warn,
                "SLOW",
                format_args!(
                    "{} {source} took {:.1} s",
                    ctx.task_id,
                    behind.as_secs_f64()
                ),
            );
            next = now;
        }
        async_io::Timer::at(next).await;
    }
}

/// Runs one measurement within the frequency; a timeout becomes a TIMEOUT error.
async fn measure(
    item: &WorkItem,
    frequency: Duration,
    sampler: Option<&mut SystemSampler>,
    iperf_lock: &AsyncMutex<()>,
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
            ..
        } => {
            let destination = Destination::new(destination)
                .map_err(|e| ProbeError::InvalidArgument(e.to_string()))?;
            let deadline = probes::ping::suggested_deadline(*packet_count).min(frequency);
            let sample = probes::run_ping(&destination, *packet_count, deadline).await?;
            Ok((vec![sample], Vec::new()))
        }
        WorkItem::IperfClient {
            server_address,
            port,
            duration_s,
            transport,
            ..
        } => {
            let destination = Destination::new(server_address)
                .map_err(|e| ProbeError::InvalidArgument(e.to_string()))?;
            let started = Instant::now();
            let _exclusive = iperf_lock.lock().await;
            let left = frequency.saturating_sub(started.elapsed());
            let deadline = probes::iperf::suggested_deadline(*duration_s).min(left);
            let sample =
                probes::run_iperf_client(&destination, *port, *duration_s, *transport, deadline)
                    .await?;
            Ok((vec![sample], Vec::new()))
        }
        WorkItem::IperfServer {
            port, duration_s, ..
        } => {
            // Listen for one test per period; no client in a period is not an error.
            let deadline = frequency + Duration::from_secs((*duration_s).into());
            match probes::run_iperf_server(*port, deadline).await? {
                Some(sample) => Ok((vec![sample], Vec::new())),
                None => Ok((Vec::new(), Vec::new())),
            }
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
    }
}

/// Whether the environment variable `NMS_LOG_REPORTS` (set, not empty, not `0`) asks for one
/// `REPORT <task> <time_ms>` line per metrics report and one `RAISED <alert_id> ...` line per
/// alert, so that what an agent produced can be compared with what the server stored.
pub fn log_reports() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        std::env::var_os("NMS_LOG_REPORTS").is_some_and(|v| !v.is_empty() && v != "0")
    })
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

/// A random 64-bit id (alerts are stored once per id).
pub fn random_id() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return fastrand::u64(..);
    }
    u64::from_be_bytes(b)
}
