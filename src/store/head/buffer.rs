//! A head buffer: the reports of one series within one hour, column by column, sorted by
//! time, with their sequence numbers and the oldest log segment that holds them.

use crate::store::chunk::{Column, RawChunk};
use crate::store::wal::WalRow;

/// Marks a value a report did not carry.
pub(super) const ABSENT: i64 = i64::MIN;

/// The reports of one series within one hour, sorted by time.
#[derive(Debug)]
pub(super) struct Buffer {
    pub(super) times: Vec<u64>,
    columns: Vec<u32>,
    /// `values[c][i]`: column `columns[c]` of report `i`, [`ABSENT`] when not measured.
    values: Vec<Vec<i64>>,
    /// The ingestion sequence number of each report.
    seqs: Vec<u64>,
    /// The largest of them, and whether they ascend with the times (reports came in time
    /// order): then a sequence number is found by binary search.
    max_seq: u64,
    seq_sorted: bool,
    /// The oldest log segment holding one of these reports.
    pub(super) min_segment: u64,
    /// When (server clock) the first report arrived.
    pub(super) created_ms: u64,
}

impl Buffer {
    /// An empty buffer, its first report to come from log segment `segment` at `now_ms`.
    pub(super) fn new(segment: u64, now_ms: u64) -> Buffer {
        Buffer {
            times: Vec::new(),
            columns: Vec::new(),
            values: Vec::new(),
            seqs: Vec::new(),
            max_seq: 0,
            seq_sorted: true,
            min_segment: segment,
            created_ms: now_ms,
        }
    }

    pub(super) fn position(&self, t: u64) -> Result<usize, usize> {
        self.times.binary_search(&t)
    }

    pub(super) fn insert(&mut self, row: &WalRow) {
        let Err(at) = self.position(row.time_ms) else {
            return;
        };
        if self.columns.is_empty() {
            // Most buffers hold a few reports of one shape: room for its columns exactly.
            self.columns.reserve_exact(row.values.len());
            self.values.reserve_exact(row.values.len());
        }
        for (column, _) in &row.values {
            if !self.columns.contains(column) {
                self.columns.push(*column);
                self.values.push(vec![ABSENT; self.times.len()]);
            }
        }
        self.seq_sorted &= at == self.times.len() && row.seq >= self.max_seq;
        self.max_seq = self.max_seq.max(row.seq);
        self.seqs.insert(at, row.seq);
        self.times.insert(at, row.time_ms);
        for (c, column) in self.columns.iter().enumerate() {
            let v = row
                .values
                .iter()
                .find(|(id, _)| id == column)
                .map_or(ABSENT, |(_, v)| *v);
            self.values[c].insert(at, v);
        }
    }

    pub(super) fn chunk(&self, columns: &[Column], from: u64, to: u64) -> RawChunk {
        let start = self.times.partition_point(|t| *t < from);
        let end = self.times.partition_point(|t| *t < to);
        RawChunk {
            times: self.times[start..end].to_vec(),
            columns: self
                .columns
                .iter()
                .map(|c| columns[*c as usize].clone())
                .collect(),
            values: self
                .values
                .iter()
                .map(|v| {
                    v[start..end]
                        .iter()
                        .map(|x| (*x != ABSENT).then_some(*x))
                        .collect()
                })
                .collect(),
            seqs: self.seqs[start..end].to_vec(),
        }
    }

    /// Appends the reports numbered in `[lo, hi)` to `out`.
    pub(super) fn sequenced(
        &self,
        series: u32,
        lo: u64,
        hi: u64,
        out: &mut Vec<crate::store::Sequenced>,
    ) {
        if self.max_seq < lo {
            return;
        }
        let push = |i: usize| {
            let values = self
                .columns
                .iter()
                .zip(&self.values)
                .filter(|(_, v)| v[i] != ABSENT)
                .map(|(c, v)| (*c, v[i]))
                .collect();
            out.push(crate::store::Sequenced {
                seq: self.seqs[i],
                series,
                time_ms: self.times[i],
                values,
            });
        };
        if self.seq_sorted {
            let start = self.seqs.partition_point(|s| *s < lo);
            let end = self.seqs.partition_point(|s| *s < hi);
            (start..end).for_each(push);
        } else {
            (0..self.seqs.len())
                .filter(|i| (lo..hi).contains(&self.seqs[*i]))
                .for_each(push);
        }
    }

    /// Removes the reports at `times` (sorted); returns how many went.
    pub(super) fn remove(&mut self, times: &[u64]) -> usize {
        let keep: Vec<bool> = self
            .times
            .iter()
            .map(|t| times.binary_search(t).is_err())
            .collect();
        let before = self.times.len();
        let mut i = 0;
        self.times.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        let mut i = 0;
        self.seqs.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        for column in &mut self.values {
            let mut i = 0;
            column.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        before - self.times.len()
    }
}
