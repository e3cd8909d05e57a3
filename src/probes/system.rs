//! METRICSGATHERING: CPU, RAM and interface counters through sysinfo, measured over the interval
//! since the previous sample rather than since boot.
//!
//! Priming: [`SystemSampler::new`] takes a first reading of the CPU times and of every
//! interface's counters, so the first [`SystemSampler::sample`] already measures over the time
//! since `new` (create the sampler when the work starts, sample at the end of each period). An
//! interface that appears later is read for the first time in the call that first finds it,
//! which reports its rates as NaN ("not measured"); so does a counter that went down (the
//! interface was re-created or the counter reset), so a reset never yields a negative or huge
//! rate. Only what is asked for is refreshed (no process list, no disks), to keep an agent small.
//! Each interface sample also carries the interface's link state ([`super::link`]).
//!
//! It also carries the raw counters, receive and transmit apart (sysinfo's
//! totals; drops from `/sys/class/net/IF/statistics/{rx,tx}_dropped` on Linux, not measured
//! elsewhere), for Prometheus' `_total` counters; the rates stay for the rules.

use super::error::ProbeError;
use crate::wire::{InterfaceCounters, Sample};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Instant;
use sysinfo::{Networks, System};

/// Where Linux shows each network interface's state.
const SYSFS_NET: &str = "/sys/class/net";

/// Counter totals of one interface at one instant.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    packets: u64,
    bytes: u64,
    errors: u64,
}

impl Reading {
    fn of(data: &sysinfo::NetworkData, at: Instant) -> Self {
        Reading {
            at,
            packets: data
                .total_packets_received()
                .saturating_add(data.total_packets_transmitted()),
            bytes: data
                .total_received()
                .saturating_add(data.total_transmitted()),
            errors: data
                .total_errors_on_received()
                .saturating_add(data.total_errors_on_transmitted()),
        }
    }
}

/// Samples CPU %, RAM % and interface rates, keeping the previous readings between calls.
pub struct SystemSampler {
    system: System,
    networks: Networks,
    previous: HashMap<String, Reading>,
}

impl SystemSampler {
    /// Takes the priming readings (CPU times and every interface's counters) at `now`.
    pub fn new(now: Instant) -> Result<Self, ProbeError> {
        let system_error = |e: sysinfo::Error| ProbeError::System(e.to_string());
        let mut system = System::new().map_err(system_error)?;
        system.refresh_cpu_usage();
        let networks = Networks::new_with_refreshed_list().map_err(system_error)?;
        let previous = networks
            .iter()
            .filter_map(|(name, data)| Some((name.to_str()?.to_owned(), Reading::of(data, now))))
            .collect();
        Ok(SystemSampler {
            system,
            networks,
            previous,
        })
    }

    /// Measures what is asked: CPU % over the interval since the previous CPU reading, RAM % in
    /// use now, and for each named interface packets/s, bytes/s and errors/s (received plus
    /// transmitted) since its previous reading. A named interface that does not exist gives a
    /// [`ProbeError::NoSuchInterface`] in the second list, and no sample.
    pub fn sample(
        &mut self,
        now: Instant,
        cpu: bool,
        ram: bool,
        interfaces: &[String],
    ) -> (Vec<Sample>, Vec<ProbeError>) {
        let mut samples = Vec::new();
        let mut errors = Vec::new();
        if cpu {
            self.system.refresh_cpu_usage();
            samples.push(Sample::Cpu {
                percent: percent(f64::from(self.system.global_cpu_usage())),
            });
        }
        if ram {
            self.system.refresh_memory();
            let total = self.system.total_memory();
            let used = self.system.used_memory();
            samples.push(Sample::Ram {
                percent: if total == 0 {
                    f32::NAN
                } else {
                    percent(used as f64 * 100.0 / total as f64)
                },
            });
        }
        if !interfaces.is_empty() {
            self.networks.refresh(true);
        }
        for (i, name) in interfaces.iter().enumerate() {
            if interfaces[..i].contains(name) {
                continue;
            }
            let Some(data) = self.networks.get(OsStr::new(name)) else {
                self.previous.remove(name);
                errors.push(ProbeError::NoSuchInterface(name.clone()));
                continue;
            };
            let reading = Reading::of(data, now);
            let before = self.previous.insert(name.clone(), reading);
            let rate = |pick: fn(&Reading) -> u64| match before {
                Some(before) => rate(pick(&before), pick(&reading), before.at, now),
                None => f32::NAN,
            };
            samples.push(Sample::Interface {
                name: name.clone(),
                state: super::link::read(Path::new(SYSFS_NET), name),
                packets_per_sec: rate(|r| r.packets),
                bytes_per_sec: rate(|r| r.bytes),
                errors_per_sec: rate(|r| r.errors),
                counters: counters(data, Path::new(SYSFS_NET), name),
            });
        }
        (samples, errors)
    }
}

/// The raw counters of an interface: sysinfo's totals, and the drops from
/// `SYSFS/IF/statistics/{rx,tx}_dropped` (`None` where the file is missing or unreadable).
fn counters(data: &sysinfo::NetworkData, sysfs: &std::path::Path, name: &str) -> InterfaceCounters {
    let statistic = |file: &str| -> Option<u64> {
        // A name that is not a plain file name never reaches the file system.
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return None;
        }
        let text = std::fs::read_to_string(sysfs.join(name).join("statistics").join(file)).ok()?;
        text.trim().parse().ok()
    };
    InterfaceCounters {
        rx_bytes: Some(data.total_received()),
        tx_bytes: Some(data.total_transmitted()),
        rx_packets: Some(data.total_packets_received()),
        tx_packets: Some(data.total_packets_transmitted()),
        rx_errors: Some(data.total_errors_on_received()),
        tx_errors: Some(data.total_errors_on_transmitted()),
        rx_dropped: statistic("rx_dropped"),
        tx_dropped: statistic("tx_dropped"),
    }
}

/// A percentage held within 0..=100; NaN stays NaN.
fn percent(value: f64) -> f32 {
    if value.is_nan() {
        f32::NAN
    } else {
        value.clamp(0.0, 100.0) as f32
    }
}

/// Counter growth per second; NaN when the counter went down (reset, re-created interface) or
/// no time passed.
fn rate(before: u64, after: u64, from: Instant, to: Instant) -> f32 {
    let seconds = to.saturating_duration_since(from).as_secs_f64();
    match after.checked_sub(before) {
        Some(delta) if seconds > 0.0 => (delta as f64 / seconds) as f32,
        _ => f32::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rate_is_growth_per_second() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(4);
        assert_eq!(rate(1000, 3000, t0, t1), 500.0);
        assert_eq!(rate(7, 7, t0, t1), 0.0);
    }

    #[test]
    fn reset_counter_or_no_elapsed_time_is_not_measured() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        assert!(rate(u64::MAX - 5, 10, t0, t1).is_nan());
        assert!(rate(10, 20, t0, t0).is_nan());
        assert!(rate(10, 20, t1, t0).is_nan());
    }

    #[test]
    fn percent_is_bounded() {
        assert_eq!(percent(150.0), 100.0);
        assert_eq!(percent(-1.0), 0.0);
        assert!(percent(f64::NAN).is_nan());
    }
}
