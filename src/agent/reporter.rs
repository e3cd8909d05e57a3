//! How an agent's workers hand over what they produce: metrics reports to the NetTask
//! endpoint (each with a time later than the agent's previous report) and alerts to the
//! AlertFlow spool.

use crate::log::{self, Level};
use crate::nettask::AgentEndpoint;
use crate::nettask::driver::Command;
use crate::wire::{Alert, Message, MetricsReport};
use smol::channel::Sender;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// How workers hand over reports and alerts.
#[derive(Clone)]
pub struct Reporter {
    pub(super) commands: Sender<Command<AgentEndpoint>>,
    pub(super) alerts: Sender<Alert>,
    pub(super) last_sent_ms: Arc<AtomicU64>,
    pub(super) last_report_time_ms: Arc<AtomicU64>,
}

impl Reporter {
    /// The time of a new report: now, but always later than the agent's previous report. The
    /// server stores one report per (agent, task, time), so two measurements that end in the
    /// same millisecond must not share a time.
    pub fn report_time(&self) -> u64 {
        next_report_time(&self.last_report_time_ms, log::now_ms())
    }

    /// Queues a metrics report for the server.
    pub fn report(&self, report: MetricsReport) {
        self.last_sent_ms.store(log::now_ms(), Ordering::Relaxed);
        let message = Message::Metrics(report);
        let _ = self.commands.try_send(Box::new(move |ep, now| {
            ep.send(now, &message);
        }));
    }

    /// Spools an alert and sends it over AlertFlow.
    pub fn raise(&self, alert: Alert) {
        if log_reports() {
            if alert.resolves == 0 {
                log::event(
                    Level::Info,
                    "RAISED",
                    format_args!(
                        "{:016x} {} {}",
                        alert.alert_id,
                        alert.task,
                        alert.alert_type.name()
                    ),
                );
            } else {
                log::event(
                    Level::Info,
                    "RESOLVING",
                    format_args!(
                        "{:016x} resolves {:016x} {} {}",
                        alert.alert_id,
                        alert.resolves,
                        alert.task,
                        alert.alert_type.name()
                    ),
                );
            }
        }
        let _ = self.alerts.try_send(alert);
    }
}

/// `now_ms`, or one more than the last time handed out when that is not earlier; remembers it.
fn next_report_time(last: &AtomicU64, now_ms: u64) -> u64 {
    let previous = last
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |prev| {
            Some(now_ms.max(prev + 1))
        })
        .unwrap_or(now_ms);
    now_ms.max(previous + 1)
}

/// Whether the environment variable `NMS_LOG_REPORTS` (set, not empty, not `0`) asks for one
/// `REPORT <task> <time_ms>` line per metrics report and one `RAISED <alert_id> ...` line per
/// alert, so that what an agent produced can be compared with what the server stored.
pub fn log_reports() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        std::env::var_os("NMS_LOG_REPORTS").is_some_and(|v| !v.is_empty() && v != "0")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_times_never_repeat() {
        let last = AtomicU64::new(0);
        assert_eq!(next_report_time(&last, 1000), 1000);
        assert_eq!(next_report_time(&last, 1000), 1001);
        assert_eq!(next_report_time(&last, 1000), 1002);
        assert_eq!(next_report_time(&last, 999), 1003, "a clock going back");
        assert_eq!(next_report_time(&last, 2000), 2000);
    }
}
