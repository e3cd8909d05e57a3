//! The store through a real server: two days of history served by range, by step and page by
//! page right after a start, bad parameters named in 4xx answers, the status page's ranges,
//! an older store's JSON logs imported at start, and a full disk that acknowledges nothing and
//! recovers by itself.

mod support;

use nms::schema::{Field, Reading};
use nms::store::{Report, Store, StoreOptions};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use support::http::http_get;
use support::sandbox::{Sandbox, Server};
use support::wait::{WAIT, wait_for};

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// Writes `hours` of one report every 10 s of agent `hist` into the store of `data_dir`,
/// ending at `end_ms`; returns how many.
fn write_history(data_dir: &Path, end_ms: u64, hours: u64) -> u64 {
    let store = Store::open(
        data_dir,
        StoreOptions {
            background: false,
            ..StoreOptions::default()
        },
    )
    .expect("open the store");
    let start = end_ms - hours * HOUR_MS;
    let start = start - start % 10_000;
    let mut n = 0;
    let mut t = start;
    while t < end_ms {
        let batch: Vec<Report> = (0..360)
            .map(|i| t + i * 10_000)
            .filter(|t| *t < end_ms)
            .map(|t| Report {
                agent: "hist".into(),
                task: "t1".into(),
                target: Some("10.0.0.1".into()),
                time_ms: t,
                readings: vec![
                    Reading {
                        field: Field::RttAvgMs,
                        instance: None,
                        value: 1.0 + (t / 10_000 % 100) as f64 / 100.0,
                    },
                    Reading {
                        field: Field::LossPercent,
                        instance: None,
                        value: 0.0,
                    },
                ],
            })
            .collect();
        n += batch.len() as u64;
        store.bulk_load(&batch).expect("write history");
        t += 3_600_000;
    }
    n
}

fn get(server: &Server, path: &str) -> support::http::HttpResponse {
    http_get(server.http_addr(), path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

#[test]
fn two_days_of_history_are_served_by_range_by_step_and_page_by_page() {
    let mut sandbox = Sandbox::new();
    let now = nms::log::now_ms();
    let end = now - now % HOUR_MS;
    let written = write_history(&sandbox.path().join("data/server"), end, 48);
    let server = sandbox.start_server(&[], &[]);
    let from = end - 48 * HOUR_MS;

    check_statistics_per_hour(&server, from, end, written);
    check_minutes_of_one_field(&server, from, end);
    check_raw_reports_page_by_page(&server, end);
    check_bad_parameters_are_named(&server);
    check_the_status_page_ranges(&server);
}

/// Statistics per hour of the whole two days: every report counted.
fn check_statistics_per_hour(server: &Server, from: u64, end: u64, written: u64) {
    let answer = get(
        server,
        &format!("/api/metrics?agent=hist&from={from}&to={end}&step=1h"),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = answer.json();
    let series = answer["series"].as_array().expect("series");
    assert_eq!(series.len(), 1);
    assert_eq!(series[0]["tier"], "hour");
    let steps = series[0]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 48);
    let counted: u64 = steps
        .iter()
        .map(|s| s["rtt_avg_ms"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, written);
    let first = &steps[0]["rtt_avg_ms"];
    assert!(first["p10"].as_f64() <= first["p50"].as_f64());
    assert!(first["p50"].as_f64() <= first["p90"].as_f64());
    assert_eq!(steps[0]["time_ms"].as_u64(), Some(from));
}

/// The same range into minutes, only one field: from the minute tier.
fn check_minutes_of_one_field(server: &Server, from: u64, end: u64) {
    let answer = get(
        server,
        &format!("/api/metrics?agent=hist&from={from}&to={end}&step=5m&fields=loss_percent"),
    )
    .json();
    let s = &answer["series"][0];
    assert_eq!(s["tier"], "minute");
    assert_eq!(s["steps"].as_array().unwrap().len(), 48 * 12);
    assert!(
        s["steps"][0].get("rtt_avg_ms").is_none(),
        "only the asked field"
    );
}

/// Raw reports of two hours, page by page with the cursor: each once, in order.
fn check_raw_reports_page_by_page(server: &Server, end: u64) {
    let (a, b) = (end - 2 * HOUR_MS, end);
    let mut times = Vec::new();
    let mut path = format!("/api/metrics?agent=hist&from={a}&to={b}&limit=250");
    loop {
        let page = get(server, &path);
        assert_eq!(page.status, 200, "{}", page.body);
        for r in page.json().as_array().unwrap() {
            times.push(r["time_ms"].as_u64().unwrap());
        }
        match page.header("x-next-cursor") {
            Some(c) => {
                path = format!("/api/metrics?agent=hist&from={a}&to={b}&limit=250&after={c}")
            }
            None => break,
        }
    }
    assert_eq!(times.len(), 720);
    assert!(times.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(times[0], a);
}

/// Bad parameters are named.
fn check_bad_parameters_are_named(server: &Server) {
    for (query, named) in [
        ("agent=hist&step=abc", "step=abc"),
        ("agent=hist&step=10ms", "step=10ms"),
        ("agent=hist&fields=rtt", "fields=rtt"),
        ("agent=hist&from=yesterday", "from=yesterday"),
        ("agent=hist&from=2000&to=1000", "from=2000"),
        ("agent=hist&after=xyz", "after=xyz"),
        ("agent=hist&colour=red", "colour"),
        ("agent=hist&from=0&to=99999999999999&step=1s", "step=1s"),
    ] {
        let answer = get(server, &format!("/api/metrics?{query}"));
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        let error = answer.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(error.contains(named), "{query}: {error}");
    }
    let answer = get(server, "/api/alerts?from=1&to=0");
    assert_eq!(answer.status, 400);
}

/// The status page's ranges.
fn check_the_status_page_ranges(server: &Server) {
    for (range, label) in [
        ("7d", "Last 7 days"),
        ("30d", "Last 30 days"),
        ("1y", "Last year"),
    ] {
        let page = get(server, &format!("/?range={range}"));
        assert_eq!(page.status, 200);
        assert!(page.body.contains(label), "{range}");
    }
    let page = get(server, "/?range=2w");
    assert_eq!(page.status, 400);
    assert!(page.body.contains("range=2w"));
}

#[test]
fn an_older_stores_json_logs_are_imported_when_the_server_starts() {
    let mut sandbox = Sandbox::new();
    let data = sandbox.path().join("data/server");
    std::fs::create_dir_all(&data).unwrap();
    let now = nms::log::now_ms();
    let mut text = String::new();
    for i in 0..300u64 {
        text.push_str(&format!(
            r#"{{"agent":"old","task":"t1","time_ms":{},"values":{{"cpu_percent":{}}}}}"#,
            now - DAY_MS + i * 1000,
            i % 100
        ));
        text.push('\n');
    }
    std::fs::write(data.join("metrics.jsonl"), text).unwrap();
    let server = sandbox.start_server(&[], &[]);
    let status = wait_for(WAIT, "the import", || {
        let s = server.try_get("/api/status")?;
        (s["store"]["imported_metrics"] == 300 && data.join("metrics.jsonl.imported").exists())
            .then_some(s)
    });
    assert_eq!(status["store"]["imported_metrics"], 300);
    let records = server.get(&format!(
        "/api/metrics?agent=old&from={}&limit=1000",
        now - 2 * DAY_MS
    ));
    assert_eq!(records.as_array().unwrap().len(), 300);
    assert!(data.join("metrics.jsonl.imported").exists());
    assert!(sandbox.log(&server.name).contains("300 records imported"));
}

/// Whether this process may mount file systems (the suite runs as root in CI).
fn can_mount() -> bool {
    let ok = nix_is_root();
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("the disk-full test needs root (CI runs as root)");
        }
        eprintln!("skipped: mounting a small file system needs root");
    }
    ok
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A small tmpfs mounted at a folder, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// Mounts a 16 MB tmpfs at `dir` (created first).
    fn mount(dir: &Path) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(mounted.success(), "mount a tmpfs at {}", dir.display());
        SmallDisk(dir.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_acknowledges_nothing_it_cannot_keep_and_ingest_resumes_by_itself() {
    if !can_mount() {
        return;
    }
    let mut sandbox = Sandbox::new();
    let store_dir = sandbox.path().join("data/server/store");
    let _disk = SmallDisk::mount(&store_dir);
    let server = sandbox.start_server(&[], &["--max-agents", "100"]);

    // Simulated agents report as fast as acknowledgements allow while the disk fills up.
    let bench = {
        let (nettask, http) = (server.nettask_addr(), server.http_addr().to_string());
        let token_file = sandbox.path().join("data/server/api-token");
        std::thread::spawn(move || {
            std::process::Command::new(support::process::nms_binary())
                .args(["bench", "--server", &nettask, "--http", &http])
                .args(["--agents", "8", "--rate", "40", "--seconds", "14"])
                .args(["--ceiling-seconds", "0.5", "--json", "--api-token-file"])
                .arg(token_file)
                .output()
                .expect("run nms bench")
        })
    };
    wait_for(WAIT, "reports stored", || {
        let s = server.try_get("/api/status")?;
        (s["store"]["metrics_stored"].as_u64() > Some(200)).then_some(())
    });
    let filler = fill_the_disk_until_the_store_fails(&server, &store_dir);
    std::thread::sleep(Duration::from_secs(3));
    // Space returns.
    std::fs::remove_file(&filler).unwrap();
    wait_for(WAIT, "writes to succeed again", || {
        let s = server.try_get("/api/status")?;
        s["store"]["failing"].is_null().then_some(())
    });
    let out = bench.join().unwrap();
    assert!(
        out.status.success(),
        "nms bench: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["duplicated"], 0, "{report}");
    assert_eq!(report["unacknowledged"], 0, "{report}");
    let log = sandbox.log(&server.name);
    assert_eq!(
        log.matches("cannot store metrics reports").count(),
        1,
        "said once per episode:\n{log}"
    );
    assert!(log.contains("writes succeed again"));
    // Nothing half-written is left in the log.
    sandbox.kill(&server.name);
    let check = nms::store::check::check(&store_dir).unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
}

/// Fills the disk of the store; waits until the store says it cannot write, in its status
/// and in a counter. Returns the file that fills it.
fn fill_the_disk_until_the_store_fails(server: &Server, store_dir: &Path) -> std::path::PathBuf {
    let filler = store_dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let block = vec![7u8; 64 * 1024];
    while std::io::Write::write_all(&mut f, &block).is_ok() {}
    drop(f);
    let failing = wait_for(WAIT, "the store to say it cannot write", || {
        let s = server.try_get("/api/status")?;
        s["store"]["failing"].as_str().map(str::to_string)
    });
    assert!(failing.contains("No space left"), "{failing}");
    let metrics = server.get_text("/metrics");
    assert!(
        metrics.contains("nms_store_write_failures_total"),
        "a counter says so too"
    );
    filler
}
