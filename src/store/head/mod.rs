//! The head: reports that are in the write-ahead log but not yet in a chunk, in memory, per
//! series and hour, column by column. It also knows every series (id and name), the newest
//! report of each (for `/metrics`), and which hours have chunks that are not sealed yet.
//!
//! The head is bounded: maintenance moves each buffer into a chunk when its hour is over,
//! when it is older than [`FLUSH_AGE_MS`], or, largest first, when the head holds more than its
//! budget of reports.
//!
//! This file holds the head's series, columns and buffers; `buffer.rs` one series-hour's
//! reports, `latest.rs` the newest values, `ids.rs` the hashing of id-keyed maps.

mod buffer;
mod ids;
mod latest;

pub use ids::IdHash;

use super::chunk::{Column, RawChunk};
use super::partition::HOUR_MS;
use super::wal::{SeriesKey, Wal, WalRecord, WalRow};
use crate::schema::SampleKind;
use buffer::Buffer;
use latest::{Latest, offer};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// A buffer is moved into a chunk once it is this old, so the log read at start stays short.
pub const FLUSH_AGE_MS: u64 = 2 * 60_000;

#[derive(Debug)]
struct SeriesState {
    key: SeriesKey,
    /// Recorded in the catalogue.
    persisted: bool,
    /// The newest time moved into a chunk: outer `None` until looked up.
    flushed_max: Option<Option<u64>>,
    /// Boxed: a map node holds room for eleven entries, and most series have one buffer (11
    /// inline buffers were 1.5 KB per series; 11 pointers are 88 bytes).
    buffers: BTreeMap<u64, Box<Buffer>>,
    /// The newest values per sample of the series (a sample kind on an instance: the ping,
    /// a TCP and a UDP iperf test, each interface), with their time: a newer report of one
    /// sample does not hide another's, and a sample's missing values are missing.
    latest: Vec<Latest>,
}

/// What maintenance moves into a chunk.
#[derive(Debug)]
pub struct FlushJob {
    pub series: u32,
    pub hour_ms: u64,
    pub chunk: RawChunk,
    /// The hour is over: seal it (merge its chunks, compute its rollups).
    pub seal: bool,
}

/// Counters of the head, for the status.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HeadStats {
    pub series: usize,
    pub buffers: usize,
    pub reports: usize,
    pub max_reports: usize,
    pub unsealed_hours: usize,
}

/// Decoded chunk times, for duplicate checks of late reports: (series, chunk's first time).
pub type TimesCache = HashMap<(u32, u64), Arc<Vec<u64>>>;
const TIMES_CACHE_ENTRIES: usize = 512;

#[derive(Debug)]
pub struct Head {
    series: HashMap<u32, SeriesState, IdHash>,
    by_key: HashMap<SeriesKey, u32>,
    /// The same, by agent name first: looked up on every report without building a key.
    by_agent: HashMap<String, Vec<(String, Option<String>, u32)>>,
    next_series: u32,
    columns: Vec<Column>,
    /// Column ids per field, with the instance: looked up on every reading without a copy.
    column_ids: Vec<Vec<(Option<String>, u32)>>,
    /// The sample (kind and instance) each column belongs to, as a small number: the newest
    /// values are kept per sample.
    column_sample: Vec<u32>,
    samples: Vec<(SampleKind, Option<String>)>,
    rows: usize,
    max_rows: usize,
    unsealed: BTreeSet<(u64, u32)>,
    times_cache: TimesCache,
}

impl Head {
    pub fn new(max_rows: usize) -> Head {
        Head {
            series: HashMap::default(),
            by_key: HashMap::new(),
            by_agent: HashMap::new(),
            next_series: 1,
            columns: Vec::new(),
            column_ids: vec![Vec::new(); crate::schema::FIELDS.len()],
            column_sample: Vec::new(),
            samples: Vec::new(),
            rows: 0,
            max_rows: max_rows.max(1000),
            unsealed: BTreeSet::new(),
            times_cache: HashMap::new(),
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Whether the head holds more reports than its budget (maintenance should run now).
    pub fn over_budget(&self) -> bool {
        self.rows > self.max_rows
    }

    /// Past twice its budget the head refuses reports: maintenance cannot move them to disk.
    pub fn over_hard_limit(&self) -> bool {
        self.rows >= 2 * self.max_rows
    }

    /// Learns a series (from the catalogue or the log); returns the id it has now (a known
    /// name keeps its id; an id taken by another name gets a new one).
    pub fn know_series(&mut self, id: u32, key: SeriesKey, persisted: bool) -> u32 {
        if let Some(existing) = self.by_key.get(&key) {
            return *existing;
        }
        let id = if id == 0 || self.series.contains_key(&id) {
            self.next_series
        } else {
            id
        };
        self.next_series = self.next_series.max(id + 1);
        self.by_key.insert(key.clone(), id);
        self.by_agent.entry(key.agent.clone()).or_default().push((
            key.task.clone(),
            key.target.clone(),
            id,
        ));
        self.series.insert(
            id,
            SeriesState {
                key,
                persisted,
                flushed_max: None,
                buffers: BTreeMap::new(),
                latest: Vec::new(),
            },
        );
        id
    }

    /// The id of a series, made when new.
    pub fn series_id(&mut self, agent: &str, task: &str, target: Option<&str>) -> u32 {
        if let Some(list) = self.by_agent.get(agent)
            && let Some((_, _, id)) = list
                .iter()
                .find(|(t, g, _)| t == task && g.as_deref() == target)
        {
            return *id;
        }
        let key = SeriesKey {
            agent: agent.to_string(),
            task: task.to_string(),
            target: target.map(str::to_string),
        };
        self.know_series(0, key, false)
    }

    /// Every series id with its name.
    pub fn all_series(&self) -> Vec<(u32, SeriesKey)> {
        let mut out: Vec<(u32, SeriesKey)> = self
            .series
            .iter()
            .map(|(id, s)| (*id, s.key.clone()))
            .collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }

    pub fn column_id(&mut self, column: &Column) -> u32 {
        self.column_of(column.field, column.instance.as_deref())
    }

    /// The id of the column of `field` on `instance`, made when new.
    pub fn column_of(&mut self, field: crate::schema::Field, instance: Option<&str>) -> u32 {
        let list = &self.column_ids[field as usize];
        if let Some((_, id)) = list.iter().find(|(i, _)| i.as_deref() == instance) {
            return *id;
        }
        let id = self.columns.len() as u32;
        let column = Column {
            field,
            instance: instance.map(str::to_string),
        };
        let sample = (field.def().sample, column.instance.clone());
        let sample_id = match self.samples.iter().position(|s| *s == sample) {
            Some(i) => i as u32,
            None => {
                self.samples.push(sample);
                self.samples.len() as u32 - 1
            }
        };
        self.column_sample.push(sample_id);
        self.columns.push(column);
        self.column_ids[field as usize].push((instance.map(str::to_string), id));
        id
    }

    pub fn contains(&self, series: u32, t: u64) -> bool {
        self.series
            .get(&series)
            .and_then(|s| s.buffers.get(&(t - t % HOUR_MS)))
            .is_some_and(|b| b.position(t).is_ok())
    }

    pub fn flushed_max(&self, series: u32) -> Option<Option<u64>> {
        self.series.get(&series).and_then(|s| s.flushed_max)
    }

    pub fn set_flushed_max(&mut self, series: u32, t: Option<u64>) {
        if let Some(s) = self.series.get_mut(&series) {
            s.flushed_max = Some(t);
        }
    }

    pub fn chunk_times_cache(&mut self) -> &mut TimesCache {
        if self.times_cache.len() > TIMES_CACHE_ENTRIES {
            self.times_cache.clear();
        }
        &mut self.times_cache
    }

    /// The definitions the current log segment lacks for `rows` (written before them).
    pub fn wal_records(&self, wal: &Wal, rows: &[WalRow]) -> Vec<WalRecord> {
        let mut out = Vec::with_capacity(rows.len() + 4);
        let mut series_done = std::collections::HashSet::new();
        let mut columns_done = std::collections::HashSet::new();
        for row in rows {
            if !wal.has_series(row.series)
                && series_done.insert(row.series)
                && let Some(s) = self.series.get(&row.series)
            {
                out.push(WalRecord::Series {
                    id: row.series,
                    key: s.key.clone(),
                });
            }
            for (c, _) in &row.values {
                if !wal.has_column(*c) && columns_done.insert(*c) {
                    out.push(WalRecord::Column {
                        id: *c,
                        column: self.columns[*c as usize].clone(),
                    });
                }
            }
        }
        out
    }

    /// Adds a report that is now in log segment `segment`.
    pub fn insert(&mut self, row: WalRow, segment: u64, now_ms: u64) {
        let Some(s) = self.series.get_mut(&row.series) else {
            return;
        };
        let hour = row.time_ms - row.time_ms % HOUR_MS;
        let buffer = s
            .buffers
            .entry(hour)
            .or_insert_with(|| Box::new(Buffer::new(segment, now_ms)));
        buffer.min_segment = buffer.min_segment.min(segment);
        let before = buffer.times.len();
        buffer.insert(&row);
        if buffer.times.len() > before {
            self.rows += 1;
        }
        offer(&mut s.latest, &self.column_sample, row.time_ms, &row.values);
    }

    /// The head's reports of a series in `[from, to)`, as a chunk (empty when none).
    pub fn chunk(&self, series: u32, from: u64, to: u64) -> RawChunk {
        let mut out = RawChunk::default();
        let Some(s) = self.series.get(&series) else {
            return out;
        };
        let first_hour = from - from % HOUR_MS;
        for (_, buffer) in s.buffers.range(first_hour..to) {
            out = super::query::merge(out, buffer.chunk(&self.columns, from, to));
        }
        out
    }

    /// Appends every report of the head numbered in `[lo, hi)` to `out` (in no order).
    pub fn sequenced(&self, lo: u64, hi: u64, out: &mut Vec<super::Sequenced>) {
        for (id, s) in &self.series {
            for buffer in s.buffers.values() {
                buffer.sequenced(*id, lo, hi, out);
            }
        }
    }

    /// The column of an id (from [`Head::column_of`]).
    pub fn column(&self, id: u32) -> Option<&Column> {
        self.columns.get(id as usize)
    }

    /// The name of a series.
    pub fn series_key(&self, id: u32) -> Option<&SeriesKey> {
        self.series.get(&id).map(|s| &s.key)
    }

    /// The hours the head holds reports of a series in: (first hour's start, last hour's end).
    pub fn span(&self, series: u32) -> Option<(u64, u64)> {
        let s = self.series.get(&series)?;
        let first = *s.buffers.keys().next()?;
        let last = *s.buffers.keys().next_back()?;
        Some((first, last + HOUR_MS))
    }

    /// The buffers maintenance should move into chunks at `now_ms`: hours that ended before
    /// `closed_before`, buffers older than the flush age, and, largest first, what passes the
    /// budget. Copies; the buffers stay until [`Head::flushed`] removes what was written.
    pub fn flush_jobs(
        &self,
        now_ms: u64,
        closed_before: u64,
        wal_oldest_wanted: u64,
    ) -> Vec<FlushJob> {
        let mut jobs = Vec::new();
        let mut rest: Vec<(usize, u32, u64)> = Vec::new();
        let mut planned = 0;
        for (id, s) in &self.series {
            for (hour, buffer) in &s.buffers {
                let closed = hour + HOUR_MS <= closed_before;
                let old = now_ms.saturating_sub(buffer.created_ms) >= FLUSH_AGE_MS;
                let pins_log = buffer.min_segment < wal_oldest_wanted;
                if closed || old || pins_log {
                    planned += buffer.times.len();
                    jobs.push(FlushJob {
                        series: *id,
                        hour_ms: *hour,
                        chunk: buffer.chunk(&self.columns, 0, u64::MAX),
                        seal: closed,
                    });
                } else {
                    rest.push((buffer.times.len(), *id, *hour));
                }
            }
        }
        let budget = self.max_rows * 3 / 4;
        if self.rows.saturating_sub(planned) > budget {
            rest.sort_unstable_by(|a, b| b.cmp(a));
            let mut left = self.rows - planned;
            for (len, id, hour) in rest {
                if left <= budget {
                    break;
                }
                if let Some(b) = self.series.get(&id).and_then(|s| s.buffers.get(&hour)) {
                    jobs.push(FlushJob {
                        series: id,
                        hour_ms: hour,
                        chunk: b.chunk(&self.columns, 0, u64::MAX),
                        seal: false,
                    });
                    left -= len;
                }
            }
        }
        // Oldest hours first: sealing in order keeps the hour rollups' blocks in order.
        jobs.sort_by_key(|j| (j.hour_ms, j.series));
        jobs
    }

    /// Removes reports that are now in chunks.
    pub fn flushed(&mut self, series: u32, hour_ms: u64, times: &[u64]) {
        let Some(s) = self.series.get_mut(&series) else {
            return;
        };
        if let Some(&newest) = times.last() {
            let known = s.flushed_max.flatten();
            s.flushed_max = Some(Some(known.map_or(newest, |k| k.max(newest))));
        }
        if let Some(buffer) = s.buffers.get_mut(&hour_ms) {
            self.rows -= buffer.remove(times);
            if buffer.times.is_empty() {
                s.buffers.remove(&hour_ms);
            }
        }
    }

    /// The oldest log segment still holding a report of the head (`None`: none does).
    pub fn oldest_segment(&self) -> Option<u64> {
        self.series
            .values()
            .flat_map(|s| s.buffers.values())
            .map(|b| b.min_segment)
            .min()
    }

    /// Series not yet in the catalogue.
    pub fn unpersisted(&self) -> Vec<(u32, SeriesKey)> {
        self.series
            .iter()
            .filter(|(_, s)| !s.persisted)
            .map(|(id, s)| (*id, s.key.clone()))
            .collect()
    }

    pub fn mark_persisted(&mut self, ids: &[u32]) {
        for id in ids {
            if let Some(s) = self.series.get_mut(id) {
                s.persisted = true;
            }
        }
    }

    pub fn mark_unsealed(&mut self, series: u32, hour_ms: u64) {
        self.unsealed.insert((hour_ms, series));
    }

    pub fn mark_sealed(&mut self, series: u32, hour_ms: u64) {
        self.unsealed.remove(&(hour_ms, series));
    }

    /// Hours with unsealed chunks that ended before `closed_before`, and that have no buffer
    /// (those come as flush jobs).
    pub fn unsealed_closed(&self, closed_before: u64) -> Vec<(u32, u64)> {
        self.unsealed
            .iter()
            .take_while(|(hour, _)| hour + HOUR_MS <= closed_before)
            .filter(|(hour, series)| {
                !self
                    .series
                    .get(series)
                    .is_some_and(|s| s.buffers.contains_key(hour))
            })
            .map(|(hour, series)| (*series, *hour))
            .collect()
    }

    /// Whether an hour of a series has chunks that are not sealed.
    pub fn is_unsealed(&self, series: u32, hour_ms: u64) -> bool {
        self.unsealed.contains(&(hour_ms, series))
            || self
                .series
                .get(&series)
                .is_some_and(|s| s.buffers.contains_key(&hour_ms))
    }

    pub fn stats(&self) -> HeadStats {
        HeadStats {
            series: self.series.len(),
            buffers: self.series.values().map(|s| s.buffers.len()).sum(),
            reports: self.rows,
            max_reports: self.max_rows,
            unsealed_hours: self.unsealed.len(),
        }
    }
}
