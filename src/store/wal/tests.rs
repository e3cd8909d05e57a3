//! Tests for `store/wal/`, kept apart so the module itself stays short.

use super::*;
use crate::schema::Field;

fn row(series: u32, t: u64) -> WalRecord {
    WalRecord::Row(WalRow {
        series,
        time_ms: t,
        values: vec![(0, -5), (1, 1 << 40)],
        seq: 0,
    })
}

#[test]
fn rows_keep_their_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, ..) = Wal::open(dir.path()).unwrap();
        wal.set_next_seq(41);
        let mut rows: Vec<WalRow> = [10, 20, 30]
            .iter()
            .map(|t| match row(1, *t) {
                WalRecord::Row(r) => r,
                _ => unreachable!(),
            })
            .collect();
        wal.number(&mut rows);
        assert_eq!(wal.next_seq(), 44);
        wal.append(&[], &rows[..2]).unwrap();
        wal.append(&[], &rows[2..]).unwrap();
        // Numbers that are not consecutive in one frame are refused.
        rows[1].seq = 50;
        assert!(wal.append(&[], &rows).is_err());
    }
    let (_, records, _) = Wal::open(dir.path()).unwrap();
    let seqs: Vec<u64> = records
        .iter()
        .filter_map(|(_, r)| match r {
            WalRecord::Row(row) => Some(row.seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, vec![41, 42, 43]);
}

#[test]
fn records_come_back_and_a_torn_frame_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let key = SeriesKey {
        agent: "r1".into(),
        task: "t".into(),
        target: Some("10.0.0.1".into()),
    };
    let written = vec![
        WalRecord::Series {
            id: 1,
            key: key.clone(),
        },
        WalRecord::Column {
            id: 0,
            column: Column {
                field: Field::BytesPerSec,
                instance: Some("eth0".into()),
            },
        },
        row(1, 100),
    ];
    let segment = {
        let (mut wal, old, _) = Wal::open(dir.path()).unwrap();
        assert!(old.is_empty());
        wal.append(&written, &[]).unwrap();
        wal.append(&[row(1, 200)], &[]).unwrap();
        wal.segment()
    };
    // A crash in the middle of a third frame.
    let path = segment_path(dir.path(), segment);
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&[0, 0, 0, 40, 1, 2]).unwrap();
    drop(f);
    let (mut wal, records, recovery) = Wal::open(dir.path()).unwrap();
    assert_eq!(recovery.truncated_bytes, 6);
    assert!(recovery.damaged.is_empty());
    let records: Vec<WalRecord> = records.into_iter().map(|(_, r)| r).collect();
    let mut expected = written.clone();
    expected.push(row(1, 200));
    assert_eq!(records, expected);
    // The next run starts a new segment; the old one goes once its reports are kept.
    assert!(wal.segment() > segment);
    assert_eq!(wal.remove_before(wal.segment()).unwrap(), 1);
    assert_eq!(segments(dir.path()).unwrap(), vec![wal.segment()]);
}

#[test]
fn a_damaged_frame_is_reported_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let segment = {
        let (mut wal, ..) = Wal::open(dir.path()).unwrap();
        wal.append(&[row(1, 1)], &[]).unwrap();
        wal.append(&[row(1, 2)], &[]).unwrap();
        wal.segment()
    };
    let path = segment_path(dir.path(), segment);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let (_, records, recovery) = Wal::open(dir.path()).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(recovery.damaged.len(), 1, "{:?}", recovery.damaged);
}

#[test]
fn zigzag_round_trips() {
    for v in [0, 1, -1, i64::MAX, i64::MIN, 12345, -98765] {
        assert_eq!(unzigzag(zigzag(v)), v);
    }
}
