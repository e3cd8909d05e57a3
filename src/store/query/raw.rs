//! Raw queries: the reports of the matching series in a time range, oldest first, a page at a
//! time with a cursor (time and series of the page's last report); without a start, the newest
//! page before the end.

use super::{matching_series, merge, partitions_chunk};
use crate::schema::Reading;
use crate::store::chunk::RawChunk;
use crate::store::partition::{self, PartitionId, Tier};
use crate::store::wal::SeriesKey;
use crate::store::{Inner, Report, StoreError, lock};

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

fn record_of(key: &SeriesKey, chunk: &RawChunk, i: usize) -> Report {
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

pub(in crate::store) fn raw(inner: &Inner, q: &RawQuery) -> Result<RawPage, StoreError> {
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
    let partitions = partitions_in_range(inner, from, to, descending)?;
    let window = Window {
        from,
        to,
        limit,
        descending,
    };
    let chunks = read_series(inner, &series, &partitions, &window)?;
    let (rows, more) = page_rows(&chunks, &series, after, &window);
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

/// What a page is read over: `[from, to)`, at most `limit` reports, the newest first when
/// `descending`.
struct Window {
    from: u64,
    to: u64,
    limit: usize,
    descending: bool,
}

/// Only the raw partition files that exist and overlap the range, in the order they are read.
fn partitions_in_range(
    inner: &Inner,
    from: u64,
    to: u64,
    descending: bool,
) -> Result<Vec<PartitionId>, StoreError> {
    let mut partitions: Vec<PartitionId> = partition::list(&inner.root, Tier::Raw)
        .map_err(StoreError::io(&inner.root))?
        .into_iter()
        .filter(|p| p.end_ms() > from && p.start_ms < to)
        .collect();
    if descending {
        partitions.reverse();
    }
    Ok(partitions)
}

/// Per series (by its index in `series`), its reports in the window: the head's, then those of
/// partition after partition until the series alone has more than a page.
fn read_series(
    inner: &Inner,
    series: &[(u32, SeriesKey)],
    partitions: &[PartitionId],
    window: &Window,
) -> Result<Vec<(usize, RawChunk)>, StoreError> {
    let &Window {
        from,
        to,
        limit,
        descending,
    } = window;
    let mut pool = lock(&inner.query_pool);
    let mut chunks: Vec<(usize, RawChunk)> = Vec::new();
    for (si, (id, _)) in series.iter().enumerate() {
        // The head first (the newest reports), then partition by partition until this series
        // alone has more than a page.
        let mut chunk = lock(&inner.head).chunk(*id, from, to);
        for p in partitions {
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
    Ok(chunks)
}

/// The page's rows, in (time, series) order after the cursor: (time, series, chunk index,
/// row); and whether more follow.
fn page_rows(
    chunks: &[(usize, RawChunk)],
    series: &[(u32, SeriesKey)],
    after: Option<(u64, u32)>,
    window: &Window,
) -> (Vec<(u64, u32, usize, usize)>, bool) {
    let limit = window.limit;
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
    if window.descending {
        let skip = rows.len().saturating_sub(limit);
        (rows[skip..].to_vec(), false)
    } else {
        let more = rows.len() > limit;
        rows.truncate(limit);
        (rows, more)
    }
}
