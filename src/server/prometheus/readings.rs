//! The families of what agents measure: `nms_agent_up` and its last-seen time per agent, and
//! the latest reading of every exported field of the schema, per series, while it is current.

use super::{Exposition, exported, reading_labels};
use crate::schema::Rollup;
use crate::server::dispatch::Dispatch;
use crate::server::registry::{AgentRecord, Status};
use crate::store::Store;
use std::collections::{BTreeMap, HashSet};

/// `nms_agent_up` and `nms_agent_last_seen_timestamp_seconds`, one series per agent.
pub(super) fn agent_families(x: &mut Exposition, agents: &[&AgentRecord]) {
    x.family(
        "nms_agent_up",
        "gauge",
        "Whether the agent is reporting (1) or not (0).",
        agents
            .iter()
            .map(|a| {
                let up = if a.status == Status::Up { 1.0 } else { 0.0 };
                (vec![("agent", a.name.as_str())], up)
            })
            .collect(),
    );
    x.family(
        "nms_agent_last_seen_timestamp_seconds",
        "gauge",
        "When the agent was last heard from (Unix time).",
        agents
            .iter()
            .map(|a| {
                (
                    vec![("agent", a.name.as_str())],
                    a.last_seen_ms as f64 / 1000.0,
                )
            })
            .collect(),
    );
}

/// The latest values of the agents' reports: one family per field of the schema, and when
/// each task last reported.
pub(super) fn report_families(
    x: &mut Exposition,
    store: &Store,
    dispatch: &Dispatch,
    agents: &[&AgentRecord],
) {
    // Only what is measured now: the agent is up (a down or forgotten agent's series go at
    // once, as an exporter's do when its target is gone), and its tasks still measure it
    // (after a task changes its destination, the old destination's values are not current).
    let up: HashSet<&str> = agents
        .iter()
        .filter(|a| a.status == Status::Up)
        .map(|a| a.name.as_str())
        .collect();
    let mut latest = store.latest();
    latest.retain(|r| up.contains(r.agent.as_str()) && is_current(dispatch, r));
    // Newest first, so that a host measured by two tasks shows its newest value once.
    latest.sort_by_key(|r| std::cmp::Reverse(r.time_ms));
    // One family per field of the schema, in base units. The rates of interfaces are left
    // to PromQL (`rate()` of the counters); CPU, RAM and interfaces are the host's, so they
    // carry no `task` label.
    for def in &crate::schema::FIELDS {
        if !exported(def) {
            continue;
        }
        let mut samples = Vec::new();
        for r in &latest {
            for reading in r.readings.iter().filter(|x| x.field == def.field) {
                let labels = reading_labels(
                    def,
                    &r.agent,
                    &r.task,
                    r.target.as_deref(),
                    reading.instance.as_deref(),
                );
                samples.push((labels, reading.value / def.prometheus_divisor));
            }
        }
        samples.sort_by(|a, b| a.0.cmp(&b.0));
        let kind = match def.rollup {
            Rollup::Counter => "counter",
            Rollup::Gauge | Rollup::Rate => "gauge",
        };
        x.family(def.prometheus, kind, def.help, samples);
    }
    let mut last_report: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for r in &latest {
        let t = last_report.entry((&r.agent, &r.task)).or_default();
        *t = (*t).max(r.time_ms);
    }
    x.family(
        "nms_last_report_timestamp_seconds",
        "gauge",
        "When the newest stored metrics report of the agent's task was measured (Unix time).",
        last_report
            .into_iter()
            .map(|((agent, task), ms)| (vec![("agent", agent), ("task", task)], ms as f64 / 1000.0))
            .collect(),
    );
}

/// Whether a stored record belongs to a task and target that are still measured: the task is
/// loaded, names the agent, and (for a ping or iperf record) still measures towards its target.
fn is_current(dispatch: &Dispatch, r: &crate::store::Report) -> bool {
    let Some(task) = dispatch.get(&r.task) else {
        return false;
    };
    let Some(target) = &r.target else {
        return task.task.device(&r.agent).is_some();
    };
    dispatch.is_target(task.number, &r.agent, target)
}
