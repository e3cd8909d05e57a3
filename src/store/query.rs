//! Queries: raw reports by time range (paged with a cursor), and statistics per step served
//! from the coarsest tier that has the resolution (raw under a minute, the minute rollups under
//! an hour, the hour rollups above), falling back to a coarser tier where retention has deleted
//! the finer one, and computing from raw reports the hours that are not sealed yet.

use super::chunk::{Column, RawChunk, RollupBlock, Stat};
use super::head::TimesCache;
use super::maintain::read_chunks;
use super::partition::{self, DAY_MS, HOUR_MS, MINUTE_MS, PartitionId, Pool, Tier};
use super::wal::SeriesKey;
use super::{Inner, Report, StoreError, lock, rollup};
use crate::schema::{Field, Reading};
use rusqlite::{OptionalExtension, params};
use std::path::Path;
use std::sync::Arc;

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
    let mut out = RawChunk {
        times: Vec::with_capacity(a.len() + b.len()),
        values: vec![Vec::with_capacity(a.len() + b.len()); columns.len()],
        columns,
    };
    let (mut i, mut j) = (0, 0);
    let push = |out: &mut RawChunk, chunk: &RawChunk, index: &[Option<usize>], k: usize| {
        out.times.push(chunk.times[k]);
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

/// A raw query: reports of one agent (or all) and task (or all) in a time range.
#[derive(Debug, Clone, Default)]
pub struct RawQuery {
    pub agent: Option<String>,
    pub task: Option<String>,
    /// Inclusive; without it the newest `limit` reports before `to` are returned.
    pub from_ms: Option<u64>,
    /// Exclusive.
    pub to_ms: Option<u64>,
    pub limit: usize,
    /// Continue after this cursor (from [`RawPage::next`]).
    pub after: Option<String>,
}

/// One page of a raw query.
#[derive(Debug, Clone, Default)]
pub struct RawPage {
    /// Oldest first.
    pub records: Vec<Report>,
    /// Pass as `after` for the next page; `None` at the end.
    pub next: Option<String>,
}

fn parse_cursor(text: &str) -> Option<(u64, u32)> {
    let (t, s) = text.split_once('.')?;
    Some((t.parse().ok()?, s.parse().ok()?))
}

fn record_of(key: &super::wal::SeriesKey, chunk: &RawChunk, i: usize) -> Report {
    Report {
        agent: key.agent.clone(),
        task: key.task.clone(),
        target: key.target.clone(),
        time_ms: chunk.times[i],
        readings: chunk
            .columns
            .iter()
            .zip(&chunk.values)
            .filter_map(|(c, v)| {
                Some(Reading {
                    field: c.field,
                    instance: c.instance.clone(),
                    value: c.field.def().value(v[i]?),
                })
            })
            .collect(),
    }
}

pub(super) fn raw(inner: &Inner, q: &RawQuery) -> Result<RawPage, StoreError> {
    let to = q.to_ms.unwrap_or(u64::MAX / 2);
    let limit = q.limit.max(1);
    let after = match &q.after {
        Some(c) => Some(parse_cursor(c).ok_or_else(|| StoreError::Io {
            path: inner.root.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad cursor"),
        })?),
        None => None,
    };
    let from = match (q.from_ms, after) {
        (_, Some((t, _))) => t,
        (Some(f), None) => f,
        (None, None) => 0,
    };
    let descending = q.from_ms.is_none() && after.is_none();
    let series = matching_series(inner, q.agent.as_deref(), q.task.as_deref());
    // Only the partition files that exist and overlap the range, in the order they are read.
    let mut partitions: Vec<PartitionId> = partition::list(&inner.root, Tier::Raw)
        .map_err(StoreError::io(&inner.root))?
        .into_iter()
        .filter(|p| p.end_ms() > from && p.start_ms < to)
        .collect();
    if descending {
        partitions.reverse();
    }
    let mut pool = lock(&inner.query_pool);
    let mut chunks: Vec<(usize, RawChunk)> = Vec::new();
    for (si, (id, _)) in series.iter().enumerate() {
        // The head first (the newest reports), then partition by partition until this series
        // alone has more than a page.
        let mut chunk = lock(&inner.head).chunk(*id, from, to);
        for p in &partitions {
            // Enough already on the side this partition cannot come before.
            let settled = if descending {
                chunk.len() - chunk.times.partition_point(|t| *t < p.end_ms())
            } else {
                chunk.times.partition_point(|t| *t < p.start_ms)
            };
            if settled > limit {
                break;
            }
            let part = partitions_chunk(inner, &mut pool, std::slice::from_ref(p), *id, from, to)?;
            chunk = merge(chunk, part);
        }
        chunks.push((si, chunk));
    }
    drop(pool);
    // (time, series, chunk index, row)
    let mut rows: Vec<(u64, u32, usize, usize)> = Vec::new();
    for (ci, (si, chunk)) in chunks.iter().enumerate() {
        let id = series[*si].0;
        for (i, t) in chunk.times.iter().enumerate() {
            if let Some((at, s)) = after
                && (*t, id) <= (at, s)
            {
                continue;
            }
            rows.push((*t, id, ci, i));
        }
    }
    rows.sort_unstable();
    let (rows, more) = if descending {
        let skip = rows.len().saturating_sub(limit);
        (rows[skip..].to_vec(), false)
    } else {
        let more = rows.len() > limit;
        rows.truncate(limit);
        (rows, more)
    };
    let next = if more {
        rows.last().map(|(t, s, ..)| format!("{t}.{s}"))
    } else {
        None
    };
    let records = rows
        .iter()
        .map(|(_, _, ci, i)| {
            let (si, chunk) = &chunks[*ci];
            record_of(&series[*si].1, chunk, *i)
        })
        .collect();
    Ok(RawPage { records, next })
}

/// A step query: statistics of each series of an agent (or all) per step of a range.
#[derive(Debug, Clone)]
pub struct StepQuery {
    pub agent: Option<String>,
    pub task: Option<String>,
    pub from_ms: u64,
    pub to_ms: u64,
    pub step_ms: u64,
    /// Only these fields (all when empty).
    pub fields: Vec<Field>,
}

/// Statistics of one column over one step, in the field's unit.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStat {
    pub column: Column,
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// p10, p50, p90 for fields that keep their distribution.
    pub quantiles: Option<[f64; 3]>,
}

/// One step of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    pub start_ms: u64,
    pub stats: Vec<StepStat>,
}

/// The steps of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSeries {
    pub agent: String,
    pub task: String,
    pub target: Option<String>,
    /// The tier the steps were computed from: `raw`, `minute` or `hour`.
    pub tier: &'static str,
    pub steps: Vec<StepRow>,
}

/// The tier a step query reads: the coarsest whose slots are no longer than the step, or a
/// coarser one where retention has deleted the range's start.
pub fn tier_for(
    inner_retention: &super::Retention,
    now_ms: u64,
    from_ms: u64,
    step_ms: u64,
) -> Tier {
    let kept = |d: std::time::Duration| now_ms.saturating_sub(d.as_millis() as u64);
    let mut tier = if step_ms >= HOUR_MS {
        Tier::Hour
    } else if step_ms >= MINUTE_MS {
        Tier::Minute
    } else {
        Tier::Raw
    };
    if tier == Tier::Raw && from_ms < kept(inner_retention.raw) {
        tier = Tier::Minute;
    }
    if tier == Tier::Minute && from_ms < kept(inner_retention.minute) {
        tier = Tier::Hour;
    }
    tier
}

fn read_block(
    pool: &mut Pool,
    root: &Path,
    id: PartitionId,
    series: u32,
    start: u64,
) -> Result<Option<RollupBlock>, StoreError> {
    let path = id.path(root);
    let Some(conn) = pool.get(id, false).map_err(StoreError::db(&path))? else {
        return Ok(None);
    };
    let data: Option<Vec<u8>> = conn
        .prepare_cached("SELECT data FROM blocks WHERE series = ?1 AND start_ms = ?2")
        .and_then(|mut s| {
            s.query_row(params![series, start as i64], |r| r.get(0))
                .optional()
        })
        .map_err(StoreError::db(&path))?;
    data.map(|d| {
        RollupBlock::decode(&d).map_err(|source| StoreError::Damaged {
            path: path.clone(),
            series,
            first_ms: start,
            source,
        })
    })
    .transpose()
}

/// Slot statistics (start, column, stat) of one series over `[from, to)` from `tier`.
fn slots(
    inner: &Inner,
    pool: &mut Pool,
    tier: Tier,
    series: u32,
    from: u64,
    to: u64,
) -> Result<Vec<(u64, Column, Stat)>, StoreError> {
    let mut out = Vec::new();
    let now = inner.now();
    let raw_kept = now.saturating_sub(inner.options.retention.raw.as_millis() as u64);
    // What can hold data: the tier's files, the raw files (for hours not sealed yet) and the
    // head. A range of years is walked only where they are.
    let mut lo = u64::MAX;
    let mut hi = 0;
    for t in [tier, Tier::Raw] {
        let parts = partition::list(&inner.root, t).map_err(StoreError::io(&inner.root))?;
        if let (Some(first), Some(last)) = (parts.first(), parts.last()) {
            lo = lo.min(first.start_ms);
            hi = hi.max(last.end_ms());
        }
    }
    if let Some((a, b)) = lock(&inner.head).span(series) {
        lo = lo.min(a);
        hi = hi.max(b);
    }
    let (from, to) = (from.max(lo), to.min(hi));
    if from >= to {
        return Ok(out);
    }
    let push_block = |out: &mut Vec<(u64, Column, Stat)>, block: &RollupBlock| {
        for column in &block.columns {
            for (start, stat) in rollup::column_slots(block, column) {
                if (from..to).contains(&start) && stat.count > 0 {
                    out.push((start, column.clone(), *stat));
                }
            }
        }
    };
    match tier {
        Tier::Raw | Tier::Alerts => {
            let chunk = series_chunk(inner, pool, series, from, to)?;
            for (column, values) in chunk.columns.iter().zip(&chunk.values) {
                let distribution = column.field.def().distribution;
                for (t, v) in chunk.times.iter().zip(values) {
                    if let Some(v) = v {
                        out.push((*t, column.clone(), rollup::stat(&mut [*v], distribution)));
                    }
                }
            }
        }
        Tier::Minute => {
            let mut hour = from - from % HOUR_MS;
            while hour < to {
                let unsealed = lock(&inner.head).is_unsealed(series, hour);
                let block = if unsealed {
                    None
                } else {
                    read_block(
                        pool,
                        &inner.root,
                        PartitionId::of(Tier::Minute, hour),
                        series,
                        hour,
                    )?
                };
                match block {
                    Some(b) => push_block(&mut out, &b),
                    None if hour + HOUR_MS > raw_kept => {
                        let chunk = series_chunk(inner, pool, series, hour, hour + HOUR_MS)?;
                        push_block(&mut out, &rollup::minutes(&chunk, hour));
                    }
                    None => {}
                }
                hour += HOUR_MS;
            }
        }
        Tier::Hour => {
            let mut day = from - from % DAY_MS;
            while day < to {
                let mut block = read_block(
                    pool,
                    &inner.root,
                    PartitionId::of(Tier::Hour, day),
                    series,
                    day,
                )?;
                // Hours of the day without statistics yet (not sealed): from raw reports.
                let mut hour = day;
                while hour < (day + DAY_MS).min(to) {
                    let slot = ((hour - day) / HOUR_MS) as u32;
                    let present = block.as_ref().is_some_and(|b| b.slots.contains(&slot));
                    let unsealed = lock(&inner.head).is_unsealed(series, hour);
                    if (unsealed || !present) && hour + HOUR_MS > raw_kept && hour + HOUR_MS > from
                    {
                        let chunk = series_chunk(inner, pool, series, hour, hour + HOUR_MS)?;
                        if !chunk.is_empty() || present {
                            block = Some(rollup::put_hour(block, day, &chunk, hour));
                        }
                    }
                    hour += HOUR_MS;
                }
                if let Some(b) = block {
                    push_block(&mut out, &b);
                }
                day += DAY_MS;
            }
        }
    }
    Ok(out)
}

pub(super) fn steps(inner: &Inner, q: &StepQuery) -> Result<Vec<StepSeries>, StoreError> {
    let now = inner.now();
    let tier = tier_for(&inner.options.retention, now, q.from_ms, q.step_ms);
    let series = matching_series(inner, q.agent.as_deref(), q.task.as_deref());
    let step = q.step_ms.max(1);
    let mut pool = lock(&inner.query_pool);
    let mut out = Vec::new();
    for (id, key) in series {
        let mut slots = slots(inner, &mut pool, tier, id, q.from_ms, q.to_ms)?;
        if !q.fields.is_empty() {
            slots.retain(|(_, c, _)| q.fields.contains(&c.field));
        }
        if slots.is_empty() {
            continue;
        }
        // Group by (step, column).
        let mut groups: std::collections::BTreeMap<(u64, Column), Vec<Stat>> =
            std::collections::BTreeMap::new();
        for (start, column, stat) in slots {
            let k = (start - q.from_ms) / step;
            groups.entry((k, column)).or_default().push(stat);
        }
        let mut steps: Vec<StepRow> = Vec::new();
        for ((k, column), stats) in groups {
            let s = rollup::combine(&stats);
            let def = column.field.def();
            let stat = StepStat {
                count: s.count as u64,
                min: def.value(s.min),
                max: def.value(s.max),
                mean: def.scaled(s.sum as f64 / s.count as f64),
                quantiles: s.quantiles.map(|q| q.map(|v| def.value(v))),
                column,
            };
            let start_ms = q.from_ms + k * step;
            match steps.last_mut() {
                Some(row) if row.start_ms == start_ms => row.stats.push(stat),
                _ => steps.push(StepRow {
                    start_ms,
                    stats: vec![stat],
                }),
            }
        }
        out.push(StepSeries {
            agent: key.agent,
            task: key.task,
            target: key.target,
            tier: tier.dir_name(),
            steps,
        });
    }
    Ok(out)
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
