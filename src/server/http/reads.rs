//! The API's read answers: the status page, agents, alerts, metrics (raw and in steps), tasks
//! and the server's status.

use super::params::{AlertParams, MetricsParams};
use super::{Reply, error, json_reply};
use crate::log::{self};
use crate::server::{Shared, page};
use crate::store::{AlertRecord, Report, StepQuery, StepSeries};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

/// What the status page may load: nothing but its own inline style sheet and `data:` images.
pub(super) const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /`: the status page (HTML with inline SVG graphs); `?range=` picks the time range.
pub(super) async fn status_page(shared: &Arc<Shared>, query: &str) -> Reply {
    let mut range = page::Range::default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "range" {
            match page::Range::parse(&v) {
                Some(r) => range = r,
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "range={v}: not a range the page shows (one of {})",
                            page::Range::names().join(", ")
                        ),
                    );
                }
            }
        }
    }
    let shared = shared.clone();
    let page = smol::unblock(move || page::StatusPage::gather(&shared, log::now_ms(), range)).await;
    Response::builder()
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header("content-security-policy", PAGE_POLICY)
        .header("x-content-type-options", "nosniff")
        .body(Full::new(Bytes::from(page.render())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

pub(super) fn agents(shared: &Arc<Shared>) -> Reply {
    let state = shared.state();
    let list: Vec<Value> = state
        .registry
        .all()
        .into_iter()
        .map(|a| {
            let tasks: Vec<String> = state
                .dispatch
                .tasks()
                .filter(|t| t.task.device(&a.name).is_some())
                .map(|t| t.task.task_id.clone())
                .collect();
            json!({
                "name": a.name,
                "id": a.id,
                "address": a.address.map(|x| x.to_string()),
                "status": a.status,
                "last_seen": log::rfc3339(a.last_seen_ms),
                "last_seen_ms": a.last_seen_ms,
                "first_registered": log::rfc3339(a.first_registered_ms),
                "registrations": a.registrations,
                "software": a.software,
                "tasks": tasks,
            })
        })
        .collect();
    json_reply(StatusCode::OK, &Value::Array(list))
}

/// The API form of an alert.
pub fn alert_json(a: &AlertRecord) -> Value {
    json!({
        "alert_id": format!("{:016x}", a.alert_id),
        "agent": a.agent,
        "task": a.task,
        "kind": a.kind.kind(),
        "severity": a.severity,
        "value": a.value,
        "threshold": a.threshold,
        "rule": a.rule,
        "message": a.message,
        "time": log::rfc3339(a.time_ms),
        "time_ms": a.time_ms,
        "received": log::rfc3339(a.received_ms),
        "resolved": a.resolved_ms.map(log::rfc3339),
    })
}

/// The API form of a metrics report (see [`Report::to_json`]).
pub fn metric_json(m: &Report) -> Value {
    m.to_json()
}

pub(super) async fn alerts(shared: &Arc<Shared>, p: AlertParams) -> Reply {
    let now = log::now_ms();
    let list: Vec<(AlertRecord, Option<u64>)> = if p.firing {
        let q = &p.query;
        shared
            .firing()
            .matching(|r| {
                q.agent.as_deref().is_none_or(|a| a == r.agent)
                    && q.from_ms.is_none_or(|f| r.time_ms >= f)
                    && q.to_ms.is_none_or(|t| r.time_ms < t)
            })
            .into_iter()
            .take(q.limit)
            .map(|a| (a.record, Some(a.since_ms)))
            .collect()
    } else {
        let store = shared.store.clone();
        let q = p.query;
        match smol::unblock(move || store.alerts(&q)).await {
            Ok(list) => list.into_iter().map(|r| (r, None)).collect(),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}")),
        }
    };
    let acks = shared.acks();
    let silences = shared.silences();
    let out: Vec<Value> = list
        .iter()
        .map(|(r, since)| {
            let mut v = alert_json(r);
            if let Some(since) = since {
                v["firing_since"] = json!(log::rfc3339(*since));
                v["firing_since_ms"] = json!(since);
            }
            v["acknowledged"] = acks.get(r.alert_id).map_or(Value::Null, |a| a.to_json());
            if r.resolved_ms.is_none() && crate::server::firing::can_fire(r) {
                v["silenced_by"] = silences
                    .silencing(r, now)
                    .map_or(Value::Null, |s| json!(s.id));
            }
            v
        })
        .collect();
    json_reply(StatusCode::OK, &Value::Array(out))
}

/// One column's statistics over a step, as the API writes them.
#[derive(serde::Serialize)]
pub(super) struct StatJson {
    count: u64,
    min: f64,
    max: f64,
    mean: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    p10: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p90: Option<f64>,
}

/// One step as the API writes it: its time, each field's statistics by its API name, an
/// iperf test's transport, and per interface its fields under `interfaces`.
pub(super) struct StepJson<'a>(&'a crate::store::query::StepRow);

impl serde::Serialize for StepJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let row = self.0;
        let stat = |s: &crate::store::query::StepStat| StatJson {
            count: s.count,
            min: s.min,
            max: s.max,
            mean: s.mean,
            p10: s.quantiles.map(|q| q[0]),
            p50: s.quantiles.map(|q| q[1]),
            p90: s.quantiles.map(|q| q[2]),
        };
        let mut interfaces: std::collections::BTreeMap<&str, Vec<(String, StatJson)>> =
            Default::default();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("time", &log::rfc3339(row.start_ms))?;
        map.serialize_entry("time_ms", &row.start_ms)?;
        let mut transport = None;
        for s in &row.stats {
            let name =
                crate::schema::api_name(s.column.field, s.column.instance.as_deref()).into_owned();
            match (&s.column.instance, s.column.field.per_interface()) {
                (Some(i), true) => interfaces.entry(i).or_default().push((name, stat(s))),
                (Some(t), false) => {
                    transport = Some(t.as_str());
                    map.serialize_entry(&name, &stat(s))?;
                }
                (None, _) => map.serialize_entry(&name, &stat(s))?,
            }
        }
        if let Some(t) = transport {
            map.serialize_entry("transport", t)?;
        }
        if !interfaces.is_empty() {
            let interfaces: std::collections::BTreeMap<
                &str,
                std::collections::BTreeMap<String, StatJson>,
            > = interfaces
                .into_iter()
                .map(|(k, v)| (k, v.into_iter().collect()))
                .collect();
            map.serialize_entry("interfaces", &interfaces)?;
        }
        map.end()
    }
}

#[derive(serde::Serialize)]
pub(super) struct SeriesJson<'a> {
    agent: &'a str,
    task: &'a str,
    target: Option<&'a str>,
    tier: &'a str,
    steps: Vec<StepJson<'a>>,
}

#[derive(serde::Serialize)]
pub(super) struct StepsJson<'a> {
    from: String,
    from_ms: u64,
    to: String,
    to_ms: u64,
    step_ms: u64,
    series: Vec<SeriesJson<'a>>,
}

/// The API form of steps, as compact JSON (a month of steps is large).
pub(super) fn steps_reply(series: &[StepSeries], step_ms: u64, from: u64, to: u64) -> Reply {
    let body = StepsJson {
        from: log::rfc3339(from),
        from_ms: from,
        to: log::rfc3339(to),
        to_ms: to,
        step_ms,
        series: series
            .iter()
            .map(|s| SeriesJson {
                agent: &s.agent,
                task: &s.task,
                target: s.target.as_deref(),
                tier: s.tier,
                steps: s.steps.iter().map(StepJson).collect(),
            })
            .collect(),
    };
    let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
    bytes.push(b'\n');
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

pub(super) async fn metrics(shared: &Arc<Shared>, p: MetricsParams, path: &str) -> Reply {
    let store = shared.store.clone();
    if let Some(step_ms) = p.step_ms {
        let to = p.raw.to_ms.unwrap_or_else(log::now_ms);
        let from = p.raw.from_ms.unwrap_or(to.saturating_sub(3_600_000));
        let steps = to.saturating_sub(from).div_ceil(step_ms);
        if steps > crate::store::query::MAX_STEPS {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "step={}s: {steps} steps from from= to to=; at most {} (give a longer step)",
                    step_ms / 1000,
                    crate::store::query::MAX_STEPS
                ),
            );
        }
        let q = StepQuery {
            agent: p.raw.agent,
            task: p.raw.task,
            from_ms: from,
            to_ms: to,
            step_ms,
            fields: p.fields,
        };
        return match smol::unblock(move || store.steps(&q)).await {
            Ok(series) => steps_reply(&series, step_ms, from, to),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}")),
        };
    }
    let fields = p.fields;
    let q = p.raw;
    let echo = q.clone();
    match smol::unblock(move || store.metrics(&q)).await {
        Ok(page) => {
            let list: Vec<Value> = page
                .records
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    if !fields.is_empty() {
                        r.readings.retain(|x| fields.contains(&x.field));
                    }
                    metric_json(&r)
                })
                .collect();
            let mut reply = json_reply(StatusCode::OK, &Value::Array(list));
            if let Some(next) = page.next {
                let mut link: Vec<(String, String)> = Vec::new();
                if let Some(a) = &echo.agent {
                    link.push(("agent".into(), a.clone()));
                }
                if let Some(t) = &echo.task {
                    link.push(("task".into(), t.clone()));
                }
                if let Some(f) = echo.from_ms {
                    link.push(("from".into(), f.to_string()));
                }
                if let Some(t) = echo.to_ms {
                    link.push(("to".into(), t.to_string()));
                }
                link.push(("limit".into(), echo.limit.to_string()));
                link.push(("after".into(), next.clone()));
                let query: String = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(link)
                    .finish();
                let headers = reply.headers_mut();
                if let Ok(v) = hyper::header::HeaderValue::from_str(&next) {
                    headers.insert("x-next-cursor", v);
                }
                if let Ok(v) =
                    hyper::header::HeaderValue::from_str(&format!("<{path}?{query}>; rel=\"next\""))
                {
                    headers.insert(hyper::header::LINK, v);
                }
            }
            reply
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}")),
    }
}

pub(super) fn tasks(shared: &Arc<Shared>) -> Reply {
    let state = shared.state();
    let list: Vec<Value> = state
        .dispatch
        .tasks()
        .map(|t| {
            json!({
                "task_id": t.task.task_id,
                "number": t.number,
                "origin": t.origin,
                "dialect": t.task.dialect,
                "frequency_s": t.task.frequency_s,
                "devices": t.task.devices,
            })
        })
        .collect();
    json_reply(StatusCode::OK, &Value::Array(list))
}

pub(super) fn status(shared: &Arc<Shared>) -> Reply {
    let endpoint = shared.endpoint_counters();
    let (agents, up, tasks, refused_new_agents, refused_alerts) = {
        let state = shared.state();
        let up = state
            .registry
            .all()
            .iter()
            .filter(|a| a.status == crate::server::registry::Status::Up)
            .count();
        (
            state.registry.len(),
            up,
            state.dispatch.tasks().count(),
            state.refused_new_agents,
            state.refused_alerts,
        )
    };
    let disk: serde_json::Map<String, Value> = shared
        .store
        .disk_usage()
        .into_iter()
        .map(|(tier, bytes)| (tier.to_string(), json!(bytes)))
        .collect();
    json_reply(
        StatusCode::OK,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "agents": agents,
            "agents_up": up,
            "tasks": tasks,
            "store": shared.store.stats(),
            "store_head": shared.store.head_stats(),
            "store_bytes": disk,
            "nettask": endpoint,
            "socket_send_errors": shared.socket_stats.send_errors.load(std::sync::atomic::Ordering::Relaxed),
            "data_dir": shared.options.data_dir,
            "authenticated": shared.options.keys.is_keyed(),
            "new_agents_refused": refused_new_agents,
            "alerts_refused": refused_alerts,
            "alertmanagers": shared.alertmanagers.iter().map(|f| f.status()).collect::<Vec<_>>(),
            "remote_write": shared
                .remote_writers
                .iter()
                .map(|w| w.status(&shared.store, crate::log::now_ms()))
                .collect::<Vec<_>>(),
        }),
    )
}
