//! Imports an older store: the JSON-lines logs `metrics.jsonl` and `alerts.jsonl` that earlier
//! versions kept in the data directory. They are read as a stream (memory does not grow with
//! their size), stored through the same path as new reports (each exactly once, so an
//! interrupted import simply runs again), and renamed to `*.imported` when done, never deleted.

use super::{AlertRecord, Inner, Report, StoreError};
use crate::schema::{Field, Reading};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

/// Reports stored per batch while importing.
const BATCH: usize = 20_000;

/// A record of the older `metrics.jsonl`.
#[derive(Deserialize)]
struct LegacyMetric {
    agent: String,
    task: String,
    time_ms: u64,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    values: BTreeMap<String, f64>,
    #[serde(default)]
    interfaces: BTreeMap<String, LegacyInterface>,
}

#[derive(Deserialize)]
struct LegacyInterface {
    packets_per_sec: f64,
    bytes_per_sec: f64,
    errors_per_sec: f64,
}

impl LegacyMetric {
    /// The typed report. The older format named an iperf test's jitter and loss like a
    /// ping's and kept jitter only for UDP tests.
    fn report(self) -> Report {
        let iperf = self.values.contains_key("bandwidth_bps");
        let transport = if self.values.contains_key("jitter_ms") {
            "udp"
        } else {
            "tcp"
        };
        let mut readings = Vec::new();
        for (name, value) in &self.values {
            let field = match (name.as_str(), iperf) {
                ("jitter_ms", true) => Some(Field::IperfJitterMs),
                ("loss_percent", true) => Some(Field::IperfLossPercent),
                (other, _) => Field::by_name(other),
            };
            if let Some(field) = field {
                let instance = (field.def().sample == crate::schema::SampleKind::Iperf)
                    .then(|| transport.to_string());
                readings.push(Reading {
                    field,
                    instance,
                    value: *value,
                });
            }
        }
        for (name, i) in &self.interfaces {
            for (field, value) in [
                (Field::PacketsPerSec, i.packets_per_sec),
                (Field::BytesPerSec, i.bytes_per_sec),
                (Field::ErrorsPerSec, i.errors_per_sec),
            ] {
                readings.push(Reading {
                    field,
                    instance: Some(name.clone()),
                    value,
                });
            }
        }
        Report {
            agent: self.agent,
            task: self.task,
            target: self.target,
            time_ms: self.time_ms,
            readings,
        }
    }
}

fn progress(path: &Path, done: u64, bytes: u64, total: u64) {
    crate::log::event(
        crate::log::Level::Info,
        "IMPORT",
        format_args!(
            "{}: {done} records ({:.0}%)",
            path.display(),
            100.0 * bytes as f64 / total.max(1) as f64
        ),
    );
}

/// Reads `path` line by line, handing each batch of parsed records to `store`; returns the
/// records read and the lines that did not parse.
fn stream<T: serde::de::DeserializeOwned>(
    path: &Path,
    mut store: impl FnMut(Vec<T>) -> Result<(), StoreError>,
) -> Result<(u64, u64), StoreError> {
    let file = std::fs::File::open(path).map_err(StoreError::io(path))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let (mut done, mut bad, mut bytes) = (0u64, 0u64, 0u64);
    let mut batch = Vec::with_capacity(BATCH);
    let mut next_report = total / 10;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(StoreError::io(path))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        match serde_json::from_slice::<T>(&line) {
            Ok(r) => batch.push(r),
            // A torn last line or a damaged one: counted, never fatal.
            Err(_) => bad += 1,
        }
        if batch.len() >= BATCH {
            done += batch.len() as u64;
            store(std::mem::take(&mut batch))?;
            if bytes >= next_report {
                progress(path, done, bytes, total);
                next_report = bytes + total / 10;
            }
        }
    }
    done += batch.len() as u64;
    if !batch.is_empty() {
        store(batch)?;
    }
    Ok((done, bad))
}

fn finish(path: &Path, done: u64, bad: u64) -> Result<(), StoreError> {
    let mut kept = path.as_os_str().to_owned();
    kept.push(".imported");
    std::fs::rename(path, &kept).map_err(StoreError::io(path))?;
    crate::log::event(
        crate::log::Level::Good,
        "IMPORT",
        format_args!(
            "{}: {done} records imported{}; the file is kept as {}",
            path.display(),
            if bad > 0 {
                format!(", {bad} unreadable line(s) skipped")
            } else {
                String::new()
            },
            std::path::Path::new(&kept).display()
        ),
    );
    Ok(())
}

/// Imports what an older store left in the data directory (nothing when it is not there).
pub(super) fn run(inner: &Inner, now_ms: u64) -> Result<(), StoreError> {
    let metrics = inner.data_dir.join("metrics.jsonl");
    if metrics.exists() {
        crate::log::event(
            crate::log::Level::Info,
            "IMPORT",
            format_args!("importing {} into the store", metrics.display()),
        );
        let (done, bad) = stream::<LegacyMetric>(&metrics, |batch| {
            let reports: Vec<Report> = batch.into_iter().map(LegacyMetric::report).collect();
            let outcomes = inner.append_with(&reports, now_ms, true)?;
            inner.stats().imported_metrics += outcomes
                .iter()
                .filter(|o| **o == super::Stored::New)
                .count() as u64;
            // Seal what is complete, so the head stays small however large the file.
            super::maintain::pass(inner, now_ms)
        })?;
        super::maintain::pass(inner, now_ms)?;
        finish(&metrics, done, bad)?;
    }
    let alerts = inner.data_dir.join("alerts.jsonl");
    if alerts.exists() {
        let (done, bad) = stream::<AlertRecord>(&alerts, |batch| {
            let outcomes = super::alerts::store(inner, batch)?;
            inner.stats().imported_alerts += outcomes
                .iter()
                .filter(|o| **o == super::Stored::New)
                .count() as u64;
            Ok(())
        })?;
        finish(&alerts, done, bad)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_records_become_typed_reports() {
        let line = r#"{"agent":"r3","task":"t","time_ms":5,"target":"10.0.0.1","values":{"bandwidth_bps":9.4e7,"jitter_ms":0.4,"loss_percent":1.0}}"#;
        let r = serde_json::from_str::<LegacyMetric>(line).unwrap().report();
        let fields: Vec<(Field, Option<&str>)> = r
            .readings
            .iter()
            .map(|x| (x.field, x.instance.as_deref()))
            .collect();
        assert!(fields.contains(&(Field::BandwidthBps, Some("udp"))));
        assert!(fields.contains(&(Field::IperfJitterMs, Some("udp"))));
        assert!(fields.contains(&(Field::IperfLossPercent, Some("udp"))));
        let line = r#"{"agent":"r1","task":"t","time_ms":5,"values":{"cpu_percent":3.5},"interfaces":{"eth0":{"packets_per_sec":1,"bytes_per_sec":2,"errors_per_sec":0}}}"#;
        let r = serde_json::from_str::<LegacyMetric>(line).unwrap().report();
        assert_eq!(r.readings.len(), 4);
        assert_eq!(r.readings[0].field, Field::CpuPercent);
    }
}
