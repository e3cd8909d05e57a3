//! The endpoint's events taken in: registrations answered, metrics reports turned into store
//! reports and stored batch by batch, their acknowledgements released once they are synced.

use super::{Shared, State, admit_registration, dispatch_agent, mark_heard, operate};
use crate::log::{self, Level};
use crate::nettask::Receipt;
use crate::nettask::ServerEvent;
use crate::store::{AlertRecord, Report, Stored};
use crate::wire::{Message, Registered};
use std::sync::Arc;

/// Reports on their way to the store, with the acknowledgements they hold.
pub(super) struct IngestJob {
    pub(super) reports: Vec<Report>,
    pub(super) receipts: Vec<Receipt>,
}

/// Stores a batch of reports (one log write and one sync) and then releases their
/// acknowledgements; a batch that could not be stored is released unkept, so the agents send
/// it again. Called by the event loop after it let go of the state lock.
pub(super) fn store_batch(shared: &Shared, job: IngestJob) {
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
        shared.release(receipts, kept);
    }
}

/// A refused report is logged at most once a minute (with how many there were).
pub(super) fn log_refusal(r: &Report, why: crate::store::Refusal) {
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

/// What handling a batch of events gathers for the writes after the state lock is let go.
#[derive(Default)]
struct Gathered {
    reports: Vec<Report>,
    receipts: Vec<Receipt>,
    alerts: Vec<AlertRecord>,
}

/// Handles a batch of endpoint events under the state lock; returns the metrics reports for
/// the store's writer.
pub(super) fn handle_events(shared: &Arc<Shared>, batch: Vec<ServerEvent>) -> Option<IngestJob> {
    let now_ms = log::now_ms();
    let mut gathered = Gathered::default();
    let mut state = shared.state();
    let (ids, saved) = admit_registrations(shared, &mut state, &batch, now_ms);
    let mut ids = ids.into_iter();
    for event in batch {
        match event {
            ServerEvent::Registration { from, registration } => {
                let id = match ids.next() {
                    Some(Some(id)) if saved => id,
                    Some(Some(_)) => {
                        shared.defer_registration(registration);
                        continue;
                    }
                    None | Some(None) => continue,
                };
                answer_registration(
                    shared,
                    &mut state,
                    (from, registration, id),
                    now_ms,
                    &mut gathered.alerts,
                );
            }
            ServerEvent::Message {
                agent_id,
                message,
                receipt,
                ..
            } => take_message(
                shared,
                &mut state,
                (agent_id, message, receipt),
                now_ms,
                &mut gathered,
            ),
            ServerEvent::Acknowledged { agent_id, .. } => {
                // An agent that acknowledged what was sent to it (its task, a cancel) is a real
                // one at the address it registered from: killed before its first report, it is
                // still reported down rather than forgotten as a spoofed registration.
                mark_heard(&mut state, agent_id, now_ms, &mut gathered.alerts);
                state.registry.mark_reported(agent_id);
            }
            other => log_event(&mut state, other, now_ms),
        }
    }
    drop(state);
    let Gathered {
        reports,
        receipts,
        alerts,
    } = gathered;
    shared.store_alerts_logged(alerts);
    if reports.is_empty() && receipts.is_empty() {
        return None;
    }
    Some(IngestJob { reports, receipts })
}

/// Registrations first: ids are assigned and made durable with one write for the whole
/// batch, before any of them is answered. Returns each registration's id (`None` when
/// refused), and whether the registry was saved.
fn admit_registrations(
    shared: &Arc<Shared>,
    state: &mut State,
    batch: &[ServerEvent],
    now_ms: u64,
) -> (Vec<Option<u32>>, bool) {
    let mut ids = Vec::new();
    for event in batch {
        if let ServerEvent::Registration { from, registration } = event {
            ids.push(admit_registration(
                shared,
                state,
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
    (ids, saved)
}

/// Answers an admitted registration (its id is durable) with REGISTERED, and sends the agent
/// its tasks.
fn answer_registration(
    shared: &Arc<Shared>,
    state: &mut State,
    (from, registration, id): (std::net::SocketAddr, crate::wire::Registration, u32),
    now_ms: u64,
    alerts: &mut Vec<AlertRecord>,
) {
    let reply = Registered {
        instance: registration.instance,
        alertflow_port: shared.alertflow_port,
        heartbeat_ms: shared.options.heartbeat.as_millis() as u32,
        timeout_ms: shared.options.initial_timeout.as_millis() as u32,
        max_retransmissions: shared.options.max_retransmissions.min(255) as u8,
        server_time_ms: now_ms,
    };
    shared.accept_registration(from, id, registration.clone(), reply);
    log::event(
        Level::Good,
        "REGISTER",
        format_args!("{} is agent {id}, from {from}", registration.name),
    );
    mark_heard(state, id, now_ms, alerts);
    dispatch_agent(shared, state, &registration.name);
}

/// Takes a message from a registered agent: a metrics report joins the batch for the store.
fn take_message(
    shared: &Arc<Shared>,
    state: &mut State,
    (agent_id, message, receipt): (u32, Message, Option<Receipt>),
    now_ms: u64,
    gathered: &mut Gathered,
) {
    mark_heard(state, agent_id, now_ms, &mut gathered.alerts);
    state.registry.mark_reported(agent_id);
    let Some(name) = state.registry.get(agent_id).map(|r| r.name.clone()) else {
        // Nobody to store it for: acknowledged, it can never be stored.
        if let Some(r) = receipt {
            shared.release(vec![r], true);
        }
        return;
    };
    match message {
        Message::Metrics(report) => {
            let task_number = report.task_number;
            let Some(report) = store_report(state, name.clone(), report) else {
                if let Some(r) = receipt {
                    shared.release(vec![r], true);
                }
                // A task removed while the agent could not hear the CANCEL.
                operate::send_cancel(shared, agent_id, task_number);
                log::event(
                    Level::Warn,
                    "METRICS",
                    format_args!("{name}: report for unknown task #{task_number} dropped"),
                );
                return;
            };
            gathered.reports.push(report);
            gathered.receipts.extend(receipt);
        }
        Message::Heartbeat(_) => {}
        other => log::event(
            Level::Warn,
            "UNEXPECTED",
            format_args!("{name} sent a {} message", other.packet_type().name()),
        ),
    }
}

/// The store's report of an agent's metrics report, `None` when its task is not known.
fn store_report(state: &State, name: String, report: crate::wire::MetricsReport) -> Option<Report> {
    let task = state.dispatch.by_number(report.task_number)?;
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
        report.samples.iter().find_map(|s| match s {
            crate::wire::Sample::Probe(p) => {
                state
                    .dispatch
                    .probe_target(report.task_number, &name, p.probe)
            }
            _ => None,
        })
    };
    Some(Report {
        agent: name,
        task: task_id,
        target,
        time_ms: report.time_ms,
        readings: crate::schema::readings(&report.samples),
    })
}

/// Logs the events that only say something happened on the link.
fn log_event(state: &mut State, event: ServerEvent, now_ms: u64) {
    match event {
        ServerEvent::Dropped { agent_id, id } => log::event(
            Level::Warn,
            "DROPPED",
            format_args!("message {id} to agent {agent_id} dropped from a full queue"),
        ),
        ServerEvent::PeerLost { agent_id } => log::event(
            Level::Warn,
            "SILENT",
            format_args!("{} stopped acknowledging", agent_label(state, agent_id)),
        ),
        ServerEvent::PeerRecovered { agent_id } => log::event(
            Level::Good,
            "ANSWERS",
            format_args!("{} acknowledges again", agent_label(state, agent_id)),
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
        ServerEvent::Registration { .. }
        | ServerEvent::Message { .. }
        | ServerEvent::Acknowledged { .. } => {}
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
            // Any other field (a probe's): its name and value at the precision it is stored at.
            _ => format!(
                "{} {:.*} {}",
                def.name,
                usize::from(def.decimals),
                reading.value,
                def.unit
            )
            .trim_end()
            .to_string(),
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
pub(super) fn agent_label(state: &State, agent_id: u32) -> String {
    let name = state
        .registry
        .get(agent_id)
        .map_or("?", |r| r.name.as_str());
    format!("{name} (agent {agent_id})")
}
