//! Gathering one series' statistics into steps ([`StepBuilder`]), from rollup blocks and raw
//! chunks fed in time order.

use super::steps::{StepRow, StepStat};
use crate::schema::Field;
use crate::store::chunk::{Column, RawChunk, RollupBlock, Stat};
use crate::store::rollup;

/// Statistics of one series gathered into steps as slots arrive in time order: per column, a
/// running count, min, max and sum, and the slots' own percentiles where the field keeps its
/// distribution.
pub(super) struct StepBuilder<'a> {
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
    pub(super) fn new(from: u64, step: u64, fields: &'a [Field]) -> Self {
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
    pub(super) fn add_block(&mut self, block: &RollupBlock, from: u64, to: u64) {
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
    pub(super) fn add_chunk(&mut self, chunk: &RawChunk) {
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

    pub(super) fn finish(mut self) -> Vec<StepRow> {
        self.flush();
        self.out
    }
}
