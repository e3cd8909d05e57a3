//! The query parameters of `GET /api/metrics` and `GET /api/alerts`, parsed and checked.

use super::MAX_LIMIT;
use crate::log::{self};
use crate::store::{AlertQuery, RawQuery};

/// A time parameter: Unix milliseconds or RFC 3339.
pub(super) fn time_param(name: &str, v: &str) -> Result<u64, String> {
    log::parse_time(v).ok_or_else(|| {
        format!(
            "{name}={v}: not a time (give Unix milliseconds or RFC 3339, e.g. 2026-11-27T10:00:00Z)"
        )
    })
}

pub(super) fn limit_param(v: &str) -> Result<usize, String> {
    let n: usize = v
        .parse()
        .map_err(|_| format!("limit={v}: not a non-negative integer"))?;
    Ok(n.clamp(1, MAX_LIMIT))
}

/// A duration parameter: `60s`, `5m`, `1h`, or plain seconds.
pub(super) fn duration_param(name: &str, v: &str) -> Result<u64, String> {
    let ms = match v.parse::<u64>() {
        Ok(s) => s.saturating_mul(1000),
        Err(_) => humantime::parse_duration(v)
            .map_err(|_| format!("{name}={v}: not a duration (e.g. 60s, 5m, 1h)"))?
            .as_millis() as u64,
    };
    if ms < 1000 {
        return Err(format!("{name}={v}: must be at least 1s"));
    }
    Ok(ms)
}

/// What `GET /api/metrics` was asked.
#[derive(Debug, Clone, Default)]
pub(super) struct MetricsParams {
    pub(super) raw: RawQuery,
    pub(super) step_ms: Option<u64>,
    pub(super) fields: Vec<crate::schema::Field>,
}

pub(super) fn parse_metrics_query(query: &str) -> Result<MetricsParams, String> {
    let mut p = MetricsParams {
        raw: RawQuery {
            limit: 1000,
            ..RawQuery::default()
        },
        ..MetricsParams::default()
    };
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "agent" => p.raw.agent = Some(v.into_owned()),
            "task" => p.raw.task = Some(v.into_owned()),
            "from" | "since" => p.raw.from_ms = Some(time_param(&k, &v)?),
            "to" => p.raw.to_ms = Some(time_param(&k, &v)?),
            "limit" => p.raw.limit = limit_param(&v)?,
            "after" => {
                if v.split_once('.')
                    .is_none_or(|(a, b)| a.parse::<u64>().is_err() || b.parse::<u32>().is_err())
                {
                    return Err(format!(
                        "after={v}: not a cursor (pass the X-Next-Cursor of the previous page)"
                    ));
                }
                p.raw.after = Some(v.into_owned());
            }
            "step" => p.step_ms = Some(duration_param("step", &v)?),
            "fields" => {
                for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let field = crate::schema::Field::by_name(name).ok_or_else(|| {
                        format!(
                            "fields={v}: unknown field {name:?} (known: {})",
                            crate::schema::field_names().join(", ")
                        )
                    })?;
                    p.fields.push(field);
                }
            }
            other => {
                return Err(format!(
                    "unknown query parameter {other:?} (known: agent, task, from, to, step, fields, limit, after)"
                ));
            }
        }
    }
    if let (Some(from), Some(to)) = (p.raw.from_ms, p.raw.to_ms)
        && from >= to
    {
        return Err(format!("from={from} is not before to={to}"));
    }
    if p.step_ms.is_some() && p.raw.after.is_some() {
        return Err("after= pages raw reports; it does not go with step=".into());
    }
    Ok(p)
}

/// What `GET /api/alerts` was asked.
#[derive(Debug, Clone, Default)]
pub(super) struct AlertParams {
    pub(super) query: AlertQuery,
    /// Only the alerts firing now (silenced ones included, marked).
    pub(super) firing: bool,
}

pub(super) fn parse_alert_query(query: &str) -> Result<AlertParams, String> {
    let mut q = AlertQuery {
        limit: 1000,
        ..AlertQuery::default()
    };
    let mut firing = false;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "agent" => q.agent = Some(v.into_owned()),
            "from" | "since" => q.from_ms = Some(time_param(&k, &v)?),
            "to" => q.to_ms = Some(time_param(&k, &v)?),
            "limit" => q.limit = limit_param(&v)?,
            "firing" => {
                firing = match v.as_ref() {
                    "true" | "1" | "" => true,
                    "false" | "0" => false,
                    _ => return Err(format!("firing={v}: give true or false")),
                }
            }
            other => {
                return Err(format!(
                    "unknown query parameter {other:?} (known: agent, from, to, limit, firing)"
                ));
            }
        }
    }
    if let (Some(from), Some(to)) = (q.from_ms, q.to_ms)
        && from >= to
    {
        return Err(format!("from={from} is not before to={to}"));
    }
    Ok(AlertParams { query: q, firing })
}
