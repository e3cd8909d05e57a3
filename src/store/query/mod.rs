//! Queries: raw reports by time range (paged with a cursor), and statistics per step served
//! from the coarsest tier that has the resolution (raw under a minute, the minute rollups under
//! an hour, the hour rollups above), falling back to a coarser tier where retention has deleted
//! the finer one, and computing from raw reports the hours that are not sealed yet.
//!
//! This file reads one series' reports from the head and the partitions (for both kinds, and
//! for the writer's duplicate check) and scans every stored time; `raw.rs` pages raw reports,
//! `steps.rs` picks the tier and feeds `step_builder.rs`.

use super::chunk::RawChunk;
use super::head::TimesCache;
use super::maintain::read_chunks;
use super::partition::{self, DAY_MS, PartitionId, Pool, Tier};
use super::wal::SeriesKey;
use super::{Inner, Report, StoreError, lock};
use rusqlite::params;
use std::path::Path;
use std::sync::Arc;

mod raw;
mod step_builder;
mod steps;

pub(super) use raw::raw;
pub use raw::{RawPage, RawQuery};
pub(super) use steps::steps;
pub use steps::{StepQuery, StepRow, StepSeries, StepStat, tier_for};

/// A stored report as queries return it.
pub type MetricRecord = Report;

/// Most steps one query may ask for.
pub const MAX_STEPS: u64 = 20_000;

/// Merges two chunks of one series: every time once (the first chunk's report wins), columns
/// joined.
pub fn merge(a: RawChunk, b: RawChunk) -> RawChunk {
    if b.is_empty() {
        return a;
    }
    if a.is_empty() {
        return b;
    }
    let mut columns = a.columns.clone();
    for c in &b.columns {
        if !columns.contains(c) {
            columns.push(c.clone());
        }
    }
    let index_a: Vec<Option<usize>> = columns
        .iter()
        .map(|c| a.columns.iter().position(|x| x == c))
        .collect();
    let index_b: Vec<Option<usize>> = columns
        .iter()
        .map(|c| b.columns.iter().position(|x| x == c))
        .collect();
    let sequenced = !a.seqs.is_empty() || !b.seqs.is_empty();
    let mut out = RawChunk {
        times: Vec::with_capacity(a.len() + b.len()),
        values: vec![Vec::with_capacity(a.len() + b.len()); columns.len()],
        columns,
        seqs: Vec::new(),
    };
    let (mut i, mut j) = (0, 0);
    let push = |out: &mut RawChunk, chunk: &RawChunk, index: &[Option<usize>], k: usize| {
        out.times.push(chunk.times[k]);
        if sequenced {
            out.seqs.push(chunk.seq(k));
        }
        for (c, src) in index.iter().enumerate() {
            out.values[c].push(src.and_then(|s| chunk.values[s][k]));
        }
    };
    while i < a.len() || j < b.len() {
        let take_a = j >= b.len() || (i < a.len() && a.times[i] <= b.times[j]);
        if take_a {
            if j < b.len() && a.times[i] == b.times[j] {
                j += 1;
            }
            push(&mut out, &a, &index_a, i);
            i += 1;
        } else {
            push(&mut out, &b, &index_b, j);
            j += 1;
        }
    }
    out
}

/// Whether a raw chunk of `series` holds a report at `t`.
pub(super) fn chunk_has_time(
    root: &Path,
    pool: &mut Pool,
    cache: &mut TimesCache,
    series: u32,
    t: u64,
) -> Result<bool, StoreError> {
    let id = PartitionId::of(Tier::Raw, t);
    let path = id.path(root);
    let Some(conn) = pool.get(id, false).map_err(StoreError::db(&path))? else {
        return Ok(false);
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT first_ms, data FROM chunks WHERE series = ?1 AND first_ms <= ?2 AND last_ms >= ?2",
        )
        .map_err(StoreError::db(&path))?;
    let mut rows = stmt
        .query(params![series, t as i64])
        .map_err(StoreError::db(&path))?;
    while let Some(row) = rows.next().map_err(StoreError::db(&path))? {
        let first: i64 = row.get(0).map_err(StoreError::db(&path))?;
        let first = first as u64;
        let times = match cache.get(&(series, first)) {
            Some(t) => t.clone(),
            None => {
                let data: Vec<u8> = row.get(1).map_err(StoreError::db(&path))?;
                let (times, _) =
                    RawChunk::decode_times(&data).map_err(|source| StoreError::Damaged {
                        path: path.clone(),
                        series,
                        first_ms: first,
                        source,
                    })?;
                let times = Arc::new(times);
                cache.insert((series, first), times.clone());
                times
            }
        };
        if times.binary_search(&t).is_ok() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Which series a query asks for.
fn matching_series(
    inner: &Inner,
    agent: Option<&str>,
    task: Option<&str>,
) -> Vec<(u32, super::wal::SeriesKey)> {
    lock(&inner.head)
        .all_series()
        .into_iter()
        .filter(|(_, k)| agent.is_none_or(|a| k.agent == a) && task.is_none_or(|t| k.task == t))
        .collect()
}

/// Keeps the reports of `chunk` in `[from, to)`.
fn clip(mut chunk: RawChunk, from: u64, to: u64) -> RawChunk {
    let keep: Vec<bool> = chunk.times.iter().map(|t| (from..to).contains(t)).collect();
    if keep.iter().all(|k| *k) {
        return chunk;
    }
    chunk.values = chunk
        .values
        .iter()
        .map(|v| {
            v.iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(x, _)| *x)
                .collect()
        })
        .collect();
    if !chunk.seqs.is_empty() {
        chunk.seqs = chunk
            .seqs
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(s, _)| *s)
            .collect();
    }
    chunk.times.retain(|t| (from..to).contains(t));
    chunk
}

/// The reports of one series in `[from, to)` of the given raw partitions, merged.
fn partitions_chunk(
    inner: &Inner,
    pool: &mut Pool,
    partitions: &[PartitionId],
    series: u32,
    from: u64,
    to: u64,
) -> Result<RawChunk, StoreError> {
    let mut out = RawChunk::default();
    for id in partitions {
        if id.end_ms() <= from || id.start_ms >= to {
            continue;
        }
        let path = id.path(&inner.root);
        let Some(conn) = pool.get(*id, false).map_err(StoreError::db(&path))? else {
            continue;
        };
        for c in read_chunks(conn, &path, series, from, to)? {
            out = merge(out, c);
        }
    }
    Ok(clip(out, from, to))
}

/// The reports of one series in `[from, to)`: the head's and the partitions', merged.
fn series_chunk(
    inner: &Inner,
    pool: &mut Pool,
    series: u32,
    from: u64,
    to: u64,
) -> Result<RawChunk, StoreError> {
    let head = lock(&inner.head).chunk(series, from, to);
    // Only files that exist: a range may span years.
    let partitions: Vec<PartitionId> = if to.saturating_sub(from) <= 2 * DAY_MS {
        PartitionId::covering(Tier::Raw, from, to)
    } else {
        partition::list(&inner.root, Tier::Raw).map_err(StoreError::io(&inner.root))?
    };
    let stored = partitions_chunk(inner, pool, &partitions, series, from, to)?;
    Ok(clip(merge(head, stored), from, to))
}

pub(super) fn scan_times(inner: &Inner) -> Result<Vec<(SeriesKey, u64)>, StoreError> {
    let series: std::collections::HashMap<u32, SeriesKey> =
        lock(&inner.head).all_series().into_iter().collect();
    let mut out = Vec::new();
    for (id, agent) in &series {
        let chunk = lock(&inner.head).chunk(*id, 0, u64::MAX);
        out.extend(chunk.times.iter().map(|t| (agent.clone(), *t)));
    }
    let mut pool = lock(&inner.query_pool);
    for id in partition::list(&inner.root, Tier::Raw).map_err(StoreError::io(&inner.root))? {
        let path = id.path(&inner.root);
        let Some(conn) = pool.get(id, false).map_err(StoreError::db(&path))? else {
            continue;
        };
        let mut stmt = conn
            .prepare("SELECT series, first_ms, data FROM chunks")
            .map_err(StoreError::db(&path))?;
        let mut rows = stmt.query([]).map_err(StoreError::db(&path))?;
        while let Some(row) = rows.next().map_err(StoreError::db(&path))? {
            let sid: u32 = row.get(0).map_err(StoreError::db(&path))?;
            let first: i64 = row.get(1).map_err(StoreError::db(&path))?;
            let data: Vec<u8> = row.get(2).map_err(StoreError::db(&path))?;
            let (times, _) =
                RawChunk::decode_times(&data).map_err(|source| StoreError::Damaged {
                    path: path.clone(),
                    series: sid,
                    first_ms: first as u64,
                    source,
                })?;
            let key = series.get(&sid).cloned().unwrap_or(SeriesKey {
                agent: String::new(),
                task: String::new(),
                target: None,
            });
            out.extend(times.into_iter().map(|t| (key.clone(), t)));
        }
    }
    Ok(out)
}

/// For tests and tools: every raw partition's chunk count.
pub fn chunk_count(root: &Path) -> Result<u64, StoreError> {
    let mut total = 0;
    for id in partition::list(root, Tier::Raw).map_err(StoreError::io(root))? {
        let path = id.path(root);
        if let Some(conn) = partition::open(root, id, false, true).map_err(StoreError::db(&path))? {
            let n: i64 = conn
                .query_row("SELECT COUNT(*) FROM chunks", [], |r| r.get(0))
                .map_err(StoreError::db(&path))?;
            total += n as u64;
        }
    }
    Ok(total)
}
