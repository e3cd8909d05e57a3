//! The time-series store as the server uses it, on a virtual clock: reports stored exactly
//! once however often and late they come, crash recovery from the write-ahead log, sealing
//! into chunks and rollups, queries by range and by step from the right tier, retention by
//! whole partition files, refused times, the import of an older store, and the file check.

use nms::schema::{Field, Reading};
use nms::store::partition::{DAY_MS, HOUR_MS, MINUTE_MS, Tier};
use nms::store::{
    AlertQuery, AlertRecord, RawQuery, Refusal, Report, Retention, StepQuery, Store, StoreOptions,
    Stored,
};
use nms::wire::{AlertType, Severity};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// 2026-11-08T00:00:00Z, midnight UTC.
const T0: u64 = 1_794_096_000_000;

/// A store in a temporary folder with a clock the test moves.
struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<AtomicU64>,
    retention: Retention,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().expect("temp dir"),
            clock: Arc::new(AtomicU64::new(T0)),
            retention: Retention::default(),
        }
    }

    fn open(&self) -> Store {
        let clock = self.clock.clone();
        Store::open(
            self.dir.path(),
            StoreOptions {
                background: false,
                retention: self.retention.clone(),
                clock: Arc::new(move || clock.load(Ordering::SeqCst)),
                ..StoreOptions::default()
            },
        )
        .expect("open the store")
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    fn set(&self, t: u64) {
        self.clock.store(t, Ordering::SeqCst);
    }
}

/// A typical report: CPU, RAM, an interface and a ping, with values that vary with `k`.
fn report(agent: &str, t: u64, k: u64) -> Report {
    let r = |field, instance: Option<&str>, value| Reading {
        field,
        instance: instance.map(str::to_string),
        value,
    };
    Report {
        agent: agent.to_string(),
        task: "t1".into(),
        target: None,
        time_ms: t,
        readings: vec![
            r(Field::CpuPercent, None, (k % 100) as f64 + 0.5),
            r(Field::RamPercent, None, 40.0 + (k % 7) as f64 * 0.25),
            r(Field::BytesPerSec, Some("eth0"), 1000.0 + k as f64),
        ],
    }
}

fn ping(agent: &str, t: u64, rtt: f64) -> Report {
    let r = |field, value| Reading {
        field,
        instance: None,
        value,
    };
    Report {
        agent: agent.to_string(),
        task: "t1".into(),
        target: Some("10.0.0.1".into()),
        time_ms: t,
        readings: vec![
            r(Field::RttMinMs, rtt - 0.01),
            r(Field::RttAvgMs, rtt),
            r(Field::RttMaxMs, rtt + 0.01),
            r(Field::LossPercent, 0.0),
        ],
    }
}

/// Every report of an agent in `[from, to)`, through the cursor pages.
fn all(store: &Store, agent: &str, from: u64, to: u64) -> Vec<Report> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .metrics(&RawQuery {
                agent: Some(agent.into()),
                from_ms: Some(from),
                to_ms: Some(to),
                limit: 500,
                after: after.take(),
                ..RawQuery::default()
            })
            .expect("query");
        out.extend(page.records);
        match page.next {
            Some(n) => after = Some(n),
            None => return out,
        }
    }
}

fn times(reports: &[Report]) -> Vec<u64> {
    reports.iter().map(|r| r.time_ms).collect()
}

#[test]
fn a_report_is_stored_once_however_often_it_comes_and_survives_a_crash() {
    let f = Fixture::new();
    let t = T0 + 1000;
    {
        let store = f.open();
        let batch = vec![
            report("r1", t, 1),
            report("r1", t + 5000, 2),
            report("r1", t, 1),
        ];
        assert_eq!(
            store.append(&batch, f.now()).unwrap(),
            vec![Stored::New, Stored::New, Stored::Duplicate],
            "a copy in the same batch is a duplicate"
        );
        assert_eq!(
            store.append(&[report("r1", t, 1)], f.now()).unwrap(),
            vec![Stored::Duplicate]
        );
        // Dropped without any maintenance: as after kill -9, only the log has the reports.
    }
    let store = f.open();
    let got = all(&store, "r1", T0, T0 + HOUR_MS);
    assert_eq!(times(&got), vec![t, t + 5000]);
    assert_eq!(got[0].value(Field::CpuPercent), Some(1.5));
    assert_eq!(got[0].value(Field::RamPercent), Some(40.25));
    // Resent after the restart, into the log or after being moved into chunks: still once.
    assert_eq!(
        store.append(&[report("r1", t, 1)], f.now()).unwrap(),
        vec![Stored::Duplicate]
    );
    f.set(T0 + 10 * 60_000);
    store.maintain(f.now()).unwrap();
    assert_eq!(
        store.head_stats().reports,
        0,
        "old buffers moved into chunks"
    );
    assert_eq!(
        store.append(&[report("r1", t + 5000, 2)], f.now()).unwrap(),
        vec![Stored::Duplicate],
        "a report already in a chunk is recognised"
    );
    drop(store);
    let store = f.open();
    assert_eq!(
        times(&all(&store, "r1", T0, T0 + HOUR_MS)),
        vec![t, t + 5000]
    );
    let mut copies: Vec<u64> = store
        .scan_times()
        .unwrap()
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    copies.sort();
    assert_eq!(copies, vec![t, t + 5000], "one copy on disk of each");
}

#[test]
fn times_the_store_cannot_keep_are_refused_with_a_reason_and_break_nothing() {
    let f = Fixture::new();
    f.set(T0 + 30 * DAY_MS);
    let store = f.open();
    let now = f.now();
    let year_10000 = 253_402_300_800_000;
    let out = store
        .append(
            &[
                report("r1", year_10000, 1),
                report("r1", now + 2 * DAY_MS, 2),
                report("r1", 0, 3),
                report("r1", now - 20 * DAY_MS, 4),
                report("r1", now - 1000, 5),
            ],
            now,
        )
        .unwrap();
    assert_eq!(
        out,
        vec![
            Stored::Refused(Refusal::Future),
            Stored::Refused(Refusal::Future),
            Stored::Refused(Refusal::TooOld),
            Stored::Refused(Refusal::TooOld),
            Stored::New,
        ]
    );
    let stats = store.stats();
    assert_eq!(stats.metrics_refused_future, 2);
    assert_eq!(stats.metrics_refused_too_old, 2);
    // Queries over everything, with and without an agent, still answer.
    let page = store
        .metrics(&RawQuery {
            limit: 100,
            ..RawQuery::default()
        })
        .unwrap();
    assert_eq!(times(&page.records), vec![now - 1000]);
    assert_eq!(page.records[0].to_json()["time_ms"], now - 1000);
    let steps = store
        .steps(&StepQuery {
            agent: None,
            task: None,
            from_ms: 0,
            to_ms: year_10000,
            step_ms: 365 * DAY_MS,
            fields: Vec::new(),
        })
        .unwrap();
    assert_eq!(steps.len(), 1);
}

#[test]
fn late_and_backfilled_reports_land_in_their_hour_exactly_once() {
    let f = Fixture::new();
    let store = f.open();
    // Two hours of one report every 10 s, then an outage of the third hour.
    for i in 0..720u64 {
        let t = T0 + i * 10_000;
        f.set(t);
        store.append(&[report("r1", t, i)], t).unwrap();
        if i % 60 == 0 {
            store.maintain(t).unwrap();
        }
    }
    f.set(T0 + 4 * HOUR_MS);
    store.maintain(f.now()).unwrap();
    assert_eq!(store.head_stats().reports, 0);
    assert_eq!(store.head_stats().unsealed_hours, 0, "both hours sealed");
    // The agent comes back and sends the third hour late, some of it twice, with a few of the
    // first hour again.
    let late: Vec<Report> = (720..1080u64)
        .map(|i| report("r1", T0 + i * 10_000, i))
        .collect();
    let outcomes = store.append(&late, f.now()).unwrap();
    assert!(outcomes.iter().all(|o| *o == Stored::New));
    let again = store
        .append(
            &[
                report("r1", T0 + 720 * 10_000, 720),
                report("r1", T0 + 30_000, 3),
            ],
            f.now(),
        )
        .unwrap();
    assert_eq!(again, vec![Stored::Duplicate, Stored::Duplicate]);
    // A report missed in the first hour arrives, between two stored ones.
    let missed = T0 + 35_000;
    assert_eq!(
        store
            .append(&[report("r1", missed, 9999)], f.now())
            .unwrap(),
        vec![Stored::New]
    );
    store.maintain(f.now()).unwrap();
    let got = all(&store, "r1", T0, T0 + 3 * HOUR_MS);
    let mut expected: Vec<u64> = (0..1080u64).map(|i| T0 + i * 10_000).collect();
    expected.push(missed);
    expected.sort();
    assert_eq!(times(&got), expected, "every report once, in time order");
    // The first hour's minute rollups include the backfilled report.
    let steps = store
        .steps(&StepQuery {
            agent: Some("r1".into()),
            task: None,
            from_ms: T0,
            to_ms: T0 + HOUR_MS,
            step_ms: MINUTE_MS,
            fields: vec![Field::CpuPercent],
        })
        .unwrap();
    assert_eq!(steps[0].tier, "minute");
    let first = &steps[0].steps[0];
    assert_eq!(first.start_ms, T0);
    assert_eq!(first.stats[0].count, 7, "six reports plus the missed one");
    assert_eq!(first.stats[0].max, 99.5);
}

#[test]
fn steps_come_from_the_coarsest_tier_with_the_resolution_and_agree_with_the_raw_reports() {
    let f = Fixture::new();
    let store = f.open();
    // A day of one ping a second, RTT rising through each hour.
    let mut batch = Vec::new();
    for i in 0..86_400u64 {
        let t = T0 + i * 1000;
        batch.push(ping("r1", t, 1.0 + (i % 3600) as f64 / 1000.0));
        if batch.len() == 3600 {
            f.set(t);
            store.append(&batch, t).unwrap();
            store.maintain(t).unwrap();
            batch.clear();
        }
    }
    f.set(T0 + DAY_MS + HOUR_MS);
    store.maintain(f.now()).unwrap();
    let query = |step_ms| {
        store
            .steps(&StepQuery {
                agent: Some("r1".into()),
                task: None,
                from_ms: T0,
                to_ms: T0 + DAY_MS,
                step_ms,
                fields: vec![Field::RttAvgMs],
            })
            .unwrap()
            .remove(0)
    };
    let raw = query(30_000);
    let minute = query(10 * MINUTE_MS);
    let hour = query(HOUR_MS);
    assert_eq!(
        (raw.tier, minute.tier, hour.tier),
        ("raw", "minute", "hour")
    );
    assert_eq!(raw.steps.len(), 2880);
    assert_eq!(minute.steps.len(), 144);
    assert_eq!(hour.steps.len(), 24);
    for s in [&raw, &minute, &hour] {
        let count: u64 = s.steps.iter().map(|r| r.stats[0].count).sum();
        assert_eq!(count, 86_400, "{} tier counts every report", s.tier);
    }
    let h = &hour.steps[5].stats[0];
    assert_eq!((h.min, h.max), (1.0, 4.599));
    assert!((h.mean - 2.7995).abs() < 1e-9, "mean {}", h.mean);
    let [p10, p50, p90] = h.quantiles.expect("RTT keeps its distribution");
    assert_eq!(
        (p10, p50, p90),
        (1.359, 2.799, 4.239),
        "nearest rank of 3600 values"
    );
    // Ten minutes of the hour tier's neighbour: the minute tier's statistics combine exactly.
    let m = &minute.steps[30].stats[0];
    assert_eq!(m.count, 600);
    assert_eq!((m.min, m.max), (1.0, 1.599));
}

#[test]
fn retention_deletes_whole_partition_files_and_rollups_outlive_raw_reports() {
    let mut f = Fixture::new();
    f.retention = Retention {
        raw: Duration::from_secs(3 * 86_400),
        minute: Duration::from_secs(6 * 86_400),
        ..Retention::default()
    };
    let store = f.open();
    // Ten days, a report a minute.
    for day in 0..10u64 {
        let batch: Vec<Report> = (0..1440u64)
            .map(|m| report("r1", T0 + day * DAY_MS + m * MINUTE_MS, m))
            .collect();
        f.set(T0 + (day + 1) * DAY_MS);
        store.append(&batch, f.now()).unwrap();
        store.maintain(f.now() + 10 * MINUTE_MS).unwrap();
    }
    let now = f.now() + 10 * MINUTE_MS;
    f.set(now);
    store.maintain(now).unwrap();
    let files = |tier: Tier| {
        nms::store::partition::list(store.root(), tier)
            .unwrap()
            .len()
    };
    assert!(files(Tier::Raw) <= 4, "{} raw files", files(Tier::Raw));
    assert!(
        files(Tier::Minute) <= 7,
        "{} minute files",
        files(Tier::Minute)
    );
    assert_eq!(files(Tier::Hour), 1);
    assert!(store.stats().partitions_deleted >= 9);
    // Day 1 is gone from the raw tier but its hours are still there.
    assert!(all(&store, "r1", T0, T0 + DAY_MS).is_empty());
    let day_one = store
        .steps(&StepQuery {
            agent: Some("r1".into()),
            task: None,
            from_ms: T0,
            to_ms: T0 + DAY_MS,
            step_ms: 6 * HOUR_MS,
            fields: vec![Field::CpuPercent],
        })
        .unwrap();
    assert_eq!(day_one[0].tier, "hour");
    let count: u64 = day_one[0].steps.iter().map(|s| s.stats[0].count).sum();
    assert_eq!(count, 1440);
    // A report older than raw retention is refused.
    assert_eq!(
        store.append(&[report("r1", T0 + DAY_MS, 1)], now).unwrap(),
        vec![Stored::Refused(Refusal::TooOld)]
    );
    // Start after all this: the head is empty and nothing is replayed.
    drop(store);
    let store = f.open();
    assert_eq!(store.head_stats().reports, 0);
}

#[test]
fn a_size_cap_deletes_the_oldest_raw_partitions_first() {
    let mut f = Fixture::new();
    f.retention = Retention {
        max_bytes: Some(1),
        ..Retention::default()
    };
    let store = f.open();
    for day in 0..3u64 {
        let batch: Vec<Report> = (0..100u64)
            .map(|m| report("r1", T0 + day * DAY_MS + m * MINUTE_MS, m))
            .collect();
        f.set(T0 + day * DAY_MS + DAY_MS / 2);
        store.append(&batch, f.now()).unwrap();
        store.maintain(f.now()).unwrap();
    }
    let raw = nms::store::partition::list(store.root(), Tier::Raw).unwrap();
    assert_eq!(
        raw.len(),
        1,
        "only the newest raw partition is kept: {raw:?}"
    );
    assert_eq!(raw[0].start_ms, T0 + 2 * DAY_MS);
}

#[test]
fn alerts_are_stored_once_and_queried_by_time_range() {
    let f = Fixture::new();
    f.set(T0 + DAY_MS);
    let store = f.open();
    let alert = |id: u64, t: u64, resolves: u64| AlertRecord {
        alert_id: id,
        agent: "r1".into(),
        task: "t1".into(),
        kind: AlertType::Cpu,
        severity: Severity::Warning,
        value: 95.0,
        threshold: 80.0,
        time_ms: t,
        rule: "condition:cpu_usage".into(),
        message: "hot".into(),
        received_ms: t,
        resolves,
        resolved_ms: None,
        subject: String::new(),
        target: None,
    };
    let out = store
        .store_alerts(vec![
            alert(u64::MAX, T0 + 1000, 0),
            alert(2, T0 + 2000, 0),
            alert(2, T0 + 2000, 0),
        ])
        .unwrap();
    assert_eq!(out, vec![Stored::New, Stored::New, Stored::Duplicate]);
    store
        .store_alerts(vec![alert(3, T0 + 5000, u64::MAX)])
        .unwrap();
    drop(store);
    let store = f.open();
    let range = store
        .alerts(&AlertQuery {
            from_ms: Some(T0 + 1500),
            to_ms: Some(T0 + 3000),
            limit: 10,
            ..AlertQuery::default()
        })
        .unwrap();
    assert_eq!(range.len(), 1);
    assert_eq!(range[0].alert_id, 2);
    let every = store
        .alerts(&AlertQuery {
            limit: 10,
            ..AlertQuery::default()
        })
        .unwrap();
    assert_eq!(every.len(), 2, "resolutions are not alerts");
    assert_eq!(every[0].alert_id, u64::MAX, "ids keep all 64 bits");
    assert_eq!(
        every[0].resolved_ms,
        Some(T0 + 5000),
        "the resolution marked it"
    );
}

#[test]
fn an_older_stores_json_logs_are_imported_once_and_kept() {
    let f = Fixture::new();
    f.set(T0 + 30 * DAY_MS);
    let mut lines = String::new();
    for i in 0..500u64 {
        let t = T0 + 29 * DAY_MS + i * 60_000;
        lines.push_str(&format!(
            r#"{{"agent":"r1","task":"t1","time_ms":{t},"values":{{"cpu_percent":{},"ram_percent":41.5}},"interfaces":{{"eth0":{{"packets_per_sec":3,"bytes_per_sec":{},"errors_per_sec":0}}}}}}"#,
            i % 100,
            1000 + i
        ));
        lines.push('\n');
    }
    // A record older than raw retention keeps its rollups; a duplicate and a torn last line.
    lines.push_str(&format!(
        r#"{{"agent":"r1","task":"t1","time_ms":{},"values":{{"cpu_percent":5}}}}"#,
        T0 + DAY_MS
    ));
    lines.push('\n');
    let first = lines.lines().next().unwrap().to_owned();
    lines.push_str(&first);
    lines.push('\n');
    lines.push_str(r#"{"agent":"r1","ta"#);
    std::fs::write(f.dir.path().join("metrics.jsonl"), &lines).unwrap();
    std::fs::write(
        f.dir.path().join("alerts.jsonl"),
        format!(
            r#"{{"alert_id":7,"agent":"r1","task":"t1","kind":"cpu","severity":"warning","value":95,"threshold":80,"time_ms":{},"rule":"r","message":"m","received_ms":1}}"#,
            T0 + 29 * DAY_MS
        ) + "\n",
    )
    .unwrap();
    let store = f.open();
    store.import_legacy(f.now()).unwrap();
    assert_eq!(store.stats().imported_metrics, 501);
    assert_eq!(store.stats().imported_alerts, 1);
    assert!(!f.dir.path().join("metrics.jsonl").exists());
    assert!(f.dir.path().join("metrics.jsonl.imported").exists(), "kept");
    let got = all(&store, "r1", T0 + 29 * DAY_MS, T0 + 31 * DAY_MS);
    assert_eq!(got.len(), 500);
    assert_eq!(got[10].value(Field::BytesPerSec), Some(1010.0));
    let old = store
        .steps(&StepQuery {
            agent: Some("r1".into()),
            task: None,
            from_ms: T0 + DAY_MS,
            to_ms: T0 + 2 * DAY_MS,
            step_ms: DAY_MS,
            fields: vec![Field::CpuPercent],
        })
        .unwrap();
    assert_eq!(old[0].steps[0].stats[0].count, 1, "the old record's rollup");
    assert_eq!(
        store
            .alerts(&AlertQuery {
                limit: 10,
                ..AlertQuery::default()
            })
            .unwrap()
            .len(),
        1
    );
    // A second start finds nothing left to import.
    drop(store);
    let store = f.open();
    store.import_legacy(f.now()).unwrap();
    assert_eq!(store.stats().imported_metrics, 0);
}

#[test]
fn the_check_reports_damage_with_the_file_and_the_series() {
    let f = Fixture::new();
    let store = f.open();
    for i in 0..100u64 {
        store
            .append(&[report("r1", T0 + i * 1000, i)], T0 + i * 1000)
            .unwrap();
    }
    f.set(T0 + 2 * HOUR_MS);
    store.maintain(f.now()).unwrap();
    let root = store.root().to_path_buf();
    drop(store);
    let clean = nms::store::check::check(&root).unwrap();
    assert!(clean.problems.is_empty(), "{:?}", clean.problems);
    assert_eq!(clean.reports, 100);
    // Flip a byte inside a chunk's compressed numbers, through SQLite.
    let raw = nms::store::partition::list(&root, Tier::Raw).unwrap();
    let conn = rusqlite::Connection::open(raw[0].path(&root)).unwrap();
    let data: Vec<u8> = conn
        .query_row("SELECT data FROM chunks LIMIT 1", [], |r| r.get(0))
        .unwrap();
    let mut bad = data.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0x40;
    conn.execute("UPDATE chunks SET data = ?1", [bad]).unwrap();
    drop(conn);
    let damaged = nms::store::check::check(&root).unwrap();
    assert_eq!(damaged.problems.len(), 1, "{:?}", damaged.problems);
    let problem = &damaged.problems[0];
    assert!(problem.contains("raw/2026-11-08.sqlite"), "{problem}");
    assert!(problem.contains("series 1"), "{problem}");
    assert!(problem.contains("checksum"), "{problem}");
    // The server refuses to serve the damaged chunk as values: the query says what is wrong.
    let store = f.open();
    let err = store
        .metrics(&RawQuery {
            agent: Some("r1".into()),
            from_ms: Some(T0),
            limit: 10,
            ..RawQuery::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("damaged chunk"), "{err}");
}

#[test]
fn a_second_process_cannot_open_a_store_in_use() {
    let f = Fixture::new();
    let _store = f.open();
    let clock = f.clock.clone();
    let second = Store::open(
        f.dir.path(),
        StoreOptions {
            background: false,
            clock: Arc::new(move || clock.load(Ordering::SeqCst)),
            ..StoreOptions::default()
        },
    );
    let err = second.err().expect("refused").to_string();
    assert!(err.contains("in use by another process"), "{err}");
}

/// Reads everything numbered after `after` in batches of `batch`, as remote write does; returns
/// (agent, time, CPU) per report in the order read, and the last number seen.
fn read_all(store: &Store, mut after: u64, batch: usize) -> (Vec<(String, u64, f64)>, u64) {
    let mut out = Vec::new();
    loop {
        let read = store
            .read_sequenced(after, batch)
            .expect("read in sequence");
        for row in &read.rows {
            assert!(row.seq > after, "{} read again after {after}", row.seq);
            let key = store.series_key(row.series).expect("series known");
            let cpu = row
                .values
                .iter()
                .find(|(c, _)| store.column(*c).expect("column").field == Field::CpuPercent)
                .map(|(_, v)| Field::CpuPercent.def().value(*v))
                .expect("a CPU value");
            out.push((key.agent, row.time_ms, cpu));
        }
        if read.through == after {
            return (out, after);
        }
        after = read.through;
    }
}

#[test]
fn reports_are_read_in_the_order_they_were_accepted_from_the_head_chunks_and_after_a_restart() {
    let f = Fixture::new();
    let mut expected = Vec::new();
    let (first, after_first) = {
        let store = f.open();
        assert_eq!(store.committed_seq(), 0);
        for k in 0..30u64 {
            let t = T0 + k * 1000;
            let r = report(if k % 2 == 0 { "a" } else { "b" }, t, k);
            expected.push((r.agent.clone(), t, r.value(Field::CpuPercent).unwrap()));
            store.append(&[r], t).unwrap();
        }
        // A duplicate takes no number.
        store.append(&[report("a", T0, 0)], T0 + 30_000).unwrap();
        assert_eq!(store.committed_seq(), 30);
        // Half of it moves into chunks.
        f.set(T0 + 10 * 60_000);
        store.maintain(f.now()).unwrap();
        for k in 30..40u64 {
            let t = T0 + 10 * 60_000 + k * 1000;
            let r = report("a", t, k);
            expected.push((r.agent.clone(), t, r.value(Field::CpuPercent).unwrap()));
            store.append(&[r], t).unwrap();
        }
        let (seen, last) = read_all(&store, 0, 7);
        assert_eq!(seen, expected, "head and chunks, in acceptance order");
        assert_eq!(last, 40);
        store.set_cursor("dest", 25).unwrap();
        (seen, last)
    };
    assert_eq!(first.len(), 40);
    // After a restart the numbers go on, the cursor is where it was left, and a report that
    // comes a day late for an old hour is read after the ones before it.
    f.set(T0 + DAY_MS);
    let store = f.open();
    assert_eq!(store.cursor("dest").unwrap(), Some(25));
    assert_eq!(store.cursor("other").unwrap(), None);
    assert_eq!(store.committed_seq(), after_first);
    let late = report("c", T0 + 500, 99);
    store.append(&[late], f.now()).unwrap();
    store.maintain(f.now()).unwrap();
    f.set(T0 + DAY_MS + HOUR_MS);
    store.maintain(f.now()).unwrap();
    let (seen, last) = read_all(&store, 25, 1000);
    assert_eq!(last, 41);
    let mut want: Vec<_> = expected[25..].to_vec();
    want.push(("c".to_string(), T0 + 500, 99.5));
    assert_eq!(seen, want);
}
