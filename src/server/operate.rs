//! What an operator does to a running server, through the HTTP API and `nms` subcommands (and
//! SIGHUP): forget an agent, remove a task, acknowledge an alert, set and expire silences,
//! reload the task files and settings. Every change is saved before it is answered.

use super::ack::{self, Acknowledgement};
use super::dispatch::{Dispatch, LoadError};
use super::firing::FiringAlert;
use super::silence::{Silence, SilenceError, SilenceRequest};
use super::{ServerOptions, Shared, State, TaskOutcome, server_alert};
use crate::log::{self, Level};
use crate::store::AlertRecord;
use crate::wire::{Cancel, Message, Severity};
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Where a task removed came from and who was told to stop it.
#[derive(Debug, Clone, Serialize)]
pub struct RemovedTask {
    pub task_id: String,
    pub number: u32,
    /// Agents sent CANCEL.
    pub cancelled: Vec<String>,
    /// Alerts of the task that were firing, resolved by the removal.
    pub resolved_alerts: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("no task has the id {0:?}")]
    NotFound(String),
    #[error(
        "task {task:?} comes from the task file {origin}, which is loaded at every start: \
         remove it from the file, then reload the server (SIGHUP, `systemctl reload nms-server`)"
    )]
    FromFile { task: String, origin: String },
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// Sends CANCEL of task `number` to every agent that was sent it; returns their names.
fn cancel_everywhere(shared: &Arc<Shared>, state: &mut State, number: u32) -> Vec<String> {
    let names: Vec<String> = state
        .dispatch
        .assigned
        .iter_mut()
        .filter_map(|(name, numbers)| numbers.remove(&number).then(|| name.clone()))
        .collect();
    for name in &names {
        if let Some(agent_id) = state.registry.by_name(name).map(|r| r.id) {
            send_cancel(shared, agent_id, number);
        }
    }
    names
}

/// After the iperf plan changed (a task installed or removed): sends the devices whose iperf
/// slots moved their task again, unless it was just sent (`sent_now`); logs what no longer fits.
fn send_moved_slots(shared: &Arc<Shared>, state: &mut State, sent_now: &[u32]) {
    let changes = state.dispatch.take_plan_changes();
    super::report_unscheduled(&changes.unplaced);
    for (number, device) in changes.moved {
        let Some(loaded) = state.dispatch.by_number(number).cloned() else {
            continue;
        };
        let assigned = state
            .dispatch
            .assigned
            .get(&device)
            .is_some_and(|n| n.contains(&number));
        if !sent_now.contains(&number) && assigned {
            super::dispatch_device(shared, state, &loaded, &device);
        }
    }
}

/// Sends an agent CANCEL of task `number`.
pub(super) fn send_cancel(shared: &Shared, agent_id: u32, number: u32) {
    let message = Message::Cancel(Cancel {
        task_number: number,
    });
    shared.send_to(agent_id, message, None);
}

/// Removes a task posted over the HTTP API: its agents are sent CANCEL, its saved copy is
/// deleted (so it is not installed again at the next start), and its alerts still firing are
/// resolved. A task from a `--config` file is refused: the file would bring it back.
pub fn remove_task(shared: &Arc<Shared>, task_id: &str) -> Result<RemovedTask, RemoveError> {
    let mut state = shared.state();
    let Some(loaded) = state.dispatch.get(task_id).cloned() else {
        return Err(RemoveError::NotFound(task_id.to_string()));
    };
    if loaded.origin != super::HTTP_ORIGIN {
        return Err(RemoveError::FromFile {
            task: task_id.to_string(),
            origin: loaded.origin.clone(),
        });
    }
    state.dispatch.forget_upload(task_id)?;
    state.dispatch.remove(task_id);
    let cancelled = cancel_everywhere(shared, &mut state, loaded.number);
    send_moved_slots(shared, &mut state, &[]);
    drop(state);
    let resolved = resolve_firing(
        shared,
        |r| r.task == task_id,
        &format!("resolved: task {task_id} was removed"),
    );
    log::event(
        Level::Warn,
        "REMOVED",
        format_args!(
            "task {task_id} (#{}): cancelled on {} agent(s), {resolved} firing alert(s) resolved",
            loaded.number,
            cancelled.len()
        ),
    );
    Ok(RemovedTask {
        task_id: task_id.to_string(),
        number: loaded.number,
        cancelled,
        resolved_alerts: resolved,
    })
}

/// Stores a resolution for every firing alert `which` selects (the server's own word: an
/// agent forgotten, a task removed); returns how many.
pub fn resolve_firing(
    shared: &Arc<Shared>,
    which: impl Fn(&AlertRecord) -> bool,
    message: &str,
) -> usize {
    let firing: Vec<FiringAlert> = shared.firing().matching(which);
    if firing.is_empty() {
        return 0;
    }
    let now = log::now_ms();
    let resolutions: Vec<AlertRecord> = firing
        .iter()
        .map(|a| {
            let mut alert = server_alert(
                &a.record.agent,
                a.record.kind,
                Severity::Info,
                0.0,
                0.0,
                message.to_string(),
            );
            alert.task = a.record.task.clone();
            alert.rule = a.record.rule.clone();
            alert.subject = a.record.subject.clone();
            alert.resolves = a.record.alert_id;
            AlertRecord::from_alert(&alert, now)
        })
        .collect();
    let count = resolutions.len();
    shared.store_alerts_logged(resolutions);
    count
}

/// Acknowledges a stored alert: who, a comment, now. `Ok(None)`: no such alert.
pub fn acknowledge(
    shared: &Arc<Shared>,
    alert_id: u64,
    by: &str,
    comment: &str,
) -> Result<Option<(AlertRecord, Acknowledgement)>, ack::AckError> {
    let by = ack::checked_text("by", by)?;
    let comment = ack::checked_text("comment", comment)?;
    if by.trim().is_empty() {
        return Err(ack::AckError::Invalid(
            "by: say who acknowledges the alert".into(),
        ));
    }
    let Some(record) = find_alert(shared, alert_id) else {
        return Ok(None);
    };
    let now = log::now_ms();
    let retention = shared.store.options().retention.alerts.as_millis() as u64;
    let acknowledgement = Acknowledgement {
        by,
        at_ms: now,
        comment,
        alert_time_ms: record.time_ms,
    };
    shared.acks().acknowledge(
        alert_id,
        acknowledgement.clone(),
        now.saturating_sub(retention),
    )?;
    log::event(
        Level::Info,
        "ACKED",
        format_args!(
            "alert {alert_id:016x} ({} {} on {}) by {}: {}",
            record.kind.name(),
            record.task,
            record.agent,
            acknowledgement.by,
            acknowledgement.comment
        ),
    );
    Ok(Some((record, acknowledgement)))
}

/// The stored alert with this id: firing ones from memory, others from the store (searched
/// around the time the id's record would have; the firing set covers what matters most).
fn find_alert(shared: &Arc<Shared>, alert_id: u64) -> Option<AlertRecord> {
    if let Some(a) = shared.firing().get(alert_id) {
        return Some(a.record.clone());
    }
    let mut to_ms = None;
    // Newest first, a page at a time, at most a million records.
    for _ in 0..100 {
        let page = shared
            .store
            .alerts(&crate::store::AlertQuery {
                to_ms,
                limit: 10_000,
                ..Default::default()
            })
            .ok()?;
        if let Some(r) = page.iter().find(|r| r.alert_id == alert_id) {
            return Some(r.clone());
        }
        let oldest = page.first()?.time_ms;
        if page.len() < 10_000 || oldest == 0 {
            return None;
        }
        to_ms = Some(oldest);
    }
    None
}

/// Sets a silence; the forwarders and the page apply it at once.
pub fn add_silence(
    shared: &Arc<Shared>,
    request: &SilenceRequest,
) -> Result<Silence, SilenceError> {
    let now = log::now_ms();
    let silence = request.build(now)?;
    let list = {
        let mut silences = shared.silences();
        silences.add(silence.clone(), now)?;
        silences.all()
    };
    log::event(
        Level::Info,
        "SILENCED",
        format_args!(
            "{} from {} to {} by {}: {} (silence {})",
            silence.matchers.describe(),
            log::rfc3339(silence.starts_ms),
            log::rfc3339(silence.ends_ms),
            if silence.created_by.is_empty() {
                "?"
            } else {
                &silence.created_by
            },
            silence.comment,
            silence.id
        ),
    );
    shared.forward(super::alertmanager::Event::Silences(list));
    Ok(silence)
}

/// Ends a silence now. `Ok(None)`: no such silence.
pub fn expire_silence(shared: &Arc<Shared>, id: &str) -> Result<Option<Silence>, SilenceError> {
    let now = log::now_ms();
    let (expired, list) = {
        let mut silences = shared.silences();
        let expired = silences.expire(id, now)?;
        (expired, silences.all())
    };
    if let Some(s) = &expired {
        log::event(
            Level::Info,
            "UNSILENCED",
            format_args!("silence {} ({}) expired", s.id, s.matchers.describe()),
        );
        shared.forward(super::alertmanager::Event::Silences(list));
    }
    Ok(expired)
}

/// SIGHUP: reads the task files again (installing what changed, removing tasks whose file no
/// longer has them, leaving tasks posted over the API alone) and takes the new API token.
/// Settings that need a restart (addresses, ports, data directory, keys, store) are named in
/// the log when they changed.
pub fn reload(shared: &Arc<Shared>, options: &ServerOptions) {
    log::event(
        Level::Info,
        "RELOAD",
        "reading the task files and settings again",
    );
    *shared.api.lock().unwrap_or_else(|e| e.into_inner()) = options.api.clone();
    let needs_restart = needing_restart(&shared.options, options);
    if !needs_restart.is_empty() {
        log::event(
            Level::Warn,
            "RELOAD",
            format_args!(
                "changed settings that take effect at the next start: {}",
                needs_restart.join(", ")
            ),
        );
    }
    let Some(read) = read_task_files(options) else {
        return;
    };
    match apply_task_files(shared, read) {
        Ok(outcomes) => log::event(
            Level::Good,
            "RELOAD",
            format_args!(
                "task files reloaded: {} installed or changed, {} removed",
                outcomes.0.len(),
                outcomes.1.len()
            ),
        ),
        Err(e) => log::event(
            Level::Bad,
            "RELOAD",
            format_args!("the task files were not fully reloaded: {e}"),
        ),
    }
}

/// The settings that differ between `old` and `options` and take effect only at the next start.
fn needing_restart(old: &ServerOptions, options: &ServerOptions) -> Vec<&'static str> {
    let mut needs_restart = Vec::new();
    if (old.listen, old.nettask_port, old.alertflow_port, old.http)
        != (
            options.listen,
            options.nettask_port,
            options.alertflow_port,
            options.http,
        )
    {
        needs_restart.push("addresses and ports");
    }
    if old.data_dir != options.data_dir {
        needs_restart.push("data directory");
    }
    if old.alertmanagers != options.alertmanagers || old.external_url != options.external_url {
        needs_restart.push("Alertmanagers");
    }
    let destinations = |o: &super::ServerOptions| {
        o.remote_writes
            .iter()
            .map(|d| (d.name.clone(), d.target.clone(), d.max_samples_per_send))
            .collect::<Vec<_>>()
    };
    if destinations(old) != destinations(options) {
        needs_restart.push("remote-write receivers");
    }
    if old.store.retention != options.store.retention {
        needs_restart.push("retention");
    }
    if old.local_agent != options.local_agent {
        needs_restart.push("local agent");
    }
    needs_restart
}

/// Every task file read and checked, or `None` (logged: the tasks stay as they are) when one
/// cannot be.
fn read_task_files(
    options: &ServerOptions,
) -> Option<Vec<(String, Vec<super::dispatch::CheckedTask>)>> {
    let mut read = Vec::new();
    for path in &options.task_files {
        match Dispatch::read_file(path) {
            Ok(tasks) => read.push((path.display().to_string(), tasks)),
            Err(e) => {
                log::event(
                    Level::Bad,
                    "RELOAD",
                    format_args!("the task files were not reloaded (tasks unchanged): {e}"),
                );
                return None;
            }
        }
    }
    Some(read)
}

/// Installs the tasks read from the task files (those that changed), and removes tasks that
/// came from a file but are in none now. Returns (installed, removed).
fn apply_task_files(
    shared: &Arc<Shared>,
    files: Vec<(String, Vec<super::dispatch::CheckedTask>)>,
) -> Result<(Vec<TaskOutcome>, Vec<String>), LoadError> {
    let mut installed = Vec::new();
    let mut in_files = BTreeSet::new();
    let mut state = shared.state();
    for (origin, tasks) in files {
        for (task, rules) in tasks {
            in_files.insert(task.task_id.clone());
            match state.dispatch.get(&task.task_id) {
                // Posted over the API: the upload wins, as at start.
                Some(current) if current.origin == super::HTTP_ORIGIN => continue,
                Some(current)
                    if current.task == task
                        && current.rules == rules
                        && current.origin == origin =>
                {
                    continue;
                }
                _ => {}
            }
            let number = state.dispatch.install(task, rules, &origin)?;
            installed.push(super::dispatch_installed(shared, &mut state, number));
        }
    }
    let stale: Vec<(String, u32)> = state
        .dispatch
        .tasks()
        .filter(|t| t.origin != super::HTTP_ORIGIN && !in_files.contains(&t.task.task_id))
        .map(|t| (t.task.task_id.clone(), t.number))
        .collect();
    let mut removed = Vec::new();
    for (task_id, number) in &stale {
        let (task_id, number) = (task_id.clone(), *number);
        state.dispatch.remove(&task_id);
        cancel_everywhere(shared, &mut state, number);
        log::event(
            Level::Warn,
            "REMOVED",
            format_args!("task {task_id} (#{number}) is in no task file any more"),
        );
        removed.push(task_id);
    }
    let sent_now: Vec<u32> = installed.iter().map(|o| o.number).collect();
    send_moved_slots(shared, &mut state, &sent_now);
    drop(state);
    for task_id in &removed {
        resolve_firing(
            shared,
            |r| &r.task == task_id,
            &format!("resolved: task {task_id} was removed"),
        );
    }
    Ok((installed, removed))
}
