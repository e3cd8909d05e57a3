//! Runs an agent's tasks on schedule: one worker per work item, each measuring every
//! `frequency` seconds, reporting the measurement over NetTask and evaluating the task's rules
//! on it. An iperf3 client starts in the time slot the server planned for it, on the server's
//! clock, and iperf3 clients run one at a time on an agent (as in the original design); an
//! iperf3 server item shares the agent's one listener of its port with every other task that
//! needs it. A measurement that fails raises one ERROR alert per cause (TIMEOUT when it could
//! not finish within its frequency), firing while the cause persists and resolved when the
//! measurement works again. A task received again with the same number replaces the running
//! one; a task that stops (replaced, cancelled) stops its programs and resolves its alerts.

mod outcome;
mod worker;

use super::reporter::Reporter;
use crate::alertflow::random_id;
use crate::log::{self, Level};
use crate::probes::Tools;
use crate::probes::iperf::IperfListener;
use crate::rules::RuleSet;
use crate::wire::{Alert, AlertType, Severity, TaskAssignment, WorkItem};
use outcome::error_alert;
use smol::lock::Mutex as AsyncMutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use worker::work;

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
        let rules = self.rules_of(&assignment);
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
        self.retire_renumbered(&assignment);
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
        log_installed(&assignment, replaced.is_some());
    }

    /// The task's rules, compiled; rules that do not compile are logged and raise an ERROR
    /// alert, and the task runs without rules.
    fn rules_of(&self, assignment: &TaskAssignment) -> RuleSet {
        match RuleSet::for_assignment(assignment) {
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
        }
    }

    /// Stops the copies of this task that run under another number.
    fn retire_renumbered(&mut self, assignment: &TaskAssignment) {
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

/// The TASK (or REPLACED) line: the task and what it runs.
fn log_installed(assignment: &TaskAssignment, replaced: bool) {
    let what: Vec<String> = assignment.items.iter().map(WorkItem::describe).collect();
    log::event(
        Level::Info,
        if replaced { "REPLACED" } else { "TASK" },
        format_args!(
            "{} (#{}): {}",
            assignment.task_id,
            assignment.task_number,
            what.join(", ")
        ),
    );
}

#[cfg(test)]
mod tests;
