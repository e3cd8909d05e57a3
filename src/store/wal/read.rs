//! Reading the log back: segment by segment, frame by frame, each frame's checksum checked; a
//! torn last frame of the newest segment is cut off (when repairing), anything else damaged is
//! reported and skipped.

use super::record::{Decoded, decode_record};
use super::{MAGIC, SegmentRecord, WalRecord, WalRecovery, segment_path, segments};
use crate::wire::codec::Reader;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;

/// Reads every segment without changing anything (for `nms store check`).
pub fn verify(dir: &Path) -> std::io::Result<(usize, WalRecovery)> {
    let mut recovery = WalRecovery::default();
    let mut records = Vec::new();
    if !dir.exists() {
        return Ok((0, recovery));
    }
    let existing = segments(dir)?;
    for (i, segment) in existing.iter().enumerate() {
        recovery.segments += 1;
        let newest = i + 1 == existing.len();
        read_segment(dir, *segment, newest, false, &mut records, &mut recovery)?;
    }
    Ok((records.len(), recovery))
}

/// Reads one segment's frames into `records`, noting in `recovery` what it cut or skipped;
/// with `repair`, a torn last frame of the newest segment is cut off the file (and synced).
pub(super) fn read_segment(
    dir: &Path,
    segment: u64,
    newest: bool,
    repair: bool,
    records: &mut Vec<(u64, WalRecord)>,
    recovery: &mut WalRecovery,
) -> std::io::Result<()> {
    let path = segment_path(dir, segment);
    let mut bytes = Vec::new();
    File::open(&path)?.read_to_end(&mut bytes)?;
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        recovery
            .damaged
            .push(format!("{}: not a log segment (bad magic)", path.display()));
        return Ok(());
    }
    let mut at = MAGIC.len();
    while at < bytes.len() {
        let rest = &bytes[at..];
        let complete = rest.len() >= 8 && {
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            rest.len() >= 8 + len
        };
        if !complete {
            let torn = TornFrame {
                path: &path,
                at,
                bytes: rest.len(),
            };
            return torn.handle(newest, repair, recovery);
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
        let payload = &rest[8..8 + len];
        if crc32fast::hash(payload) != crc {
            recovery.damaged.push(format!(
                "{}: frame at byte {at}: checksum mismatch; the rest of the segment is skipped",
                path.display()
            ));
            return Ok(());
        }
        match decode_frame(payload, segment) {
            Ok(frame) => {
                records.extend(frame);
                recovery.frames += 1;
            }
            Err(e) => {
                recovery.damaged.push(format!(
                    "{}: frame at byte {at}: {e}; the frame is skipped",
                    path.display()
                ));
            }
        }
        at += 8 + len;
    }
    Ok(())
}

/// An incomplete frame at byte `at` of a segment, `bytes` long to the file's end.
struct TornFrame<'a> {
    path: &'a Path,
    at: usize,
    bytes: usize,
}

impl TornFrame<'_> {
    /// At the end of the newest segment it was never acknowledged: it is cut (with `repair`,
    /// off the file, synced) so appends start clean. Elsewhere it is damage.
    fn handle(
        &self,
        newest: bool,
        repair: bool,
        recovery: &mut WalRecovery,
    ) -> std::io::Result<()> {
        let TornFrame { path, at, bytes } = *self;
        if newest {
            // A torn last frame: never acknowledged. Cut it so appends start clean.
            if repair {
                let f = OpenOptions::new().write(true).open(path)?;
                f.set_len(at as u64)?;
                f.sync_all()?;
            }
            recovery.truncated_bytes += bytes as u64;
        } else {
            recovery.damaged.push(format!(
                "{}: {} bytes of an incomplete frame at byte {at}",
                path.display(),
                bytes
            ));
        }
        Ok(())
    }
}

/// The records of one frame's payload, rows numbered from the frame's sequence record; a
/// record that does not decode spoils the whole frame.
fn decode_frame(
    payload: &[u8],
    segment: u64,
) -> Result<Vec<SegmentRecord>, crate::wire::DecodeError> {
    let mut r = Reader::new(payload);
    let mut frame = Vec::new();
    // 0 until a sequence record numbers the rows after it.
    let mut next_seq = 0;
    while r.remaining() > 0 {
        match decode_record(&mut r)? {
            Decoded::Sequence(seq) => next_seq = seq,
            Decoded::Record(WalRecord::Row(mut row)) => {
                if next_seq > 0 {
                    row.seq = next_seq;
                    next_seq += 1;
                }
                frame.push((segment, WalRecord::Row(row)));
            }
            Decoded::Record(rec) => frame.push((segment, rec)),
        }
    }
    Ok(frame)
}
