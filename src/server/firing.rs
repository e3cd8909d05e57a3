//! The alerts firing now: every stored alert that no resolution has ended yet, by what it is
//! about ([`AlertKey`]: agent, task, kind, rule, subject), so that a rule firing again in a
//! new episode (the agent restarted and forgot it had raised it) is the same alert, not a
//! second one. The status page's firing list, `/metrics`' firing gauges and the Alertmanager
//! forwarders all read this set.
//!
//! It is kept in memory and rebuilt at start from the store ([`Firing::load`]): the store
//! marks an alert resolved (`resolved_ms`) when its resolution is stored, so the set survives
//! restarts, and an agent already down when the server stopped is still known to be (its
//! AGENT_DOWN is still firing).

use crate::store::{AlertQuery, AlertRecord, Store, StoreError};
use crate::wire::AlertType;
use std::collections::HashMap;

/// What makes two alerts the same alert across episodes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlertKey {
    pub agent: String,
    pub task: String,
    pub kind: AlertType,
    pub rule: String,
    pub subject: String,
}

impl AlertKey {
    pub fn of(record: &AlertRecord) -> AlertKey {
        AlertKey {
            agent: record.agent.clone(),
            task: record.task.clone(),
            kind: record.kind,
            rule: record.rule.clone(),
            subject: record.subject.clone(),
        }
    }
}

/// One firing alert: its newest record, and since when it fires (the first record of the
/// episode, when a newer one took its place).
#[derive(Debug, Clone, PartialEq)]
pub struct FiringAlert {
    pub record: AlertRecord,
    pub since_ms: u64,
}

/// What taking in a stored record changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The alert fires (new, or raised again: then `since_ms` is the episode's start).
    Fired(FiringAlert),
    /// The alert stopped firing at `at_ms`.
    Ended { alert: FiringAlert, at_ms: u64 },
}

/// Whether a stored record is an alert that can fire (AGENT_UP is only an event, and a
/// resolution is not an alert).
pub fn can_fire(record: &AlertRecord) -> bool {
    record.resolves == 0 && record.kind != AlertType::AgentUp
}

/// Alerts read per store query while loading.
const LOAD_PAGE: usize = 10_000;

/// The firing alerts.
#[derive(Debug, Default)]
pub struct Firing {
    by_key: HashMap<AlertKey, FiringAlert>,
    /// The key of each firing record's id.
    keys: HashMap<u64, AlertKey>,
}

impl Firing {
    /// The alerts stored unresolved, newest first page by page: for each key the newest record
    /// fires, since the oldest unresolved one of that key.
    pub fn load(store: &Store) -> Result<Firing, StoreError> {
        let mut firing = Firing::default();
        let mut to_ms: Option<u64> = None;
        let mut seen: std::collections::HashSet<u64> = Default::default();
        loop {
            let page = store.alerts(&AlertQuery {
                to_ms,
                limit: LOAD_PAGE,
                ..AlertQuery::default()
            })?;
            let mut new = 0;
            // The page is oldest first; take it newest first.
            for record in page.iter().rev() {
                if !seen.insert(record.alert_id) {
                    continue;
                }
                new += 1;
                if record.resolved_ms.is_some() || !can_fire(record) {
                    continue;
                }
                let key = AlertKey::of(record);
                match firing.by_key.get_mut(&key) {
                    Some(newer) => newer.since_ms = newer.since_ms.min(record.time_ms),
                    None => {
                        firing.keys.insert(record.alert_id, key.clone());
                        firing.by_key.insert(
                            key,
                            FiringAlert {
                                record: record.clone(),
                                since_ms: record.time_ms,
                            },
                        );
                    }
                }
            }
            let Some(oldest) = page.first().map(|r| r.time_ms) else {
                break;
            };
            if page.len() < LOAD_PAGE {
                break;
            }
            // The next page ends where this one began (that millisecond again, in case more
            // alerts share it; the ones already seen are skipped).
            to_ms = Some(if new == 0 { oldest } else { oldest + 1 });
            if oldest == 0 {
                break;
            }
        }
        Ok(firing)
    }

    /// Takes in a record just stored (once per alert id) and says what changed.
    pub fn accept(&mut self, record: &AlertRecord) -> Vec<Change> {
        if record.resolves != 0 {
            let Some(key) = self.keys.remove(&record.resolves) else {
                // An alert already replaced by a newer episode, or never seen firing.
                return Vec::new();
            };
            return match self.by_key.remove(&key) {
                Some(alert) => vec![Change::Ended {
                    alert,
                    at_ms: record.time_ms,
                }],
                None => Vec::new(),
            };
        }
        if !can_fire(record) {
            return Vec::new();
        }
        let key = AlertKey::of(record);
        let mut changes = Vec::new();
        let mut since_ms = record.time_ms;
        if let Some(old) = self.by_key.remove(&key) {
            self.keys.remove(&old.record.alert_id);
            if old.record.severity == record.severity {
                since_ms = old.since_ms.min(record.time_ms);
            } else {
                // Escalated or calmed: the old severity's alert ends as the new one starts.
                changes.push(Change::Ended {
                    alert: old,
                    at_ms: record.time_ms,
                });
            }
        }
        let alert = FiringAlert {
            record: record.clone(),
            since_ms,
        };
        self.keys.insert(record.alert_id, key.clone());
        self.by_key.insert(key, alert.clone());
        changes.push(Change::Fired(alert));
        changes
    }

    /// Every firing alert, oldest first.
    pub fn all(&self) -> Vec<FiringAlert> {
        let mut all: Vec<FiringAlert> = self.by_key.values().cloned().collect();
        all.sort_by(|a, b| {
            (a.since_ms, &a.record.agent, a.record.alert_id).cmp(&(
                b.since_ms,
                &b.record.agent,
                b.record.alert_id,
            ))
        });
        all
    }

    /// The firing alerts `keep` selects.
    pub fn matching(&self, keep: impl Fn(&AlertRecord) -> bool) -> Vec<FiringAlert> {
        self.all().into_iter().filter(|a| keep(&a.record)).collect()
    }

    /// The firing record with this id.
    pub fn get(&self, alert_id: u64) -> Option<&FiringAlert> {
        self.by_key.get(self.keys.get(&alert_id)?)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::Severity;

    pub(crate) fn record(id: u64, kind: AlertType, resolves: u64, time_ms: u64) -> AlertRecord {
        AlertRecord {
            alert_id: id,
            agent: "edge-1".into(),
            task: "task-101".into(),
            kind,
            severity: Severity::Critical,
            value: 97.5,
            threshold: 80.0,
            time_ms,
            rule: "condition:cpu_usage".into(),
            message: "CPU usage 97.5% is above 80%".into(),
            received_ms: time_ms,
            resolves,
            resolved_ms: None,
            subject: String::new(),
            target: None,
        }
    }

    #[test]
    fn a_resolution_ends_the_alert_it_names() {
        let mut f = Firing::default();
        let fired = f.accept(&record(1, AlertType::Cpu, 0, 1000));
        assert!(matches!(&fired[..], [Change::Fired(a)] if a.since_ms == 1000));
        assert_eq!(f.len(), 1);
        let ended = f.accept(&record(2, AlertType::Cpu, 1, 5000));
        assert!(
            matches!(&ended[..], [Change::Ended { alert, at_ms: 5000 }] if alert.record.alert_id == 1)
        );
        assert!(f.is_empty());
        assert!(f.accept(&record(3, AlertType::Cpu, 1, 6000)).is_empty());
    }

    #[test]
    fn a_new_episode_of_the_same_alert_replaces_it_and_keeps_its_start() {
        let mut f = Firing::default();
        f.accept(&record(1, AlertType::Cpu, 0, 1000));
        let again = f.accept(&record(2, AlertType::Cpu, 0, 9000));
        assert!(
            matches!(&again[..], [Change::Fired(a)] if a.since_ms == 1000 && a.record.alert_id == 2)
        );
        assert_eq!(f.len(), 1);
        // The old episode's resolution (the agent forgot it) changes nothing.
        assert!(f.accept(&record(3, AlertType::Cpu, 1, 9500)).is_empty());
        assert_eq!(f.len(), 1);
        // Another subject is another alert.
        let mut eth1 = record(4, AlertType::InterfaceStats, 0, 9600);
        eth1.subject = "eth1".into();
        f.accept(&eth1);
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn a_change_of_severity_ends_the_old_alert() {
        let mut f = Firing::default();
        let mut warning = record(1, AlertType::Cpu, 0, 1000);
        warning.severity = Severity::Warning;
        f.accept(&warning);
        let changes = f.accept(&record(2, AlertType::Cpu, 0, 2000));
        assert!(matches!(
            &changes[..],
            [Change::Ended { at_ms: 2000, .. }, Change::Fired(_)]
        ));
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn agent_up_and_resolutions_never_fire() {
        let mut f = Firing::default();
        assert!(f.accept(&record(1, AlertType::AgentUp, 0, 1)).is_empty());
        assert!(f.is_empty());
    }
}
