//! The samples of one read of the store, grouped by series and cut into requests: which
//! (series, column) is exported under which labels, each series' samples in time order, the
//! parts of at most `max_samples_per_send` samples and their encoded bodies, and the halves a
//! refused part is split into.

use super::proto::{RequestBuilder, SeriesLabels};
use crate::store::{Sequenced, Store};
use bytes::Bytes;
use std::collections::HashMap;

/// (series, column) ids of one store run, hashed as the store hashes its ids.
type IdMap<V> = HashMap<(u32, u32), V, crate::store::IdHash>;

/// What a (series, column) becomes: its encoded labels, and how a stored integer becomes a
/// value in the family's base unit.
struct Exported {
    labels: SeriesLabels,
    field: &'static crate::schema::FieldDef,
}

/// One (series, column): what it is exported as (`None`: it is not), and its samples of the
/// read being sent, in time order.
struct Slot {
    exported: Option<Exported>,
    points: Vec<(i64, f64)>,
}

/// One request: ranges of the samples of series, (series, column, start, end).
pub(super) type Part = Vec<((u32, u32), usize, usize)>;

/// The samples of one read, grouped by series. Kept from read to read (each series' labels
/// are encoded once, and its buffer is reused), so grouping costs one lookup per sample.
#[derive(Default)]
pub(super) struct Grouping {
    slots: IdMap<Slot>,
    /// The series with samples in this read, in the order they were first met.
    order: Vec<(u32, u32)>,
}

impl Grouping {
    /// Groups the samples of `rows` (the previous read's are dropped).
    pub(super) fn fill(&mut self, rows: &[Sequenced], store: &Store) {
        for key in self.order.drain(..) {
            if let Some(slot) = self.slots.get_mut(&key) {
                slot.points.clear();
            }
        }
        for row in rows {
            let time = row.time_ms.min(i64::MAX as u64) as i64;
            for (column, stored) in &row.values {
                let key = (row.series, *column);
                let slot = self.slots.entry(key).or_insert_with(|| Slot {
                    exported: exported(store, row.series, *column),
                    points: Vec::new(),
                });
                let Some(e) = &slot.exported else {
                    continue;
                };
                if slot.points.is_empty() {
                    self.order.push(key);
                }
                slot.points
                    .push((time, e.field.value(*stored) / e.field.prometheus_divisor));
            }
        }
        for key in &self.order {
            if let Some(slot) = self.slots.get_mut(key)
                && !slot.points.is_sorted_by_key(|(t, _)| *t)
            {
                slot.points.sort_by_key(|(t, _)| *t);
            }
        }
    }

    /// The read cut into requests of at most `max` samples.
    fn parts(&self, max: usize) -> Vec<Part> {
        let max = max.max(1);
        let mut parts = Vec::new();
        let mut part: Part = Vec::new();
        let mut in_part = 0;
        for key in &self.order {
            let n = self.slots.get(key).map_or(0, |s| s.points.len());
            let mut start = 0;
            while start < n {
                let end = (start + max).min(n);
                if in_part + (end - start) > max && !part.is_empty() {
                    parts.push(std::mem::take(&mut part));
                    in_part = 0;
                }
                in_part += end - start;
                part.push((*key, start, end));
                start = end;
            }
        }
        if !part.is_empty() {
            parts.push(part);
        }
        parts
    }

    /// The read cut into requests of at most `max` samples, each encoded.
    pub(super) fn encode(&self, max: usize) -> Encoded {
        let parts = self.parts(max);
        let bodies = parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let (body, count) = self.body(part);
                (i, body, count)
            })
            .collect();
        Encoded { parts, bodies }
    }

    /// The body of a request, and how many samples it carries.
    pub(super) fn body(&self, part: &Part) -> (Bytes, usize) {
        let mut builder = RequestBuilder::default();
        for (key, start, end) in part {
            if let Some(Slot {
                exported: Some(e),
                points,
            }) = self.slots.get(key)
            {
                builder.series(&e.labels, &points[*start..*end]);
            }
        }
        let n = builder.samples();
        (Bytes::from(builder.finish()), n)
    }
}

/// A read cut into requests: the parts (kept to split a refused one) and their bodies, each
/// with its part's index and how many samples it carries.
pub(super) struct Encoded {
    pub(super) parts: Vec<Part>,
    pub(super) bodies: Vec<(usize, Bytes, usize)>,
}

/// What a (series, column) of the store is exported as.
fn exported(store: &Store, series: u32, column: u32) -> Option<Exported> {
    let key = store.series_key(series)?;
    let column_def = store.column(column)?;
    let def = column_def.field.def();
    if !crate::server::prometheus::exported(def) {
        return None;
    }
    let mut labels = crate::server::prometheus::reading_labels(
        def,
        &key.agent,
        &key.task,
        key.target.as_deref(),
        column_def.instance.as_deref(),
    );
    labels.push(("__name__", def.prometheus));
    Some(Exported {
        labels: SeriesLabels::new(&labels),
        field: def,
    })
}

/// A part cut in two: its series in halves, or the samples of its one series.
pub(super) fn halves(mut part: Part) -> (Part, Part) {
    if part.len() > 1 {
        let second = part.split_off(part.len() / 2);
        return (part, second);
    }
    let Some((key, start, end)) = part.pop() else {
        return (Vec::new(), Vec::new());
    };
    let middle = start + (end - start) / 2;
    (vec![(key, start, middle)], vec![(key, middle, end)])
}

pub(super) fn samples_in(part: &Part) -> usize {
    part.iter().map(|(_, start, end)| end - start).sum()
}
