//! Tests for `store/chunk.rs`, kept apart so the module itself stays short.

use super::*;

fn column(field: Field, instance: Option<&str>) -> Column {
    Column {
        field,
        instance: instance.map(str::to_string),
    }
}

#[test]
fn a_raw_chunk_round_trips_with_missing_values() {
    let chunk = RawChunk {
        times: vec![1_700_000_000_000, 1_700_000_005_000, 1_700_000_010_003],
        columns: vec![
            column(Field::RttAvgMs, None),
            column(Field::BytesPerSec, Some("eth0")),
        ],
        values: vec![
            vec![Some(29), None, Some(31)],
            vec![Some(1), Some(2), Some(3)],
        ],
        seqs: Vec::new(),
    };
    let blob = chunk.encode().unwrap();
    assert_eq!(blob[0], VERSION);
    assert_eq!(RawChunk::decode(&blob).unwrap(), chunk);
    let (times, columns) = RawChunk::decode_times(&blob).unwrap();
    assert_eq!(times, chunk.times);
    assert_eq!(columns, chunk.columns);
    // With sequence numbers: layout version 2, and they come back.
    let sequenced = RawChunk {
        seqs: vec![7, 9, 8],
        ..chunk
    };
    let blob = sequenced.encode().unwrap();
    assert_eq!(blob[0], VERSION_SEQUENCED);
    assert_eq!(RawChunk::decode(&blob).unwrap(), sequenced);
    assert_eq!(RawChunk::decode_times(&blob).unwrap().0, sequenced.times);
    assert_eq!(sequenced.seq_range(), (7, 9));
}

#[test]
fn damage_is_found_not_decoded() {
    let chunk = RawChunk {
        times: vec![5, 6],
        columns: vec![column(Field::CpuPercent, None)],
        values: vec![vec![Some(1), Some(2)]],
        seqs: vec![1, 2],
    };
    let blob = chunk.encode().unwrap();
    for i in 0..blob.len() {
        let mut bad = blob.clone();
        bad[i] ^= 0x10;
        assert!(RawChunk::decode(&bad).is_err(), "flip at byte {i}");
    }
    assert!(RawChunk::decode(&blob[..blob.len() - 1]).is_err());
    assert!(RawChunk::decode(&[]).is_err());
}

#[test]
fn a_rollup_block_round_trips() {
    let block = RollupBlock {
        start_ms: 3_600_000,
        slot_ms: 60_000,
        slots: vec![0, 1, 59],
        columns: vec![
            column(Field::RttAvgMs, None),
            column(Field::CpuPercent, None),
        ],
        stats: vec![
            vec![
                Stat {
                    count: 12,
                    min: 1,
                    max: 9,
                    sum: 60,
                    quantiles: Some([2, 5, 8]),
                };
                3
            ],
            vec![
                Stat {
                    count: 0,
                    ..Stat::default()
                },
                Stat {
                    count: 1,
                    min: 7,
                    max: 7,
                    sum: 7,
                    quantiles: None,
                },
                Stat::default(),
            ],
        ],
    };
    let blob = block.encode().unwrap();
    assert_eq!(RollupBlock::decode(&blob).unwrap(), block);
}
