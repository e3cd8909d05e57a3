//! The alert families: `nms_alert_firing` per alert firing and not silenced (labelled as
//! Alertmanager is told), `nms_alerts_silenced` and `nms_silences_active`.

use super::{Exposition, Labels};
use crate::server::Shared;
use std::collections::BTreeMap;

/// The firing alerts' series, computed outside the state lock.
pub(super) struct AlertFamilies {
    /// One per firing alert no silence holds back: its Alertmanager labels.
    firing: Vec<BTreeMap<String, String>>,
    silenced: usize,
    silences_active: usize,
}

pub(super) fn alert_families(shared: &Shared) -> AlertFamilies {
    let now = crate::log::now_ms();
    let all = shared.firing().all();
    let silences = shared.silences();
    let mut firing = Vec::new();
    let mut silenced = 0;
    for a in &all {
        if silences.silencing(&a.record, now).is_some() {
            silenced += 1;
        } else {
            firing.push(crate::server::alertmanager::labels(&a.record));
        }
    }
    firing.sort();
    let silences_active = silences.all().iter().filter(|s| s.active(now)).count();
    AlertFamilies {
        firing,
        silenced,
        silences_active,
    }
}

/// `nms_alert_firing{alertname, agent, ...} 1` per alert firing and not silenced (the labels
/// are those Alertmanager gets), and the counts held back.
pub(super) fn alerts_into(x: &mut Exposition, alerts: AlertFamilies) {
    let samples: Vec<(Labels<'_>, f64)> = alerts
        .firing
        .iter()
        .map(|labels| {
            let l: Labels<'_> = labels
                .iter()
                .filter_map(|(k, v)| Some((label_name(k)?, v.as_str())))
                .collect();
            (l, 1.0)
        })
        .collect();
    x.family(
        "nms_alert_firing",
        "gauge",
        "An alert firing now that no silence holds back (1), with the labels Alertmanager gets.",
        samples,
    );
    x.family(
        "nms_alerts_silenced",
        "gauge",
        "Alerts firing now that a silence holds back.",
        vec![(Vec::new(), alerts.silenced as f64)],
    );
    x.family(
        "nms_silences_active",
        "gauge",
        "Silences in force now.",
        vec![(Vec::new(), alerts.silences_active as f64)],
    );
}

/// The label names alerts carry, as the `'static` names the exposition writes.
fn label_name(name: &str) -> Option<&'static str> {
    const NAMES: [&str; 10] = [
        "alertname",
        "agent",
        "task",
        "kind",
        "severity",
        "rule",
        "interface",
        "tool",
        "target",
        "subject",
    ];
    NAMES.into_iter().find(|n| *n == name)
}
