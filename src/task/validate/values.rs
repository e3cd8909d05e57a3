//! Checks on single values: ids, whole numbers and seconds, milliseconds, ping counts and
//! intervals, rates, ports and host names. Each error names the field and the bound it breaks.

use super::{
    Checker, DEFAULT_IPERF_PORT, MAX_RATE_MBPS, MAX_SECONDS, MIN_PING_INTERVAL_MS, MIN_RATE_MBPS,
    is_host,
};
use crate::probes::ping::MAX_PACKET_COUNT;
use crate::task::dialect::TextId;
use crate::task::error::{JsonPath, TaskError};
use crate::wire::codec::MAX_STRING_LEN;
use serde_json::Number;

impl Checker<'_> {
    /// A `task_id` or `device_id`: non-empty, printable, not too long.
    pub fn id(&self, path: &JsonPath, id: &TextId, what: &str) -> Result<String, TaskError> {
        let text = id.0.trim();
        if text.is_empty() {
            return Err(self.error(path, format!("{what} is empty")));
        }
        if text.len() != id.0.len() || id.0.chars().any(char::is_control) {
            return Err(self.error(
                path,
                format!(
                    "{what} {:?} has surrounding spaces or control characters",
                    id.0
                ),
            ));
        }
        if text.len() > MAX_STRING_LEN {
            return Err(self.error(
                path,
                format!(
                    "{what} is {} bytes long, more than {MAX_STRING_LEN}",
                    text.len()
                ),
            ));
        }
        Ok(id.0.clone())
    }

    /// A whole number `n` of the field `what` in `min..=max` `unit`s (`unit` may be empty):
    /// "not a whole number" for a fraction, "too large" past `max`, "must be at least" below
    /// `min`.
    pub fn whole(
        &self,
        path: &JsonPath,
        n: &Number,
        what: &str,
        unit: &str,
        (min, max): (u64, u64),
    ) -> Result<u64, TaskError> {
        let units = |v: u64| match unit {
            "" => v.to_string(),
            "seconds" if v == 1 => "1 second".to_owned(),
            "seconds" if v == u64::from(MAX_SECONDS) => format!("{v} seconds (one day)"),
            _ => format!("{v} {unit}"),
        };
        let too_large = || {
            self.error(
                path,
                format!("{what} {n} is too large: at most {}", units(max)),
            )
        };
        let too_small = || self.error(path, format!("{what} {n} must be at least {}", units(min)));
        if let Some(v) = n.as_u64() {
            return match v {
                v if v > max => Err(too_large()),
                v if v < min => Err(too_small()),
                v => Ok(v),
            };
        }
        let v = n.as_f64().unwrap_or(f64::NAN);
        if v.fract() != 0.0 {
            let of = if unit.is_empty() {
                String::new()
            } else {
                format!(" of {unit}")
            };
            return Err(self.error(path, format!("{what} {n} is not a whole number{of}")));
        }
        if v > max as f64 {
            Err(too_large())
        } else if v.is_nan() || v < min as f64 {
            Err(too_small())
        } else {
            Ok(v as u64)
        }
    }

    /// Whole seconds in 1..=MAX_SECONDS; `what` names the field in the message.
    pub fn seconds(&self, path: &JsonPath, n: &Number, what: &str) -> Result<u32, TaskError> {
        let seconds = self.whole(path, n, what, "seconds", (1, MAX_SECONDS.into()))?;
        Ok(seconds as u32)
    }

    /// A number of seconds that may be a fraction, to the millisecond, in `min_ms..=max_ms`;
    /// returned in milliseconds.
    pub fn milliseconds(
        &self,
        path: &JsonPath,
        n: &Number,
        what: &str,
        (min_ms, max_ms): (u32, u32),
    ) -> Result<u32, TaskError> {
        let seconds = n.as_f64().unwrap_or(f64::NAN);
        let ms = seconds * 1000.0;
        if ms.is_nan() || ms < f64::from(min_ms) {
            return Err(self.error(
                path,
                format!(
                    "{what} {n} s is too small: at least {} s",
                    f64::from(min_ms) / 1000.0
                ),
            ));
        }
        if ms > f64::from(max_ms) {
            return Err(self.error(
                path,
                format!(
                    "{what} {n} s is too large: at most {} s",
                    f64::from(max_ms) / 1000.0
                ),
            ));
        }
        if (ms - ms.round()).abs() > 1e-6 {
            return Err(self.error(path, format!("{what} {n} s is finer than a millisecond")));
        }
        Ok(ms.round() as u32)
    }

    /// An optional frequency that falls back to the task's.
    pub fn frequency_or(
        &self,
        path: &JsonPath,
        n: Option<&Number>,
        task_frequency_s: u32,
    ) -> Result<u32, TaskError> {
        n.map_or(Ok(task_frequency_s), |n| self.seconds(path, n, "frequency"))
    }

    /// An iperf test duration, which must end before the next run starts.
    pub fn duration(
        &self,
        path: &JsonPath,
        n: &Number,
        what: &str,
        frequency_s: u32,
    ) -> Result<u32, TaskError> {
        let duration_s = self.seconds(path, n, what)?;
        if duration_s >= frequency_s {
            return Err(self.error(
                path,
                format!(
                    "{what} {duration_s} s does not fit in the frequency of {frequency_s} s \
                     (a test must end before the next one starts)"
                ),
            ));
        }
        Ok(duration_s)
    }

    /// A ping packet count, 1..=MAX_PACKET_COUNT.
    pub fn packet_count(&self, path: &JsonPath, n: &Number) -> Result<u16, TaskError> {
        let count = self.whole(path, n, "packet_count", "", (1, MAX_PACKET_COUNT.into()))?;
        Ok(count as u16)
    }

    /// The interval between echo requests (`ping -i`), seconds to the millisecond: at least
    /// what iputils ping allows (0.002 s).
    pub fn ping_interval(&self, path: &JsonPath, n: &Number, what: &str) -> Result<u32, TaskError> {
        self.milliseconds(path, n, what, (MIN_PING_INTERVAL_MS, MAX_SECONDS * 1000))
    }

    /// Assignment dialect: `packet_count` echo requests `interval_ms` apart, and a moment for the
    /// last reply, must end before the next run starts: (count − 1) × interval + 1 s at most
    /// the frequency.
    pub fn ping_fits(
        &self,
        path: &JsonPath,
        count: u16,
        interval_ms: u32,
        frequency_s: u32,
    ) -> Result<(), TaskError> {
        let budget_ms = (u64::from(frequency_s) * 1000).saturating_sub(1000);
        let max = (budget_ms / u64::from(interval_ms) + 1).min(MAX_PACKET_COUNT.into());
        if u64::from(count) > max {
            return Err(self.error(
                path,
                format!(
                    "packet_count {count} does not fit in the frequency of {frequency_s} s \
                     (ping sends a packet every {} s and the run must end before the next \
                     one starts; at most {max} fit)",
                    f64::from(interval_ms) / 1000.0
                ),
            ));
        }
        Ok(())
    }

    /// A UDP target rate in Mbit/s (`rate_mbps`), as bits per second.
    pub fn rate(&self, path: &JsonPath, n: &Number) -> Result<u64, TaskError> {
        let mbps = n.as_f64().unwrap_or(f64::NAN);
        if mbps.is_nan() || mbps < MIN_RATE_MBPS {
            return Err(self.error(
                path,
                format!("rate_mbps {n} is too small: at least {MIN_RATE_MBPS} (1 kbit/s)"),
            ));
        }
        if mbps > MAX_RATE_MBPS {
            return Err(self.error(
                path,
                format!("rate_mbps {n} is too large: at most {MAX_RATE_MBPS} (100 Gbit/s)"),
            ));
        }
        Ok((mbps * 1e6).round() as u64)
    }

    /// An iperf port, 1..=65535; absent means iperf3's default, 5201.
    pub fn port(&self, path: &JsonPath, port: Option<&Number>) -> Result<u16, TaskError> {
        match port {
            None => Ok(DEFAULT_IPERF_PORT),
            Some(n) => Ok(self.whole(path, n, "port", "", (1, u16::MAX.into()))? as u16),
        }
    }

    /// A ping destination or iperf server address.
    pub fn host(&self, path: &JsonPath, text: &str, what: &str) -> Result<String, TaskError> {
        if is_host(text) {
            Ok(text.to_owned())
        } else {
            Err(self.error(
                path,
                format!(
                    "{what} {text:?} is not a host name or IP address (letters, digits, '-' and \
                     '.', or an IP literal)"
                ),
            ))
        }
    }
}
