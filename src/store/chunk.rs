//! The compressed forms kept in the partition files: a raw chunk (the reports of one series
//! within one hour, column by column) and a rollup block (per-minute or per-hour statistics of
//! one series). Numbers are the schema's stored integers ([`crate::schema::FieldDef::quantize`]),
//! compressed with pco (delta and entropy coding chosen per column). Every blob ends with a
//! CRC-32 of what precedes it, so damage is found by `nms store check` and never decoded into
//! wrong values. The layouts are documented in docs/STORE.md.

use crate::schema::Field;
use crate::wire::codec::{Reader, Writer};

/// Layout version of both blob kinds; a raw chunk that carries ingestion sequence numbers is
/// [`VERSION_SEQUENCED`].
const VERSION: u8 = 1;
/// A raw chunk with the ingestion sequence number of each report (after its times).
const VERSION_SEQUENCED: u8 = 2;
/// pco's effort (0-12; its default is 8): 6 compresses typical reports within a few percent
/// of 8 at about half the time.
const COMPRESSION_LEVEL: usize = 6;

/// A column of a chunk or block: a field, measured on an instance (an interface, a transport).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Column {
    pub field: Field,
    pub instance: Option<String>,
}

/// Why a blob could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("checksum mismatch (the blob is damaged)")]
    Checksum,
    #[error("unknown layout version {0}")]
    Version(u8),
    #[error("{0}")]
    Layout(String),
    #[error("compressed numbers: {0}")]
    Numbers(String),
}

fn layout(e: impl std::fmt::Display) -> ChunkError {
    ChunkError::Layout(e.to_string())
}

/// The reports of one series over a span: times and, per column, the values (None: not
/// measured in that report).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawChunk {
    pub times: Vec<u64>,
    pub columns: Vec<Column>,
    /// `values[c][i]`: column `c` of report `i`.
    pub values: Vec<Vec<Option<i64>>>,
    /// The ingestion sequence number of each report (the order the store accepted them in,
    /// what remote write follows), or empty when none is known (chunks written before
    /// sequence numbers, bulk loads): then every report counts as sequence 0.
    pub seqs: Vec<u64>,
}

fn compress(numbers: &[i64]) -> Result<Vec<u8>, ChunkError> {
    if numbers.is_empty() {
        return Ok(Vec::new());
    }
    let config = pco::ChunkConfig::default().with_compression_level(COMPRESSION_LEVEL);
    pco::standalone::simple_compress(numbers, &config)
        .map_err(|e| ChunkError::Numbers(e.to_string()))
}

fn decompress(bytes: &[u8], expected: usize) -> Result<Vec<i64>, ChunkError> {
    if expected == 0 {
        return Ok(Vec::new());
    }
    let numbers: Vec<i64> = pco::standalone::simple_decompress(bytes)
        .map_err(|e| ChunkError::Numbers(e.to_string()))?;
    if numbers.len() != expected {
        return Err(layout(format!(
            "{} numbers where {expected} were announced",
            numbers.len()
        )));
    }
    Ok(numbers)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.put_varint(bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn get_bytes<'a>(r: &mut Reader<'a>, what: &'static str) -> Result<&'a [u8], ChunkError> {
    let n = r.varint(what).map_err(layout)?;
    let n = usize::try_from(n).map_err(layout)?;
    r.take(n, what).map_err(layout)
}

fn put_columns(out: &mut Vec<u8>, columns: &[Column]) {
    out.put_varint(columns.len() as u64);
    for c in columns {
        out.put_u8(c.field as u8);
        put_bytes(out, c.instance.as_deref().unwrap_or("").as_bytes());
    }
}

fn get_columns(r: &mut Reader<'_>) -> Result<Vec<Column>, ChunkError> {
    let n = r.varint("column count").map_err(layout)?;
    let mut columns = Vec::new();
    for _ in 0..n {
        let f = r.u8("column field").map_err(layout)?;
        let field = Field::from_u8(f).ok_or_else(|| layout(format!("unknown field {f}")))?;
        let instance = get_bytes(r, "column instance")?;
        let instance = std::str::from_utf8(instance).map_err(layout)?;
        columns.push(Column {
            field,
            instance: (!instance.is_empty()).then(|| instance.to_string()),
        });
        if columns.len() > 4096 {
            return Err(layout("more than 4096 columns"));
        }
    }
    Ok(columns)
}

/// Appends the CRC-32 of `out` to it.
fn seal(mut out: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Checks and strips the trailing CRC-32.
fn unseal(blob: &[u8]) -> Result<&[u8], ChunkError> {
    let Some(split) = blob.len().checked_sub(4) else {
        return Err(ChunkError::Checksum);
    };
    let (body, crc) = blob.split_at(split);
    let crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != crc {
        return Err(ChunkError::Checksum);
    }
    Ok(body)
}

impl RawChunk {
    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// The sequence number of report `i` (0 when unknown).
    pub fn seq(&self, i: usize) -> u64 {
        self.seqs.get(i).copied().unwrap_or(0)
    }

    /// The smallest and largest sequence numbers of the chunk ((0, 0) when none is known).
    pub fn seq_range(&self) -> (u64, u64) {
        let min = self.seqs.iter().min().copied().unwrap_or(0);
        let max = self.seqs.iter().max().copied().unwrap_or(0);
        (min, max)
    }

    /// Encodes the chunk. Times are stored as offsets from the first; sequence numbers, when
    /// known, follow them (layout version 2).
    pub fn encode(&self) -> Result<Vec<u8>, ChunkError> {
        let n = self.times.len();
        let first = self.times.first().copied().unwrap_or(0);
        let sequenced = !self.seqs.is_empty();
        if sequenced && self.seqs.len() != n {
            return Err(layout(format!(
                "{} sequence numbers for {n} reports",
                self.seqs.len()
            )));
        }
        let mut out = Vec::with_capacity(16 + n * 12);
        out.put_u8(if sequenced {
            VERSION_SEQUENCED
        } else {
            VERSION
        });
        out.put_varint(n as u64);
        out.put_varint(first);
        put_columns(&mut out, &self.columns);
        let offsets: Vec<i64> = self
            .times
            .iter()
            .map(|t| t.saturating_sub(first).min(i64::MAX as u64) as i64)
            .collect();
        put_bytes(&mut out, &compress(&offsets)?);
        if sequenced {
            let seqs: Vec<i64> = self
                .seqs
                .iter()
                .map(|s| (*s).min(i64::MAX as u64) as i64)
                .collect();
            put_bytes(&mut out, &compress(&seqs)?);
        }
        for column in &self.values {
            let present: Vec<i64> = column.iter().flatten().copied().collect();
            if present.len() == n {
                out.put_u8(0);
            } else {
                out.put_u8(1);
                let mut bitmap = vec![0u8; n.div_ceil(8)];
                for (i, v) in column.iter().enumerate() {
                    if v.is_some() {
                        bitmap[i / 8] |= 1 << (i % 8);
                    }
                }
                out.extend_from_slice(&bitmap);
            }
            put_bytes(&mut out, &compress(&present)?);
        }
        Ok(seal(out))
    }

    /// Decodes only the columns and times (what a duplicate check or an export header needs).
    pub fn decode_times(blob: &[u8]) -> Result<(Vec<u64>, Vec<Column>), ChunkError> {
        let mut r = Reader::new(unseal(blob)?);
        let (sequenced, n, first, columns) = Self::header(&mut r)?;
        let offsets = decompress(get_bytes(&mut r, "times")?, n)?;
        if sequenced {
            get_bytes(&mut r, "sequence numbers")?;
        }
        Ok((times_from(first, &offsets)?, columns))
    }

    /// The layout's header: whether it carries sequence numbers, the report count, the first
    /// time and the columns.
    fn header(r: &mut Reader<'_>) -> Result<(bool, usize, u64, Vec<Column>), ChunkError> {
        let version = r.u8("version").map_err(layout)?;
        let sequenced = match version {
            VERSION => false,
            VERSION_SEQUENCED => true,
            other => return Err(ChunkError::Version(other)),
        };
        let n = r.varint("report count").map_err(layout)?;
        if n > 10_000_000 {
            return Err(layout(format!("{n} reports in one chunk")));
        }
        let first = r.varint("first time").map_err(layout)?;
        let columns = get_columns(r)?;
        Ok((sequenced, n as usize, first, columns))
    }

    pub fn decode(blob: &[u8]) -> Result<RawChunk, ChunkError> {
        let mut r = Reader::new(unseal(blob)?);
        let (sequenced, n, first, columns) = Self::header(&mut r)?;
        let offsets = decompress(get_bytes(&mut r, "times")?, n)?;
        let times = times_from(first, &offsets)?;
        let seqs = if sequenced {
            decompress(get_bytes(&mut r, "sequence numbers")?, n)?
                .into_iter()
                .map(|s| u64::try_from(s).map_err(|_| layout("a negative sequence number")))
                .collect::<Result<Vec<u64>, ChunkError>>()?
        } else {
            Vec::new()
        };
        let mut values = Vec::with_capacity(columns.len());
        for _ in &columns {
            let mode = r.u8("presence").map_err(layout)?;
            let bitmap = match mode {
                0 => None,
                1 => Some(r.take(n.div_ceil(8), "presence bitmap").map_err(layout)?),
                m => return Err(layout(format!("unknown presence mode {m}"))),
            };
            let present_count = bitmap.map_or(n, |b| {
                (0..n).filter(|i| b[i / 8] & (1 << (i % 8)) != 0).count()
            });
            let present = decompress(get_bytes(&mut r, "values")?, present_count)?;
            let mut it = present.into_iter();
            let column: Vec<Option<i64>> = (0..n)
                .map(|i| match bitmap {
                    Some(b) if b[i / 8] & (1 << (i % 8)) == 0 => None,
                    _ => it.next(),
                })
                .collect();
            values.push(column);
        }
        if !r.rest().is_empty() {
            return Err(layout("trailing bytes"));
        }
        Ok(RawChunk {
            times,
            columns,
            values,
            seqs,
        })
    }
}

fn times_from(first: u64, offsets: &[i64]) -> Result<Vec<u64>, ChunkError> {
    offsets
        .iter()
        .map(|o| {
            u64::try_from(*o)
                .ok()
                .and_then(|o| first.checked_add(o))
                .ok_or_else(|| layout("a time offset out of range"))
        })
        .collect()
}

/// Statistics of one column over one slot (a minute or an hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    pub count: i64,
    pub min: i64,
    pub max: i64,
    pub sum: i64,
    /// p10, p50, p90 (nearest rank), for fields that keep the distribution.
    pub quantiles: Option<[i64; 3]>,
}

/// Per-slot statistics of one series: `stats[c][s]` is column `c` in slot `slots[s]`
/// (count 0: no value in that slot).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RollupBlock {
    /// Start of the block (an hour for minute slots, a day for hour slots), Unix ms.
    pub start_ms: u64,
    pub slot_ms: u64,
    /// Slot numbers from the start that hold data, ascending.
    pub slots: Vec<u32>,
    pub columns: Vec<Column>,
    pub stats: Vec<Vec<Stat>>,
}

impl RollupBlock {
    /// The indexes (into `slots`) of the slots that start in `[from, to)`.
    pub fn slot_range(&self, from: u64, to: u64) -> (usize, usize) {
        let start = |s: &u32| self.start_ms + u64::from(*s) * self.slot_ms;
        let a = self.slots.partition_point(|s| start(s) < from);
        let b = self.slots.partition_point(|s| start(s) < to);
        (a, b.max(a))
    }

    /// Whether any slot starts in `[from, to)`.
    pub fn has_slots(&self, from: u64, to: u64) -> bool {
        let (a, b) = self.slot_range(from, to);
        b > a
    }

    pub fn encode(&self) -> Result<Vec<u8>, ChunkError> {
        let mut out = Vec::new();
        out.put_u8(VERSION);
        out.put_varint(self.start_ms);
        out.put_varint(self.slot_ms);
        out.put_varint(self.slots.len() as u64);
        for s in &self.slots {
            out.put_varint(u64::from(*s));
        }
        put_columns(&mut out, &self.columns);
        // One array for the whole block: column by column, statistic by statistic.
        let mut numbers = Vec::new();
        for column in &self.stats {
            let with_quantiles = column.iter().any(|s| s.quantiles.is_some());
            out.put_u8(u8::from(with_quantiles));
            numbers.extend(column.iter().map(|s| s.count));
            numbers.extend(column.iter().map(|s| s.min));
            numbers.extend(column.iter().map(|s| s.max));
            numbers.extend(column.iter().map(|s| s.sum));
            if with_quantiles {
                for q in 0..3 {
                    numbers.extend(column.iter().map(|s| s.quantiles.unwrap_or_default()[q]));
                }
            }
        }
        put_bytes(&mut out, &compress(&numbers)?);
        Ok(seal(out))
    }

    pub fn decode(blob: &[u8]) -> Result<RollupBlock, ChunkError> {
        let mut r = Reader::new(unseal(blob)?);
        let version = r.u8("version").map_err(layout)?;
        if version != VERSION {
            return Err(ChunkError::Version(version));
        }
        let start_ms = r.varint("block start").map_err(layout)?;
        let slot_ms = r.varint("slot length").map_err(layout)?;
        let n = r.varint("slot count").map_err(layout)?;
        if n > 100_000 {
            return Err(layout(format!("{n} slots in one block")));
        }
        let mut slots = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let s = r.varint("slot").map_err(layout)?;
            slots.push(u32::try_from(s).map_err(layout)?);
        }
        let n = n as usize;
        let columns = get_columns(&mut r)?;
        let mut quantile_flags = Vec::with_capacity(columns.len());
        for _ in &columns {
            quantile_flags.push(r.u8("quantile flag").map_err(layout)? == 1);
        }
        let total: usize = quantile_flags
            .iter()
            .map(|q| if *q { 7 * n } else { 4 * n })
            .sum();
        let numbers = decompress(get_bytes(&mut r, "statistics")?, total)?;
        if !r.rest().is_empty() {
            return Err(layout("trailing bytes"));
        }
        let mut at = 0;
        let mut take = |len: usize| {
            let s = &numbers[at..at + len];
            at += len;
            s
        };
        let mut stats = Vec::with_capacity(columns.len());
        for with_quantiles in quantile_flags {
            let (count, min, max, sum) = (take(n), take(n), take(n), take(n));
            let quantiles = if with_quantiles {
                Some([take(n), take(n), take(n)])
            } else {
                None
            };
            stats.push(
                (0..n)
                    .map(|i| Stat {
                        count: count[i],
                        min: min[i],
                        max: max[i],
                        sum: sum[i],
                        quantiles: quantiles.map(|q| [q[0][i], q[1][i], q[2][i]]),
                    })
                    .collect(),
            );
        }
        Ok(RollupBlock {
            start_ms,
            slot_ms,
            slots,
            columns,
            stats,
        })
    }
}

#[cfg(test)]
mod tests;
