//! Lost and duplicated reports: what the simulated agents sent compared with what the server's
//! store holds. Every report a bench agent sends carries `time_ms = base + k` for its k-th
//! report, so the store tells exactly which reports arrived and how often: after the server
//! is stopped, the bench opens its store (replaying its write-ahead log, as a restart would) and
//! counts every copy of every report. A report missing from the store is *lost* only if the
//! server acknowledged it; one never acknowledged is still the agent's to send again.

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The comparison.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Reports the server acknowledged that the store does not hold.
    pub lost: u64,
    /// Reports never acknowledged (in flight when the run ended) that the store does not hold.
    pub unacknowledged_missing: u64,
    /// Extra copies of reports the store holds more than once.
    pub duplicated: u64,
    /// Reports of the bench's agents found in the store.
    pub stored: u64,
}

/// Opens the store a stopped server left in `data_dir` (replaying its log, as the server does
/// at start) and compares what it holds with `sent` (reports per agent name).
pub fn check_store(
    data_dir: &Path,
    base_ms: u64,
    sent: &HashMap<String, u64>,
    never_acknowledged: &HashMap<String, HashSet<u64>>,
) -> Result<Delivery, crate::store::StoreError> {
    let store = crate::store::Store::open(
        data_dir,
        crate::store::StoreOptions {
            background: false,
            ..crate::store::StoreOptions::default()
        },
    )?;
    let times = store
        .scan_times()?
        .into_iter()
        .map(|(key, t)| (key.agent, t))
        .collect();
    Ok(compare(times, base_ms, sent, never_acknowledged))
}

/// Counts, per agent of `sent`, which report numbers (`time - base_ms`) are missing (lost when
/// acknowledged, see `never_acknowledged`) or held more than once.
pub fn compare(
    times: Vec<(String, u64)>,
    base_ms: u64,
    sent: &HashMap<String, u64>,
    never_acknowledged: &HashMap<String, HashSet<u64>>,
) -> Delivery {
    let mut seen: HashMap<&str, Vec<u8>> = sent
        .iter()
        .map(|(name, n)| (name.as_str(), vec![0u8; *n as usize]))
        .collect();
    let mut delivery = Delivery::default();
    for (agent, time_ms) in times {
        let Some(counts) = seen.get_mut(agent.as_str()) else {
            continue;
        };
        let Some(k) = time_ms.checked_sub(base_ms) else {
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
    let none = HashSet::new();
    for (agent, counts) in &seen {
        let never = never_acknowledged.get(*agent).unwrap_or(&none);
        for (k, c) in counts.iter().enumerate() {
            if *c > 0 {
                continue;
            }
            if never.contains(&(k as u64)) {
                delivery.unacknowledged_missing += 1;
            } else {
                delivery.lost += 1;
            }
        }
    }
    delivery
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_repeated_records_are_counted() {
        let times = vec![
            ("a".to_string(), 100),
            ("a".to_string(), 102),
            ("a".to_string(), 102),
            ("b".to_string(), 100),
            ("other".to_string(), 100),
        ];
        let sent = HashMap::from([("a".to_string(), 3), ("b".to_string(), 2)]);
        // b's second report (101) was never acknowledged: missing, but not lost.
        let never = HashMap::from([("b".to_string(), HashSet::from([1]))]);
        let d = compare(times, 100, &sent, &never);
        assert_eq!(
            d,
            Delivery {
                lost: 1,
                unacknowledged_missing: 1,
                duplicated: 1,
                stored: 4
            }
        );
    }
}
