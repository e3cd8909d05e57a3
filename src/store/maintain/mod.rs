//! Maintenance, on the store's own thread: moves head buffers into raw chunks, seals the hours
//! that have passed (one chunk per series and hour, its minute rollups, its row of the hour
//! rollups), deletes log segments whose reports are all in chunks, and applies retention by
//! deleting whole partition files. Every step is a transaction of its own and can be repeated:
//! an interrupted pass leaves the hour unsealed, and the next pass (or the next start) seals it.
//!
//! This file runs the thread and the pass; `seal.rs` writes chunks and rollups, `retention.rs`
//! deletes log segments and partitions, `bulk_load.rs` fills a store quickly.

mod bulk_load;
mod retention;
mod seal;

pub(super) use bulk_load::bulk_load;
pub(super) use seal::read_chunks;

use super::chunk::RawChunk;
use super::partition::{self, DAY_MS, PartitionId, Tier};
use super::{Inner, StoreError, lock};
use retention::{clean_wal, retention};
use rusqlite::OptionalExtension;
use seal::{seal, write_partial};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often maintenance runs.
const EVERY: Duration = Duration::from_secs(5);
/// How long after its end an hour is sealed: reports still in flight then arrive first.
pub const SEAL_GRACE_MS: u64 = 2 * 60_000;
/// Past this much log, buffers that keep its oldest segment are moved into chunks early.
const WAL_BUDGET: u64 = 256 * 1024 * 1024;

/// The maintenance thread: imports an older store once, then a pass every few seconds.
pub fn run(inner: &Inner) {
    if let Err(e) = super::import::run(inner, inner.now()) {
        crate::log::event(
            crate::log::Level::Bad,
            "STORE",
            format_args!(
                "importing the older store failed: {e} (it is kept; the next start tries again)"
            ),
        );
    }
    warm_latest(inner);
    let mut failing = false;
    loop {
        {
            let (flag, condvar) = &inner.wake;
            let mut woken = lock(flag);
            if !*woken && !inner.stop.load(Ordering::SeqCst) {
                woken = condvar
                    .wait_timeout(woken, EVERY)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            *woken = false;
        }
        if inner.stop.load(Ordering::SeqCst) {
            return;
        }
        match pass(inner, inner.now()) {
            Ok(()) => {
                if failing {
                    failing = false;
                    crate::log::event(
                        crate::log::Level::Good,
                        "STORE",
                        "maintenance succeeds again",
                    );
                }
            }
            Err(e) => {
                inner.stats().maintenance_failures += 1;
                if !failing {
                    failing = true;
                    crate::log::event(
                        crate::log::Level::Bad,
                        "STORE",
                        format_args!(
                            "maintenance failed: {e}; reports stay in the log and in memory, and it is tried again every {} s (logged once until it succeeds)",
                            EVERY.as_secs()
                        ),
                    );
                }
            }
        }
    }
}

/// What a pass changed, applied to the head once its transactions are committed (never
/// before: reports leave the head only when the files hold them).
#[derive(Default)]
struct Effects {
    /// (series, hour, times moved into a chunk)
    flushed: Vec<(u32, u64, Vec<u64>)>,
    unsealed: Vec<(u32, u64)>,
    sealed: Vec<(u32, u64)>,
    chunks: u64,
}

/// Runs `work` inside the maintenance pool's transactions, commits them (rollups before raw
/// chunks), and only then applies what it did to the head.
fn batch(
    inner: &Inner,
    work: impl FnOnce(&Inner, &mut partition::Pool, &mut Effects) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut pool = lock(&inner.maintain_pool);
    let mut effects = Effects::default();
    if let Err(e) = work(inner, &mut pool, &mut effects) {
        pool.rollback();
        return Err(e);
    }
    pool.commit().map_err(|(id, source)| StoreError::Database {
        path: id.path(&inner.root),
        source,
    })?;
    drop(pool);
    let mut head = lock(&inner.head);
    for (series, hour) in &effects.unsealed {
        head.mark_unsealed(*series, *hour);
    }
    for (series, hour, times) in &effects.flushed {
        head.flushed(*series, *hour, times);
    }
    for (series, hour) in &effects.sealed {
        head.mark_sealed(*series, *hour);
    }
    drop(head);
    let mut stats = inner.stats();
    stats.chunks_written += effects.chunks;
    stats.hours_sealed += effects.sealed.len() as u64;
    Ok(())
}

/// One pass at `now_ms`.
pub fn pass(inner: &Inner, now_ms: u64) -> Result<(), StoreError> {
    persist_series(inner)?;
    let closed_before = now_ms.saturating_sub(SEAL_GRACE_MS);
    let wal_wanted = wal_pressure(inner);
    let jobs = lock(&inner.head).flush_jobs(now_ms, closed_before, wal_wanted);
    // New series may have come since: the catalogue names every series a chunk names.
    persist_series(inner)?;
    let unsealed = lock(&inner.head).unsealed_closed(closed_before);
    batch(inner, |inner, pool, effects| {
        for job in jobs {
            if job.seal {
                seal(
                    inner,
                    pool,
                    effects,
                    job.series,
                    job.hour_ms,
                    Some(job.chunk),
                )?;
            } else {
                write_partial(inner, pool, effects, job)?;
            }
        }
        for (series, hour) in unsealed {
            seal(inner, pool, effects, series, hour, None)?;
        }
        Ok(())
    })?;
    clean_wal(inner, now_ms)?;
    retention(inner, now_ms)?;
    Ok(())
}

/// Records new series in the catalogue (before any chunk names them).
fn persist_series(inner: &Inner) -> Result<(), StoreError> {
    let new = lock(&inner.head).unpersisted();
    if new.is_empty() {
        return Ok(());
    }
    let rows: Vec<(u32, &str, &str, &str)> = new
        .iter()
        .map(|(id, k)| {
            (
                *id,
                k.agent.as_str(),
                k.task.as_str(),
                k.target.as_deref().unwrap_or(""),
            )
        })
        .collect();
    let path = inner.root.join("catalog.sqlite");
    lock(&inner.catalog)
        .add_series(&rows)
        .map_err(StoreError::db(&path))?;
    let ids: Vec<u32> = new.iter().map(|(id, _)| *id).collect();
    lock(&inner.head).mark_persisted(&ids);
    Ok(())
}

/// The log segment below which buffers must be moved out (the log is over its budget).
fn wal_pressure(inner: &Inner) -> u64 {
    let dir = inner.root.join("wal");
    let segments = super::wal::segments(&dir).unwrap_or_default();
    let total: u64 = segments
        .iter()
        .filter_map(|s| std::fs::metadata(dir.join(format!("{s:016x}.wal"))).ok())
        .map(|m| m.len())
        .sum();
    match segments.first() {
        Some(oldest) if total > WAL_BUDGET => oldest + 1,
        _ => 0,
    }
}

/// After a start, the newest report of each series (for `/metrics`) from the newest chunks.
fn warm_latest(inner: &Inner) {
    let series = lock(&inner.head).all_series();
    let now = inner.now();
    let mut pool = lock(&inner.query_pool);
    for (id, _) in series {
        for partition in PartitionId::covering(Tier::Raw, now.saturating_sub(DAY_MS), now + 1)
            .into_iter()
            .rev()
        {
            let path = partition.path(&inner.root);
            let Ok(Some(conn)) = pool.get(partition, false) else {
                continue;
            };
            let newest: Option<Vec<u8>> = conn
                .query_row(
                    "SELECT data FROM chunks WHERE series = ?1 ORDER BY first_ms DESC LIMIT 1",
                    [id],
                    |r| r.get(0),
                )
                .optional()
                .unwrap_or(None);
            if let Some(chunk) = newest.and_then(|d| RawChunk::decode(&d).ok()) {
                lock(&inner.head).offer_latest(id, &chunk);
                break;
            }
            let _ = path;
        }
    }
}
