//! Alerts in the store: a partition file per month of the alert's time, one row per alert id
//! (so a resent alert is stored once), each committed and synced before it is acknowledged. A
//! resolution is a record of its own that also marks the alert it resolves.

use super::partition::{PartitionId, Pool, Tier};
use super::{Inner, Refusal, StoreError, Stored, lock};
use crate::wire::{Alert, AlertType, Severity};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One stored alert, as raised plus when the server received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub alert_id: u64,
    pub agent: String,
    pub task: String,
    pub kind: AlertType,
    pub severity: Severity,
    pub value: f64,
    pub threshold: f64,
    pub time_ms: u64,
    pub rule: String,
    pub message: String,
    pub received_ms: u64,
    /// Nonzero: this record says that alert `resolves` stopped firing (at `time_ms`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resolves: u64,
    /// When this alert stopped firing, once a resolution arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_ms: Option<u64>,
    /// What the alert is about within its rule (an interface, `ping`, `iperf`), as raised.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subject: String,
    /// The destination its ping or iperf figures were measured towards, when the server knew
    /// it (`subject` is `ping` or `iperf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl AlertRecord {
    pub fn from_alert(alert: &Alert, received_ms: u64) -> Self {
        AlertRecord {
            alert_id: alert.alert_id,
            agent: alert.agent.clone(),
            task: alert.task.clone(),
            kind: alert.alert_type,
            severity: alert.severity,
            value: alert.value,
            threshold: alert.threshold,
            time_ms: alert.time_ms,
            rule: alert.rule.clone(),
            message: alert.message.clone(),
            received_ms,
            resolves: alert.resolves,
            resolved_ms: None,
            subject: alert.subject.clone(),
            target: None,
        }
    }
}

/// Which alerts a query asks for.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    pub agent: Option<String>,
    /// Inclusive; without it the newest `limit` before `to` are returned.
    pub from_ms: Option<u64>,
    /// Exclusive.
    pub to_ms: Option<u64>,
    pub limit: usize,
    /// Resolution records instead of alerts.
    pub resolutions: bool,
}

/// SQLite keeps 64-bit signed integers: an id is stored as the same 64 bits.
fn sql_id(id: u64) -> i64 {
    id as i64
}

pub(super) fn store(inner: &Inner, records: Vec<AlertRecord>) -> Result<Vec<Stored>, StoreError> {
    let now = inner.now();
    let oldest = now.saturating_sub(inner.options.retention.alerts.as_millis() as u64);
    let mut outcomes = vec![Stored::Duplicate; records.len()];
    let mut pool = lock(&inner.alert_pool);
    let by_partition = by_partition(inner, &records, now, oldest, &mut outcomes);
    let result = write_alerts(
        inner,
        &mut pool,
        &records,
        &by_partition,
        oldest,
        &mut outcomes,
    );
    drop(pool);
    let mut stats = inner.stats();
    match result {
        Ok(()) => {
            for o in &outcomes {
                match o {
                    Stored::New => stats.alerts_stored += 1,
                    Stored::Duplicate => stats.alerts_duplicates += 1,
                    Stored::Refused(_) => {}
                }
            }
            drop(stats);
            inner.write_succeeded();
            Ok(outcomes)
        }
        Err(e) => {
            stats.alerts_unstored += records.len() as u64;
            drop(stats);
            inner.write_failed("alerts", &e);
            Err(e)
        }
    }
}

/// The indexes of the records to store, per partition of their time; the records dated
/// before alert retention or too far ahead are refused in `outcomes`.
fn by_partition(
    inner: &Inner,
    records: &[AlertRecord],
    now: u64,
    oldest: u64,
    outcomes: &mut [Stored],
) -> BTreeMap<PartitionId, Vec<usize>> {
    let mut by_partition: BTreeMap<PartitionId, Vec<usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if r.time_ms < oldest {
            outcomes[i] = Stored::Refused(Refusal::TooOld);
        } else if r.time_ms > now.saturating_add(inner.options.max_future.as_millis() as u64) {
            outcomes[i] = Stored::Refused(Refusal::Future);
        } else {
            by_partition
                .entry(PartitionId::of(Tier::Alerts, r.time_ms))
                .or_default()
                .push(i);
        }
    }
    by_partition
}

/// Inserts the records, one committed transaction per partition (a record whose id is stored
/// already is left a duplicate in `outcomes`), then marks the alerts the new ones resolve.
fn write_alerts(
    inner: &Inner,
    pool: &mut Pool,
    records: &[AlertRecord],
    by_partition: &BTreeMap<PartitionId, Vec<usize>>,
    oldest: u64,
    outcomes: &mut [Stored],
) -> Result<(), StoreError> {
    let mut resolutions = Vec::new();
    for (id, indexes) in by_partition {
        let path = id.path(&inner.root);
        let conn = pool
            .get(*id, true)
            .map_err(StoreError::db(&path))?
            .ok_or(StoreError::Closed)?;
        let tx = conn
            .unchecked_transaction()
            .map_err(StoreError::db(&path))?;
        for &i in indexes {
            let r = &records[i];
            let text = serde_json::to_string(r).unwrap_or_default();
            let n = tx
                .execute(
                    "INSERT OR IGNORE INTO alerts(alert_id, time_ms, agent, resolves, record)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        sql_id(r.alert_id),
                        r.time_ms as i64,
                        r.agent,
                        sql_id(r.resolves),
                        text
                    ],
                )
                .map_err(StoreError::db(&path))?;
            if n == 1 {
                outcomes[i] = Stored::New;
                if r.resolves != 0 {
                    resolutions.push((r.resolves, r.time_ms));
                }
            }
        }
        tx.commit().map_err(StoreError::db(&path))?;
    }
    for (resolved, at) in resolutions {
        mark_resolved(inner, pool, resolved, at, oldest)?;
    }
    Ok(())
}

/// Sets `resolved_ms` on the alert `id` (searched in the partitions, newest first).
fn mark_resolved(
    inner: &Inner,
    pool: &mut super::partition::Pool,
    id: u64,
    at: u64,
    oldest: u64,
) -> Result<(), StoreError> {
    let partitions =
        super::partition::list(&inner.root, Tier::Alerts).map_err(StoreError::io(&inner.root))?;
    for pid in partitions.into_iter().rev() {
        if pid.end_ms() <= oldest {
            break;
        }
        let path = pid.path(&inner.root);
        let Some(conn) = pool.get(pid, false).map_err(StoreError::db(&path))? else {
            continue;
        };
        let text: Option<String> = conn
            .query_row(
                "SELECT record FROM alerts WHERE alert_id = ?1",
                [sql_id(id)],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::db(&path))?;
        let Some(text) = text else { continue };
        if let Ok(mut record) = serde_json::from_str::<AlertRecord>(&text)
            && record.resolved_ms.is_none()
        {
            record.resolved_ms = Some(at);
            let text = serde_json::to_string(&record).unwrap_or(text);
            conn.execute(
                "UPDATE alerts SET record = ?1 WHERE alert_id = ?2",
                params![text, sql_id(id)],
            )
            .map_err(StoreError::db(&path))?;
        }
        return Ok(());
    }
    Ok(())
}

pub(super) fn query(inner: &Inner, q: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
    let now = inner.now();
    let oldest = now.saturating_sub(inner.options.retention.alerts.as_millis() as u64);
    let from = q.from_ms.unwrap_or(oldest);
    let to = q.to_ms.unwrap_or(now + 2 * super::partition::DAY_MS);
    let limit = q.limit.max(1);
    let ascending = q.from_ms.is_some();
    let mut partitions: Vec<PartitionId> = super::partition::list(&inner.root, Tier::Alerts)
        .map_err(StoreError::io(&inner.root))?
        .into_iter()
        .filter(|p| p.end_ms() > from && p.start_ms < to)
        .collect();
    if !ascending {
        partitions.reverse();
    }
    let order = if ascending { "ASC" } else { "DESC" };
    let sql = format!(
        "SELECT record FROM alerts WHERE time_ms >= ?1 AND time_ms < ?2
         AND (?3 IS NULL OR agent = ?3) AND ((resolves != 0) = ?4)
         ORDER BY time_ms {order}, alert_id {order} LIMIT ?5"
    );
    let mut out = Vec::new();
    let mut pool = lock(&inner.query_pool);
    for pid in partitions {
        if out.len() >= limit {
            break;
        }
        let path = pid.path(&inner.root);
        let Some(conn) = pool.get(pid, false).map_err(StoreError::db(&path))? else {
            continue;
        };
        let mut stmt = conn.prepare_cached(&sql).map_err(StoreError::db(&path))?;
        let rows = stmt
            .query_map(
                params![
                    from as i64,
                    to.min(i64::MAX as u64) as i64,
                    q.agent,
                    q.resolutions,
                    (limit - out.len()) as i64
                ],
                |r| r.get::<_, String>(0),
            )
            .map_err(StoreError::db(&path))?;
        for row in rows {
            let text = row.map_err(StoreError::db(&path))?;
            if let Ok(record) = serde_json::from_str::<AlertRecord>(&text) {
                out.push(record);
            }
        }
    }
    if !ascending {
        out.reverse();
    }
    Ok(out)
}
