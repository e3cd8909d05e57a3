//! Checks on single values and on the parts both dialects share (ids, seconds, thresholds,
//! addresses, device metrics, conditions, rule files), each returning a [`TaskError`] that points
//! at the offending value's path and line:column. This file holds the bounds and the
//! [`Checker`] that makes the errors; the checks are in `values` (single values), `device` (the
//! task header and each device) and `conditions` (thresholds against what a device measures).

mod conditions;
mod device;
mod values;

use super::error::{JsonPath, TaskError};
use super::position::PositionIndex;
use crate::wire::task::MAX_RULES;
use std::net::IpAddr;
use std::path::Path;

/// Longest frequency or duration: one day.
pub const MAX_SECONDS: u32 = 86_400;
/// Most rule files one device names; one more rule is left for its compiled conditions.
pub const MAX_RULE_FILES: usize = MAX_RULES - 1;
/// Most devices in one task.
pub const MAX_DEVICES: usize = 256;
/// Most tasks in one file.
pub const MAX_TASKS: usize = 1024;
/// Shortest interval between echo requests: what iputils ping allows (every user with current
/// iputils; older versions allow 0.2 s to users other than root, and an agent whose ping
/// refuses an interval says so in an ERROR alert).
pub const MIN_PING_INTERVAL_MS: u32 = 2;
/// The interval between echo requests when an assignment-dialect task does not give one: 0.2 s,
/// what every iputils ping allows every user.
pub const DEFAULT_PING_INTERVAL_MS: u32 = 200;
/// The interval between echo requests of an original-dialect ping without a `frequency`:
/// ping's own default, 1 s.
pub const ORIGINAL_DEFAULT_PING_INTERVAL_MS: u32 = 1000;
/// The rate a UDP iperf test offers when the task file does not say: 100 Mbit/s, which a LAN
/// carries without loss from the offered load alone (iperf3's own default is 1 Mbit/s).
pub const DEFAULT_UDP_RATE_BPS: u64 = 100_000_000;
/// Slowest and fastest UDP rates a task file may ask for, Mbit/s.
pub const MIN_RATE_MBPS: f64 = 0.001;
pub const MAX_RATE_MBPS: f64 = 100_000.0;

/// Whether `text` is a host name (RFC 1123 labels: letters, digits, inner hyphens) or an IPv4 or
/// IPv6 literal. Such a string is safe to hand to `ping` or `iperf3` as one argument: it has no
/// spaces, no shell metacharacters and cannot start with `-`.
pub fn is_host(text: &str) -> bool {
    if text.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = text.strip_suffix('.').unwrap_or(text);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Makes errors for one file: knows its name and where each value starts.
pub(super) struct Checker<'a> {
    pub origin: &'a str,
    pub index: &'a PositionIndex,
    pub base_dir: &'a Path,
}

/// What to do with a threshold on a figure the device does not measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unmeasured {
    /// An error (assignment dialect, and what configs/README.md promises).
    Refuse,
    /// Leave it out with a note (original dialect: that system only compared what it measured,
    /// and its files carry every threshold).
    Ignore,
}

impl Checker<'_> {
    pub fn error(&self, path: &JsonPath, message: impl Into<String>) -> TaskError {
        let at = self.index.locate(path);
        TaskError::Invalid {
            file: self.origin.to_owned(),
            path: path.clone(),
            line: at.line,
            column: at.column,
            message: message.into(),
        }
    }
}

/// iperf3's default port.
pub const DEFAULT_IPERF_PORT: u16 = 5201;

#[cfg(test)]
mod tests {
    use super::is_host;

    #[test]
    fn hosts_are_names_or_ip_literals() {
        for ok in [
            "127.0.0.1",
            "::1",
            "fe80::1",
            "r1",
            "host-2.example.org",
            "example.org.",
        ] {
            assert!(is_host(ok), "{ok}");
        }
        for bad in [
            "",
            "-c1",
            "a b",
            "a;b",
            "$(reboot)",
            "`id`",
            "a|b",
            "a&&b",
            "-",
            "a..b",
            "a-.b",
            "host_name",
            "10.0.0.1\n",
            "'x'",
            "\"x\"",
            ".",
            "a/b",
        ] {
            assert!(!is_host(bad), "{bad:?}");
        }
    }
}
