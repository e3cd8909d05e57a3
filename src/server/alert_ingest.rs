//! Alerts that arrive over AlertFlow: checked against the agent the frame came from, given
//! their target, stored and logged.

use super::Shared;
use crate::log::{self, Level};
use crate::store::{AlertRecord, Stored};
use crate::wire::{Alert, Severity};
use std::net::SocketAddr;

/// Stores alerts that arrive over AlertFlow (until the server stops).
pub(super) struct AlertIngest(pub(super) std::sync::Weak<Shared>);

impl crate::alertflow::server::AlertHandler for AlertIngest {
    fn store(
        &self,
        agent_id: u32,
        peer: SocketAddr,
        mut alert: Alert,
    ) -> Result<crate::alertflow::server::StoreOutcome, Box<dyn std::error::Error + Send + Sync>>
    {
        let Some(shared) = self.0.upgrade() else {
            return Err("the server is stopping".into());
        };
        let mut state = shared.state();
        // The alert belongs to the agent whose registration (and key) the frame came with,
        // never to a name the body claims.
        let Some(name) = state.registry.get(agent_id).map(|r| r.name.clone()) else {
            state.refused_alerts += 1;
            return Ok(crate::alertflow::server::StoreOutcome::Refused(format!(
                "agent id {agent_id} is not registered"
            )));
        };
        if !alert.agent.is_empty() && alert.agent != name {
            state.refused_alerts += 1;
            return Ok(crate::alertflow::server::StoreOutcome::Refused(format!(
                "the alert names agent {:?}, but the frame comes from {name} (agent {agent_id})",
                alert.agent
            )));
        }
        alert.agent = name;
        let mut record = AlertRecord::from_alert(&alert, log::now_ms());
        // A ping or iperf alert names what it measured towards (Alertmanager's `target`).
        if let Some(task) = state.dispatch.get(&alert.task) {
            let (ping, iperf) = state.dispatch.targets(task.number, &alert.agent);
            record.target = match alert.subject.as_str() {
                "ping" => ping,
                "iperf" => iperf,
                _ => None,
            };
        }
        drop(state);
        let stored = shared
            .store_alerts(vec![record])
            .map(|o| o.first().copied().unwrap_or(Stored::Duplicate));
        match stored {
            Ok(Stored::New) => {
                log_stored(&alert, peer);
                Ok(crate::alertflow::server::StoreOutcome::Stored)
            }
            // Refused (dated outside what the store keeps): acknowledged, never stored.
            Ok(Stored::Duplicate | Stored::Refused(_)) => {
                Ok(crate::alertflow::server::StoreOutcome::Duplicate)
            }
            Err(e) => Err(Box::new(e)),
        }
    }
}

/// Logs an alert stored for the first time: a resolution, or an alert raised (from `peer`).
fn log_stored(alert: &Alert, peer: SocketAddr) {
    if alert.resolves != 0 {
        log::event(
            Level::Good,
            "RESOLVED",
            format_args!(
                "{} {} {}: {} (rule {})",
                alert.agent,
                alert.alert_type.name(),
                alert.task,
                alert.message,
                alert.rule
            ),
        );
        return;
    }
    log::event(
        if alert.severity == Severity::Critical {
            Level::Bad
        } else {
            Level::Warn
        },
        "ALERT",
        format_args!(
            "{} {} {}: {} (value {}, threshold {}, rule {}) from {peer}",
            alert.agent,
            alert.alert_type.name(),
            alert.task,
            alert.message,
            alert.value,
            alert.threshold,
            alert.rule
        ),
    );
}
