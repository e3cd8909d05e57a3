//! Liveness: agents heard from come back up, agents silent too long go down (AGENT_DOWN,
//! unless a `--peer` serves them now), agents that never reported are forgotten.

use super::registry::Status;
use super::{Shared, State, operate, registry};
use crate::log::{self, Level};
use crate::store::AlertRecord;
use crate::wire::{Alert, AlertType, Severity};
use std::sync::Arc;
use std::time::Duration;

/// Records that an agent was heard from; a down agent comes back up, and its AGENT_UP alert
/// joins `alerts`, which the caller stores with one write.
pub(super) fn mark_heard(
    state: &mut State,
    agent_id: u32,
    now_ms: u64,
    alerts: &mut Vec<AlertRecord>,
) {
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
pub(super) fn forget_session(
    shared: &Arc<Shared>,
    state: &mut State,
    record: &registry::AgentRecord,
) {
    state.down_alerted.remove(&record.id);
    state.dispatch.assigned.remove(&record.name);
    let id = record.id;
    shared.end_session(id);
}

/// Forgets agents that never sent anything after registering and stayed silent for
/// `--forget-unreported-after` (a flood of spoofed registrations goes away by itself).
pub(super) fn forget_unreported(shared: &Arc<Shared>, state: &mut State, now_ms: u64) {
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

/// An agent found silent too long: its id, name, and how long it was silent.
type Silent = (u32, String, u64);

/// Marks agents down when they were silent for too long, and raises AGENT_DOWN.
pub(super) async fn liveness(shared: Arc<Shared>) {
    let limit_ms = (shared.options.heartbeat * shared.options.missed_heartbeats).as_millis() as u64;
    loop {
        async_io::Timer::after(Duration::from_millis(250)).await;
        let now_ms = log::now_ms();
        let candidates = {
            let mut state = shared.state();
            forget_unreported(&shared, &mut state, now_ms);
            silent_agents(&mut state, now_ms, limit_ms)
        };
        // Agents another server serves now are not down: the peers are asked (outside the
        // state lock) before an AGENT_DOWN is raised.
        let elsewhere = if candidates.is_empty() || shared.options.peers.is_empty() {
            std::collections::HashMap::new()
        } else {
            served_by_peers(&shared).await
        };
        let mut state = shared.state();
        let alerts = raise_down(&mut state, candidates, &elsewhere, now_ms, limit_ms);
        drop(state);
        shared.store_alerts_logged(alerts);
    }
}

/// Marks the agents silent past `limit_ms` down; returns those not alerted yet and not known
/// to be served elsewhere.
fn silent_agents(state: &mut State, now_ms: u64, limit_ms: u64) -> Vec<Silent> {
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
                newly_down.push((record.id, record.name.clone(), now_ms - record.last_seen_ms));
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
        .collect()
}

/// Raises AGENT_DOWN for each silent agent no peer serves; returns the alerts, stored by the
/// caller with one write for every agent found silent in this pass, however many.
fn raise_down(
    state: &mut State,
    candidates: Vec<Silent>,
    elsewhere: &std::collections::HashMap<String, String>,
    now_ms: u64,
    limit_ms: u64,
) -> Vec<AlertRecord> {
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
    alerts
}

/// How long a peer's word that it serves an agent holds before it is asked again.
pub(super) const PEER_ANSWER_HOLDS: Duration = Duration::from_secs(30);
/// How long a peer has to answer.
pub(super) const PEER_TIMEOUT: Duration = Duration::from_secs(2);

/// The agents the peers report up, with the peer that serves each. A peer that does not
/// answer serves nobody (then the agent is down as far as this server can tell).
pub(super) async fn served_by_peers(shared: &Shared) -> std::collections::HashMap<String, String> {
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
