//! The log's records, as a frame's payload carries them: series and column definitions, rows
//! (values zigzag-encoded varints), and the sequence number of the frame's next row.

use super::{SeriesKey, WalRecord, WalRow};
use crate::schema::Field;
use crate::store::chunk::Column;
use crate::wire::codec::{Reader, Writer};

/// Longest name (agent, task, target, instance) a record carries.
const MAX_NAME: usize = 4096;

const RECORD_SERIES: u8 = 1;
const RECORD_COLUMN: u8 = 2;
const RECORD_ROW: u8 = 3;
pub(super) const RECORD_SEQUENCE: u8 = 4;

pub(super) fn encode_record(out: &mut Vec<u8>, r: &WalRecord) {
    match r {
        WalRecord::Series { id, key } => {
            out.put_u8(RECORD_SERIES);
            out.put_varint(u64::from(*id));
            out.put_string(&key.agent);
            out.put_string(&key.task);
            match &key.target {
                Some(t) => {
                    out.put_u8(1);
                    out.put_string(t);
                }
                None => out.put_u8(0),
            }
        }
        WalRecord::Column { id, column } => {
            out.put_u8(RECORD_COLUMN);
            out.put_varint(u64::from(*id));
            out.put_u8(column.field as u8);
            out.put_string(column.instance.as_deref().unwrap_or(""));
        }
        WalRecord::Row(row) => encode_row(out, row),
    }
}

pub(super) fn encode_row(out: &mut Vec<u8>, row: &WalRow) {
    out.put_u8(RECORD_ROW);
    out.put_varint(u64::from(row.series));
    out.put_varint(row.time_ms);
    out.put_varint(row.values.len() as u64);
    for (column, v) in &row.values {
        out.put_varint(u64::from(*column));
        out.put_varint(zigzag(*v));
    }
}

pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A decoded record, or the sequence number of the frame's next row.
pub(super) enum Decoded {
    Record(WalRecord),
    Sequence(u64),
}

pub(super) fn decode_record(r: &mut Reader<'_>) -> Result<Decoded, crate::wire::DecodeError> {
    Ok(Decoded::Record(match r.u8("record type")? {
        RECORD_SEQUENCE => return Ok(Decoded::Sequence(r.varint("sequence number")?)),
        RECORD_SERIES => {
            let id = r.varint_u32("series id")?;
            let agent = r.string("agent", MAX_NAME)?;
            let task = r.string("task", MAX_NAME)?;
            let target = match r.u8("target flag")? {
                0 => None,
                _ => Some(r.string("target", MAX_NAME)?),
            };
            WalRecord::Series {
                id,
                key: SeriesKey {
                    agent,
                    task,
                    target,
                },
            }
        }
        RECORD_COLUMN => {
            let id = r.varint_u32("column id")?;
            let at = r.offset();
            let f = r.u8("field")?;
            let field = Field::from_u8(f).ok_or_else(|| {
                crate::wire::codec::invalid("field", at, format!("unknown field {f}"))
            })?;
            let instance = r.string("instance", MAX_NAME)?;
            WalRecord::Column {
                id,
                column: Column {
                    field,
                    instance: (!instance.is_empty()).then_some(instance),
                },
            }
        }
        RECORD_ROW => {
            let series = r.varint_u32("series id")?;
            let time_ms = r.varint("time")?;
            let n = r.varint_max("value count", 4096)?;
            let mut values = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let column = r.varint_u32("column id")?;
                let v = unzigzag(r.varint("value")?);
                values.push((column, v));
            }
            WalRecord::Row(WalRow {
                series,
                time_ms,
                values,
                seq: 0,
            })
        }
        other => {
            return Err(crate::wire::codec::invalid(
                "record type",
                r.offset().saturating_sub(1),
                format!("unknown record type {other}"),
            ));
        }
    }))
}
