//! The write-ahead log: every accepted report is appended here, in one frame per batch, and
//! made durable with one `fdatasync` before any of the batch is acknowledged. The log is read
//! back only at start, to rebuild the reports that had not reached the partition files yet
//! (the head); segments whose reports all reached them are deleted.
//!
//! A segment is a file `wal/NNNNNNNNNNNNNNNN.wal` (16 hex digits, ascending): an 8-byte magic,
//! then frames `[u32 length][u32 CRC-32 of the payload][payload]`, big-endian. A payload is a
//! sequence of records: series and column definitions (each segment defines what it uses, so
//! a segment can be read alone) and rows. A frame that a crash cut short, at the end of the
//! newest segment, is cut off at start; it was never acknowledged. A failed append is cut off
//! at once, so no partial frame is ever followed by a good one.
//!
//! Every accepted report has an ingestion sequence number, ascending in the order the store
//! accepted them: a frame's rows are numbered from the sequence record that opens it. The
//! numbers travel on into the chunks; remote write follows them (docs/REMOTE_WRITE.md).
//!
//! This file holds the log open for appending; `record.rs` encodes and decodes records,
//! `read.rs` reads segments back.

mod read;
mod record;

pub use read::verify;
pub use record::{unzigzag, zigzag};

use super::chunk::Column;
use crate::wire::codec::Writer;
use read::read_segment;
use record::{RECORD_SEQUENCE, encode_record, encode_row};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"NMSWAL01";
/// A segment is closed and a new one started past this size.
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// What a series is: the agent, the task and, for link measurements, the target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub agent: String,
    pub task: String,
    pub target: Option<String>,
}

/// One record of the log.
#[derive(Debug, Clone, PartialEq)]
pub enum WalRecord {
    Series { id: u32, key: SeriesKey },
    Column { id: u32, column: Column },
    Row(WalRow),
}

/// A stored report: its series, its time, and (column id, stored integer) per measured value.
#[derive(Debug, Clone, PartialEq)]
pub struct WalRow {
    pub series: u32,
    pub time_ms: u64,
    pub values: Vec<(u32, i64)>,
    /// The ingestion sequence number (0: a row of a log written before they existed).
    pub seq: u64,
}

/// A record read back, with the segment it came from.
pub type SegmentRecord = (u64, WalRecord);

/// What reading the log back found besides its records.
#[derive(Debug, Default)]
pub struct WalRecovery {
    pub segments: usize,
    pub frames: u64,
    /// Bytes of an incomplete frame cut off the newest segment.
    pub truncated_bytes: u64,
    /// Damaged frames (bad checksum or layout) that were skipped, with where they were.
    pub damaged: Vec<String>,
}

/// The log, open for appending.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    file: File,
    segment: u64,
    len: u64,
    /// Series and columns defined in the current segment.
    defined_series: HashSet<u32>,
    defined_columns: HashSet<u32>,
    /// After a failed append the next one starts a new segment: nothing is written after
    /// bytes whose fate is unknown.
    rotate_next: bool,
    started_ms: u64,
    /// The sequence number the next accepted report gets.
    next_seq: u64,
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:016x}.wal"))
}

/// The segments in `dir`, ascending.
pub fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(hex) = name.strip_suffix(".wal")
            && hex.len() == 16
            && let Ok(n) = u64::from_str_radix(hex, 16)
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Wal {
    /// Opens the log in `dir` (created if needed) and reads every record of every segment,
    /// oldest first, with the segment each came from.
    pub fn open(dir: &Path) -> std::io::Result<(Wal, Vec<SegmentRecord>, WalRecovery)> {
        std::fs::create_dir_all(dir)?;
        let existing = segments(dir)?;
        let mut records = Vec::new();
        let mut recovery = WalRecovery::default();
        for (i, segment) in existing.iter().enumerate() {
            let newest = i + 1 == existing.len();
            recovery.segments += 1;
            read_segment(dir, *segment, newest, true, &mut records, &mut recovery)?;
        }
        let segment = existing.last().map_or(1, |s| s + 1);
        let file = create_segment(dir, segment)?;
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                file,
                segment,
                len: MAGIC.len() as u64,
                defined_series: HashSet::new(),
                defined_columns: HashSet::new(),
                rotate_next: false,
                started_ms: 0,
                next_seq: 1,
            },
            records,
            recovery,
        ))
    }

    /// The segment the next append goes to.
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// The sequence number the next accepted report gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Continues numbering at `next` (never lower than it is: numbers are never reused).
    pub fn set_next_seq(&mut self, next: u64) {
        self.next_seq = self.next_seq.max(next).max(1);
    }

    /// Numbers `rows` from the next sequence number on, and reserves the numbers: they are
    /// used up even if the append then fails (a frame whose fate is unknown keeps its own).
    pub fn number(&mut self, rows: &mut [WalRow]) {
        for row in rows.iter_mut() {
            row.seq = self.next_seq;
            self.next_seq += 1;
        }
    }

    /// Whether the current segment has defined this series / column already.
    pub fn has_series(&self, id: u32) -> bool {
        self.defined_series.contains(&id) && !self.rotate_next
    }

    pub fn has_column(&self, id: u32) -> bool {
        self.defined_columns.contains(&id) && !self.rotate_next
    }

    /// Starts a new segment (at a size limit, or after a failure).
    fn rotate(&mut self) -> std::io::Result<()> {
        let next = self.segment + 1;
        let file = create_segment(&self.dir, next)?;
        self.file = file;
        self.segment = next;
        self.len = MAGIC.len() as u64;
        self.defined_series.clear();
        self.defined_columns.clear();
        self.rotate_next = false;
        Ok(())
    }

    /// Whether the current segment holds any frame.
    pub fn has_frames(&self) -> bool {
        self.len > MAGIC.len() as u64
    }

    /// Starts a new segment now if the current one holds frames (so that it can be deleted
    /// once the head no longer needs it); `now_ms` is remembered as the new one's start.
    pub fn rotate_now(&mut self, now_ms: u64) -> std::io::Result<()> {
        if self.has_frames() {
            self.rotate()?;
            self.started_ms = now_ms;
        }
        Ok(())
    }

    /// When (store clock) the current segment was started by [`Wal::rotate_now`]; 0 for the
    /// segment opened at start.
    pub fn started_ms(&self) -> u64 {
        self.started_ms
    }

    /// Starts a new segment before the next append if this one is past [`SEGMENT_BYTES`],
    /// so that older segments can be deleted once their reports are in the partition files.
    /// Call it between batches: definitions must then be written again ([`Wal::has_series`]).
    pub fn rotate_if_full(&mut self) -> std::io::Result<bool> {
        if self.len >= SEGMENT_BYTES || self.rotate_next {
            self.rotate()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Appends one frame of records and makes it durable. On failure the frame is cut off
    /// (nothing partial stays behind) and the caller acknowledges nothing of it.
    pub fn append(&mut self, records: &[WalRecord], rows: &[WalRow]) -> std::io::Result<u64> {
        if self.rotate_next {
            self.rotate()?;
        }
        let mut payload = Vec::with_capacity((records.len() + rows.len()) * 48);
        for r in records {
            encode_record(&mut payload, r);
        }
        if let Some(first) = rows.first()
            && first.seq > 0
        {
            if rows.windows(2).any(|w| w[1].seq != w[0].seq + 1) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the rows of one frame must have consecutive sequence numbers",
                ));
            }
            payload.put_u8(RECORD_SEQUENCE);
            payload.put_varint(first.seq);
        }
        for row in rows {
            encode_row(&mut payload, row);
        }
        let mut frame = Vec::with_capacity(payload.len() + 8);
        frame.put_u32(payload.len() as u32);
        frame.put_u32(crc32fast::hash(&payload));
        frame.extend_from_slice(&payload);
        let result = self
            .file
            .write_all(&frame)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = result {
            // Cut what may have reached the file; then leave this segment behind.
            let _ = self.file.set_len(self.len);
            self.rotate_next = true;
            return Err(e);
        }
        self.len += frame.len() as u64;
        for r in records {
            match r {
                WalRecord::Series { id, .. } => {
                    self.defined_series.insert(*id);
                }
                WalRecord::Column { id, .. } => {
                    self.defined_columns.insert(*id);
                }
                WalRecord::Row(_) => {}
            }
        }
        Ok(self.segment)
    }

    /// Deletes the segments older than `segment`.
    pub fn remove_before(&mut self, segment: u64) -> std::io::Result<usize> {
        let mut removed = 0;
        for s in segments(&self.dir)? {
            if s < segment && s != self.segment {
                std::fs::remove_file(segment_path(&self.dir, s))?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }
}

fn create_segment(dir: &Path, segment: u64) -> std::io::Result<File> {
    let path = segment_path(dir, segment);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    file.write_all(MAGIC)?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(file)
}

#[cfg(test)]
mod tests;
