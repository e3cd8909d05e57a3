//! The end-to-end delivery check: what an agent logged that it produced (under
//! `NMS_LOG_REPORTS=1`) against what the server's HTTP API says it stored.
//!
//! A snapshot of the agent's log taken when the faults end says what must be stored; the log
//! read again after the stored records were fetched says what may be stored. Nothing missing,
//! nothing doubled, nothing stored that the agent did not produce (a corrupted datagram that
//! got through would show up there), every value plausible.

use super::agents::AgentLog;
use crate::support::process::Process;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A GET of the server's HTTP API: path (with query) to JSON.
pub type Api<'a> = &'a dyn Fn(&str) -> Result<Value, String>;

/// Longest allowed step between two stored reports of a 1-second series.
pub const MAX_GAP_MS: u64 = 5_000;

/// The outcome of checking one agent.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    pub agent: String,
    /// Reports the agent had produced when the snapshot was taken.
    pub produced: usize,
    /// Reports of the task stored by the server.
    pub stored: usize,
    pub alerts_raised: usize,
    pub alerts_stored: usize,
    pub problems: Vec<String>,
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} reports produced by the snapshot, {} stored; {} alerts raised, {} stored",
            self.agent, self.produced, self.stored, self.alerts_raised, self.alerts_stored
        )?;
        for p in &self.problems {
            write!(f, "\n    {p}")?;
        }
        Ok(())
    }
}

fn number(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// Checks one agent once. `snapshot` is what the agent had logged when the faults ended.
pub fn check_agent(
    api: Api<'_>,
    agent: &Process,
    task: &str,
    snapshot: &AgentLog,
    started_ms: u64,
) -> Delivery {
    let name = agent.name.as_str();
    let mut d = Delivery {
        agent: name.to_string(),
        ..Delivery::default()
    };
    let Some(metrics) = fetch_list(api, "/api/metrics", name, &mut d) else {
        return d;
    };
    let Some(alerts) = fetch_list(api, "/api/alerts", name, &mut d) else {
        return d;
    };
    // Read after the fetch: anything stored must be in here.
    let latest = AgentLog::parse(&agent.log_text());
    let now_ms = nms::log::now_ms();

    let stored = check_stored_reports(&mut d, &metrics, name, task, started_ms, now_ms);
    check_reports_against_log(&mut d, &stored, task, snapshot, &latest);
    check_series_gaps(&mut d, &stored);
    check_alerts(&mut d, &alerts, snapshot, &latest);
    d
}

/// All of the agent's records at `path` (`/api/metrics` or `/api/alerts`), or `None` (and a
/// problem) if the API did not answer with a list.
fn fetch_list(api: Api<'_>, path: &str, name: &str, d: &mut Delivery) -> Option<Vec<Value>> {
    match api(&format!("{path}?agent={name}&limit=100000")) {
        Ok(Value::Array(list)) => Some(list),
        other => {
            d.problems.push(format!("{path}: {other:?}"));
            None
        }
    }
}

/// Checks each stored record of `task` (its agent, its time within the run, plausible values),
/// that no other task's records were stored, and that no report was stored twice; returns how
/// many records were stored at each report time.
fn check_stored_reports(
    d: &mut Delivery,
    metrics: &[Value],
    name: &str,
    task: &str,
    started_ms: u64,
    now_ms: u64,
) -> BTreeMap<u64, usize> {
    let mut stored: BTreeMap<u64, usize> = BTreeMap::new();
    for m in metrics
        .iter()
        .filter(|m| m.get("task").and_then(Value::as_str) == Some(task))
    {
        if m.get("agent").and_then(Value::as_str) != Some(name) {
            d.problems.push(format!("a record of another agent: {m}"));
        }
        let Some(time) = m.get("time_ms").and_then(Value::as_u64) else {
            d.problems.push(format!("a record without time_ms: {m}"));
            continue;
        };
        *stored.entry(time).or_default() += 1;
        if time + 1_000 < started_ms || time > now_ms + 1_000 {
            d.problems.push(format!(
                "time_ms {time} outside the run ({started_ms}..{now_ms})"
            ));
        }
        for key in ["cpu_percent", "ram_percent"] {
            match number(m, key) {
                Some(v) if (0.0..=100.0).contains(&v) => {}
                other => d
                    .problems
                    .push(format!("{key} = {other:?} at {time}: implausible")),
            }
        }
    }
    let others = metrics.len()
        - metrics
            .iter()
            .filter(|m| m.get("task").and_then(Value::as_str) == Some(task))
            .count();
    if others > 0 {
        d.problems.push(format!(
            "{others} stored record(s) of a task other than {task}"
        ));
    }
    d.stored = stored.len();
    for (time, n) in &stored {
        if *n > 1 {
            d.problems
                .push(format!("report at {time} stored {n} times"));
        }
    }
    stored
}

/// Nothing stored that the agent never produced (by the latest log), nothing missing that it
/// had produced by the snapshot.
fn check_reports_against_log(
    d: &mut Delivery,
    stored: &BTreeMap<u64, usize>,
    task: &str,
    snapshot: &AgentLog,
    latest: &AgentLog,
) {
    let produced_now: BTreeSet<u64> = latest.report_times(task).into_iter().collect();
    let produced: BTreeSet<u64> = snapshot.report_times(task).into_iter().collect();
    d.produced = produced.len();
    let unexpected: Vec<&u64> = stored
        .keys()
        .filter(|t| !produced_now.contains(t))
        .collect();
    if !unexpected.is_empty() {
        d.problems.push(format!(
            "{} stored report(s) the agent never produced: {unexpected:?}",
            unexpected.len()
        ));
    }
    let missing: Vec<&u64> = produced
        .iter()
        .filter(|t| !stored.contains_key(t))
        .collect();
    if !missing.is_empty() {
        d.problems.push(format!(
            "{} of {} produced report(s) not stored: {missing:?}",
            missing.len(),
            produced.len()
        ));
    }
}

/// No step between two stored reports longer than [`MAX_GAP_MS`].
fn check_series_gaps(d: &mut Delivery, stored: &BTreeMap<u64, usize>) {
    let times: Vec<u64> = stored.keys().copied().collect();
    if let Some(gap) = times.windows(2).map(|w| w[1] - w[0]).max()
        && gap > MAX_GAP_MS
    {
        d.problems
            .push(format!("a gap of {gap} ms in the stored series"));
    }
}

/// The agent's own alerts (the server's liveness alerts are not the agent's): each with a
/// proper id, stored once, none the agent never raised, none lost of those it had raised by
/// the snapshot.
fn check_alerts(d: &mut Delivery, alerts: &[Value], snapshot: &AgentLog, latest: &AgentLog) {
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for a in alerts {
        if a.get("rule").and_then(Value::as_str) == Some("liveness") {
            continue;
        }
        match a.get("alert_id").and_then(Value::as_str) {
            Some(id) if id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                *ids.entry(id.to_string()).or_default() += 1
            }
            _ => d
                .problems
                .push(format!("an alert without a proper alert_id: {a}")),
        }
    }
    d.alerts_stored = ids.len();
    for (id, n) in &ids {
        if *n > 1 {
            d.problems.push(format!("alert {id} stored {n} times"));
        }
    }
    let raised_now: BTreeSet<&String> = latest.raised.iter().collect();
    let raised: BTreeSet<&String> = snapshot.raised.iter().collect();
    d.alerts_raised = raised.len();
    let strange: Vec<&String> = ids.keys().filter(|id| !raised_now.contains(id)).collect();
    if !strange.is_empty() {
        d.problems.push(format!(
            "stored alert(s) the agent never raised: {strange:?}"
        ));
    }
    let lost: Vec<&&String> = raised.iter().filter(|id| !ids.contains_key(**id)).collect();
    if !lost.is_empty() {
        d.problems.push(format!(
            "{} of {} raised alert(s) not stored: {lost:?}",
            lost.len(),
            raised.len()
        ));
    }
}

/// Checks every agent until all pass or `limit` passes (what was in flight when the faults
/// ended gets that long to arrive); returns the last outcome of each.
pub fn settle(
    api: Api<'_>,
    agents: &[&Process],
    task: &str,
    snapshots: &[AgentLog],
    started_ms: u64,
    limit: Duration,
) -> Vec<Delivery> {
    let mut last = Vec::new();
    crate::support::wait::wait_until(limit, || {
        last = agents
            .iter()
            .zip(snapshots)
            .map(|(a, s)| check_agent(api, a, task, s, started_ms))
            .collect();
        last.iter().all(|d| d.problems.is_empty())
    });
    last
}
