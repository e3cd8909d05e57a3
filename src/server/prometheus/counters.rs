//! The families of the server's own counters: the store's and the NetTask endpoint's, each
//! Alertmanager forwarder's and each remote-write destination's.

use super::{Exposition, Labels};
use crate::nettask::Stats;
use crate::store::{Store, StoreStats};

/// The server's own counters: the store's and the NetTask endpoint's, in that order.
pub(super) fn server_counters(x: &mut Exposition, s: &StoreStats, endpoint: &Stats) {
    for (name, help, v) in store_counters(s)
        .into_iter()
        .chain(nettask_counters(endpoint))
    {
        x.family(name, "counter", help, vec![(Vec::new(), v as f64)]);
    }
}

/// The store's counters: one (name, help, value) row each, in the order they are exported.
fn store_counters(s: &StoreStats) -> Vec<(&'static str, &'static str, u64)> {
    vec![
        (
            "nms_metrics_reports_stored_total",
            "Metrics reports stored since start.",
            s.metrics_stored,
        ),
        (
            "nms_metrics_reports_duplicate_total",
            "Metrics reports received again and not stored twice.",
            s.metrics_duplicates,
        ),
        (
            "nms_metrics_reports_unstored_total",
            "Metrics reports that could not be stored (full disk, I/O error) and were not acknowledged.",
            s.metrics_unstored,
        ),
        (
            "nms_metrics_reports_refused_future_total",
            "Metrics reports refused for a time too far ahead of the server's clock.",
            s.metrics_refused_future,
        ),
        (
            "nms_metrics_reports_refused_too_old_total",
            "Metrics reports refused for a time older than raw retention keeps.",
            s.metrics_refused_too_old,
        ),
        (
            "nms_store_write_failures_total",
            "Episodes of failing store writes (each logged once).",
            s.write_failure_episodes,
        ),
        (
            "nms_store_maintenance_failures_total",
            "Store maintenance passes that failed (retried).",
            s.maintenance_failures,
        ),
        (
            "nms_alerts_stored_total",
            "Alerts stored since start.",
            s.alerts_stored,
        ),
        (
            "nms_alerts_duplicate_total",
            "Alerts received again and not stored twice.",
            s.alerts_duplicates,
        ),
    ]
}

/// The NetTask endpoint's counters: one (name, help, value) row each, in the order they are
/// exported.
fn nettask_counters(endpoint: &Stats) -> Vec<(&'static str, &'static str, u64)> {
    vec![
        (
            "nms_nettask_datagrams_received_total",
            "NetTask datagrams received.",
            endpoint.datagrams_received,
        ),
        (
            "nms_nettask_retransmissions_total",
            "NetTask packets retransmitted.",
            endpoint.retransmissions,
        ),
        (
            "nms_nettask_duplicates_total",
            "NetTask packets received more than once (suppressed).",
            endpoint.duplicates,
        ),
        (
            "nms_nettask_bad_tags_total",
            "NetTask packets dropped for a wrong integrity tag.",
            endpoint.bad_tags,
        ),
        (
            "nms_nettask_malformed_total",
            "NetTask packets dropped as malformed.",
            endpoint.malformed,
        ),
        (
            "nms_nettask_unknown_agent_total",
            "NetTask packets from agent ids without a session.",
            endpoint.unknown_agents,
        ),
    ]
}

/// The remote-write destinations' counters and gauges, one series per destination (labels
/// `remote_name` and `url`, without credentials).
pub(super) fn remote_write_families(
    x: &mut Exposition,
    store: &Store,
    writers: &[crate::server::remote_write::Writer],
) {
    let now = crate::log::now_ms();
    let statuses: Vec<_> = writers.iter().map(|w| w.status(store, now)).collect();
    let per =
        |pick: fn(&crate::server::remote_write::WriteStatus) -> f64| -> Vec<(Labels<'_>, f64)> {
            statuses
                .iter()
                .map(|s| {
                    (
                        vec![("remote_name", s.name.as_str()), ("url", s.url.as_str())],
                        pick(s),
                    )
                })
                .collect()
        };
    x.family(
        "nms_remote_write_samples_sent_total",
        "counter",
        "Samples the remote-write receiver accepted.",
        per(|s| s.samples_sent as f64),
    );
    x.family(
        "nms_remote_write_samples_failed_total",
        "counter",
        "Samples the remote-write receiver refused on their own (dropped).",
        per(|s| s.samples_failed as f64),
    );
    x.family(
        "nms_remote_write_requests_failed_total",
        "counter",
        "Remote-write requests that failed and were sent again.",
        per(|s| s.requests_failed as f64),
    );
    x.family(
        "nms_remote_write_reports_pending",
        "gauge",
        "Stored metrics reports not sent to the remote-write receiver yet.",
        per(|s| s.reports_pending as f64),
    );
    x.family(
        "nms_remote_write_lag_seconds",
        "gauge",
        "How long the oldest report not sent to the remote-write receiver has waited.",
        per(|s| s.lag_seconds),
    );
}

/// The forwarders' counters and gauges, one series per Alertmanager (label `alertmanager`,
/// its URL without credentials).
pub(super) fn alertmanager_families(
    x: &mut Exposition,
    forwarders: &[crate::server::alertmanager::Forwarder],
) {
    let statuses: Vec<_> = forwarders.iter().map(|f| f.status()).collect();
    let per =
        |pick: fn(&crate::server::alertmanager::ForwardStatus) -> u64| -> Vec<(Labels<'_>, f64)> {
            statuses
                .iter()
                .map(|s| (vec![("alertmanager", s.url.as_str())], pick(s) as f64))
                .collect()
        };
    x.family(
        "nms_alertmanager_alerts_sent_total",
        "counter",
        "Alerts (firing, resolved or re-posted) Alertmanager accepted.",
        per(|s| s.sent),
    );
    x.family(
        "nms_alertmanager_requests_failed_total",
        "counter",
        "Posts to Alertmanager that failed (retried unless refused).",
        per(|s| s.failed_requests),
    );
    x.family(
        "nms_alertmanager_alerts_dropped_total",
        "counter",
        "Alerts not forwarded: queue full, backlog too long, or refused.",
        per(|s| s.dropped),
    );
    x.family(
        "nms_alertmanager_alerts_pending",
        "gauge",
        "Alerts waiting to be posted to Alertmanager.",
        per(|s| s.pending),
    );
    x.family(
        "nms_alertmanager_alerts_firing",
        "gauge",
        "Alerts forwarded to Alertmanager that are still firing.",
        per(|s| s.firing),
    );
}
