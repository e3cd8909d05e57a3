//! How a store is run: what each tier keeps ([`Retention`]), the head's budget, whether
//! maintenance runs in the background, and the clock it reads ([`StoreOptions`]).

use std::sync::Arc;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

/// How long each tier keeps what it holds, and an optional cap on the store's size.
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    pub raw: Duration,
    pub minute: Duration,
    pub hour: Duration,
    pub alerts: Duration,
    /// Past this many bytes the oldest partitions are deleted, raw reports first.
    pub max_bytes: Option<u64>,
}

impl Default for Retention {
    /// Prometheus' 15 days of raw reports, 90 days of minutes, two years of hours (as
    /// Zabbix keeps trends), a year of alerts.
    fn default() -> Self {
        Retention {
            raw: 15 * DAY,
            minute: 90 * DAY,
            hour: 730 * DAY,
            alerts: 365 * DAY,
            max_bytes: None,
        }
    }
}

/// How a store is run.
#[derive(Clone)]
pub struct StoreOptions {
    pub retention: Retention,
    /// Reports kept in memory before the largest buffers are moved into chunks early.
    pub head_max_reports: usize,
    /// Run maintenance (moving, sealing, retention, importing) on a thread of its own; tests
    /// turn it off and call [`Store::maintain`](super::Store::maintain) with a virtual clock.
    pub background: bool,
    /// How far ahead of the server's clock a report's time may be.
    pub max_future: Duration,
    /// What "now" is for maintenance and queries (the server's clock; tests pass a virtual
    /// one).
    pub clock: Clock,
    /// Maintenance syncs every commit; off only for a bulk load (`nms bench --store`) that is
    /// simply made again after a crash.
    pub durable: bool,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("retention", &self.retention)
            .field("head_max_reports", &self.head_max_reports)
            .field("background", &self.background)
            .field("max_future", &self.max_future)
            .finish()
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            retention: Retention::default(),
            head_max_reports: 500_000,
            background: true,
            max_future: DAY,
            clock: Arc::new(crate::log::now_ms),
            durable: true,
        }
    }
}

/// The store's clock: Unix milliseconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;
