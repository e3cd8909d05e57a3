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

/// Statistics of one series gathered into steps as slots arrive in time order: per column, a
/// running count, min, max and sum, and the slots' own percentiles where the field keeps its
/// distribution.
struct StepBuilder<'a> {
    from: u64,
    step: u64,
    fields: &'a [Field],
    columns: Vec<Column>,
    current: Option<u64>,
    acc: Vec<Accumulated>,
    out: Vec<StepRow>,
}

#[derive(Default, Clone)]
struct Accumulated {
    count: i64,
    min: i64,
    max: i64,
    sum: i64,
    parts: Vec<Stat>,
}

impl<'a> StepBuilder<'a> {
    fn new(from: u64, step: u64, fields: &'a [Field]) -> Self {
        StepBuilder {
            from,
            step: step.max(1),
            fields,
            columns: Vec::new(),
            current: None,
            acc: Vec::new(),
            out: Vec::new(),
        }
    }

    /// The builder's index of a column; `None` when the query leaves its field out.
    fn column(&mut self, column: &Column) -> Option<usize> {
        if !self.fields.is_empty() && !self.fields.contains(&column.field) {
            return None;
        }
        if let Some(i) = self.columns.iter().position(|c| c == column) {
            return Some(i);
        }
        self.columns.push(column.clone());
        self.acc.push(Accumulated::default());
        Some(self.columns.len() - 1)
    }

    /// Adds one slot's statistics (slots come in time order).
    fn add(&mut self, start: u64, column: usize, stat: &Stat) {
        if stat.count == 0 || start < self.from {
            return;
        }
        let k = (start - self.from) / self.step;
        if self.current != Some(k) {
            self.flush();
            self.current = Some(k);
        }
        let a = &mut self.acc[column];
        if a.count == 0 {
            a.min = stat.min;
            a.max = stat.max;
        } else {
            a.min = a.min.min(stat.min);
            a.max = a.max.max(stat.max);
        }
        a.count += stat.count;
        a.sum = a.sum.saturating_add(stat.sum);
        if stat.quantiles.is_some() {
            a.parts.push(*stat);
        }
    }

    /// Adds every slot of a rollup block within `[from, to)`, slot by slot.
    fn add_block(&mut self, block: &RollupBlock, from: u64, to: u64) {
        let index: Vec<Option<usize>> = block.columns.iter().map(|c| self.column(c)).collect();
        let (a, b) = block.slot_range(from, to);
        for (s, slot) in block.slots.iter().enumerate().take(b).skip(a) {
            let start = block.start_ms + u64::from(*slot) * block.slot_ms;
            for (c, i) in index.iter().enumerate() {
                if let Some(i) = i {
                    self.add(start, *i, &block.stats[c][s]);
                }
            }
        }
    }

    /// Adds raw reports, each a slot of its own.
    fn add_chunk(&mut self, chunk: &RawChunk) {
        let index: Vec<Option<usize>> = chunk.columns.iter().map(|c| self.column(c)).collect();
        for (r, t) in chunk.times.iter().enumerate() {
            for (c, i) in index.iter().enumerate() {
                if let (Some(i), Some(v)) = (i, chunk.values[c][r]) {
                    let distribution = chunk.columns[c].field.def().distribution;
                    let stat = Stat {
                        count: 1,
                        min: v,
                        max: v,
                        sum: v,
                        quantiles: distribution.then_some([v; 3]),
                    };
                    self.add(*t, *i, &stat);
                }
            }
        }
    }

    fn flush(&mut self) {
        let Some(k) = self.current.take() else {
            return;
        };
        let mut stats = Vec::new();
        for (column, a) in self.columns.iter().zip(&mut self.acc) {
            if a.count == 0 {
                continue;
            }
            let def = column.field.def();
            let quantiles = (!a.parts.is_empty())
                .then(|| rollup::combine(&a.parts).quantiles)
                .flatten();
            stats.push(StepStat {
                column: column.clone(),
                count: a.count as u64,
                min: def.value(a.min),
                max: def.value(a.max),
                mean: def.scaled(a.sum as f64 / a.count as f64),
                quantiles: quantiles.map(|q| q.map(|v| def.value(v))),
            });
            *a = Accumulated::default();
        }
        stats.sort_by(|x, y| x.column.cmp(&y.column));
        if !stats.is_empty() {
            self.out.push(StepRow {
                start_ms: self.from + k * self.step,
                stats,
            });
        }
    }

    fn finish(mut self) -> Vec<StepRow> {
        self.flush();
        self.out
    }
}

/// Feeds the statistics of one series over `[from, to)` from `tier` to `steps`, in time order.
#[allow(clippy::too_many_arguments)]
fn feed(
    inner: &Inner,
    pool: &mut Pool,
    tier: Tier,
    partitions: &[PartitionId],
    series: u32,
    from: u64,
    to: u64,
    steps: &mut StepBuilder<'_>,
) -> Result<(), StoreError> {
    let now = inner.now();
    let raw_kept = now.saturating_sub(inner.options.retention.raw.as_millis() as u64);
    // What can hold data: the tier's files and the raw files (for hours not sealed yet), and
    // the head. A range of years is walked only where they are.
    let mut lo = partitions
        .iter()
        .map(|p| p.start_ms)
        .min()
        .unwrap_or(u64::MAX);
    let mut hi = partitions.iter().map(|p| p.end_ms()).max().unwrap_or(0);
    if let Some((a, b)) = lock(&inner.head).span(series) {
        lo = lo.min(a);
        hi = hi.max(b);
    }
    let (from, to) = (from.max(lo), to.min(hi));
    if from >= to {
        return Ok(());
    }
    match tier {
        Tier::Raw | Tier::Alerts => {
            steps.add_chunk(&series_chunk(inner, pool, series, from, to)?);
        }
        Tier::Minute => {
            let mut day = from - from % DAY_MS;
            while day < to {
                let block = read_block(
                    pool,
                    &inner.root,
                    PartitionId::of(Tier::Minute, day),
                    series,
                    day,
                )?;
                // Hour by hour, in order: sealed hours from the day's block, the others (the
                // current hour, late reports not sealed yet) from raw reports.
                let mut hour = day.max(from - from % HOUR_MS);
                while hour < (day + DAY_MS).min(to) {
                    let span = (hour.max(from), (hour + HOUR_MS).min(to));
                    let present = block
                        .as_ref()
                        .is_some_and(|b| b.has_slots(hour, hour + HOUR_MS));
                    let unsealed = lock(&inner.head).is_unsealed(series, hour);
                    if (unsealed || !present) && hour + HOUR_MS > raw_kept {
                        let chunk = series_chunk(inner, pool, series, hour, hour + HOUR_MS)?;
                        if !chunk.is_empty() {
                            let b = rollup::block(&chunk, hour, MINUTE_MS);
                            steps.add_block(&b, span.0, span.1);
                        } else if let Some(b) = &block {
                            steps.add_block(b, span.0, span.1);
                        }
                    } else if let Some(b) = &block {
                        steps.add_block(b, span.0, span.1);
                    }
                    hour += HOUR_MS;
                }
                day += DAY_MS;
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
                    steps.add_block(&b, from, to);
                }
                day += DAY_MS;
            }
        }
    }
    Ok(())
}

pub(super) fn steps(inner: &Inner, q: &StepQuery) -> Result<Vec<StepSeries>, StoreError> {
    let now = inner.now();
    let tier = tier_for(&inner.options.retention, now, q.from_ms, q.step_ms);
    let series = matching_series(inner, q.agent.as_deref(), q.task.as_deref());
    // The files that can hold the range's data: the tier's and the raw tier's.
    let mut partitions = Vec::new();
    for t in [tier, Tier::Raw] {
        partitions.extend(partition::list(&inner.root, t).map_err(StoreError::io(&inner.root))?);
    }
    partitions.sort_by_key(|p| p.start_ms);
    let mut pool = lock(&inner.query_pool);
    let mut out = Vec::new();
    for (id, key) in series {
        let mut builder = StepBuilder::new(q.from_ms, q.step_ms, &q.fields);
        feed(
            inner,
            &mut pool,
            tier,
            &partitions,
            id,
            q.from_ms,
            q.to_ms,
            &mut builder,
        )?;
        let steps = builder.finish();
        if steps.is_empty() {
            continue;
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
