//! Lost and duplicated reports: what the simulated agents sent compared with what the server's
//! store holds. Every report a bench agent sends carries `time_ms = base + k` for its k-th
//! report, so the store's metrics log tells exactly which reports arrived and how often.

use serde::Deserialize;
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

/// The comparison.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Reports sent that the store does not hold.
    pub lost: u64,
    /// Extra copies of reports the store holds more than once.
    pub duplicated: u64,
    /// Reports of the bench's agents found in the store.
    pub stored: u64,
}

#[derive(Deserialize)]
struct Key {
    agent: String,
    time_ms: u64,
}

/// Reads `metrics.jsonl` and compares it with `sent` (reports per agent name).
pub fn check_store(
    metrics_log: &Path,
    base_ms: u64,
    sent: &HashMap<String, u64>,
) -> std::io::Result<Delivery> {
    let file = std::fs::File::open(metrics_log)?;
    let mut seen: HashMap<&str, Vec<u8>> = sent
        .iter()
        .map(|(name, n)| (name.as_str(), vec![0u8; *n as usize]))
        .collect();
    let mut delivery = Delivery::default();
    let mut line = Vec::new();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let Ok(record) = serde_json::from_slice::<Key>(&line) else {
            continue;
        };
        let Some(counts) = seen.get_mut(record.agent.as_str()) else {
            continue;
        };
        let Some(k) = record.time_ms.checked_sub(base_ms) else {
            continue;
        };
        match counts.get_mut(k as usize) {
            Some(c) => {
                delivery.stored += 1;
                if *c > 0 {
                    delivery.duplicated += 1;
                }
                *c = c.saturating_add(1);
            }
            // A report the bench never sent: count it as a duplicate (something stored twice
            // or invented), never silently.
            None => delivery.duplicated += 1,
        }
    }
    delivery.lost = seen
        .values()
        .map(|counts| counts.iter().filter(|c| **c == 0).count() as u64)
        .sum();
    Ok(delivery)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_repeated_records_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let line = |agent: &str, t: u64| {
            format!(r#"{{"agent":"{agent}","task":"x","time_ms":{t},"values":{{}}}}"#)
        };
        let text = [
            line("a", 100),
            line("a", 102),
            line("a", 102),
            line("b", 100),
            line("other", 100),
        ]
        .join("\n")
            + "\n";
        std::fs::write(&path, text).unwrap();
        let sent = HashMap::from([("a".to_string(), 3), ("b".to_string(), 1)]);
        let d = check_store(&path, 100, &sent).unwrap();
        assert_eq!(
            d,
            Delivery {
                lost: 1,
                duplicated: 1,
                stored: 4
            }
        );
    }
}
