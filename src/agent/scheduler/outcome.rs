//! What becomes of a measurement: its report sent over NetTask with the task's rules evaluated
//! on it, and the ERROR and TIMEOUT alerts of its failures, one per cause, raised while the cause
//! persists and resolved when it is gone.

use super::TaskContext;
use super::worker::source_name;
use crate::agent::reporter::log_reports;
use crate::alertflow::random_id;
use crate::log::{self, Level};
use crate::probes::ProbeError;
use crate::rules::{RaisedAlert, SampleInput};
use crate::wire::{Alert, AlertType, MetricsReport, Sample, Severity, WorkItem};

/// The failures of one worker's measurements: one alert per cause, raised when the cause
/// appears and resolved when it is gone.
pub(super) struct Failures {
    pub(super) source: String,
    /// (kind, cause) of each alert this worker has firing.
    raised: Vec<(AlertType, String)>,
}

impl Failures {
    pub(super) fn new(item: &WorkItem) -> Failures {
        Failures {
            source: source_name(item),
            raised: Vec::new(),
        }
    }

    pub(super) fn rule(&self) -> String {
        format!("probe:{}", self.source)
    }

    /// This measurement's errors (none: it worked).
    pub(super) fn update(&mut self, ctx: &TaskContext, errors: &[ProbeError]) {
        let now: Vec<(AlertType, String, &ProbeError)> = errors
            .iter()
            .map(|e| (e.alert_type(), e.cause(), e))
            .collect();
        let rule = self.rule();
        let gone: Vec<(AlertType, String)> = self
            .raised
            .iter()
            .filter(|(kind, cause)| !now.iter().any(|(k, c, _)| k == kind && c == cause))
            .cloned()
            .collect();
        for (kind, cause) in gone {
            self.raised.retain(|(k, c)| !(*k == kind && *c == cause));
            let original = ctx
                .firing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&(rule.clone(), kind, cause.clone()));
            let Some(original) = original else { continue };
            let message = if errors.is_empty() {
                format!("resolved: {} works again", self.source)
            } else {
                format!("resolved: {}: that cause is gone", self.source)
            };
            log::event(
                Level::Good,
                "PROBE",
                format_args!("{} {message}", ctx.task_id),
            );
            let mut alert = error_alert(&ctx.agent, &ctx.task_id, kind, &self.source, message);
            alert.resolves = original;
            alert.severity = Severity::Info;
            alert.subject = crate::wire::alertflow::clip_subject(&cause);
            ctx.reporter.raise(alert);
        }
        for (kind, cause, e) in now {
            if self.raised.iter().any(|(k, c)| *k == kind && *c == cause) {
                continue;
            }
            log::event(
                Level::Warn,
                "PROBE",
                format_args!("{} {}: {e}", ctx.task_id, self.source),
            );
            let mut alert = probe_alert(ctx, e, &self.source);
            // Each cause is an alert of its own (Alertmanager's `subject` label).
            alert.subject = crate::wire::alertflow::clip_subject(&cause);
            ctx.firing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((rule.clone(), kind, cause.clone()), alert.alert_id);
            self.raised.push((kind, cause));
            ctx.reporter.raise(alert);
        }
    }
}

/// Sends a report and evaluates the task's rules on it.
pub(super) fn report(ctx: &TaskContext, samples: Vec<Sample>) {
    let report = MetricsReport {
        task_number: ctx.task_number,
        time_ms: ctx.reporter.report_time(),
        samples,
    };
    if log_reports() {
        log::event(
            Level::Info,
            "REPORT",
            format_args!("{} {}", ctx.task_id, report.time_ms),
        );
    }
    let evaluation = {
        let mut rules = ctx.rules.lock().unwrap_or_else(|e| e.into_inner());
        rules.evaluate(&SampleInput::new(&ctx.agent, &ctx.task_id, &report))
    };
    ctx.reporter.report(report);
    for e in &evaluation.errors {
        log::event(Level::Warn, "RULE", format_args!("{e}"));
    }
    for raised in evaluation.raised {
        raise_rule_alert(ctx, &raised);
    }
    for resolved in evaluation.resolved {
        log::event(
            Level::Good,
            "RESOLVED",
            format_args!(
                "{} {} ({})",
                resolved.alert.kind.name(),
                resolved.alert.message,
                resolved.alert.rule
            ),
        );
        let key = (
            resolved.alert.rule.clone(),
            resolved.alert.kind,
            resolved.alert.subject.clone(),
        );
        let original = ctx
            .firing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        if let Some(original) = original {
            let mut alert = resolved.alert.to_alert(random_id());
            alert.resolves = original;
            alert.time_ms = resolved.time_ms;
            alert.message = resolution_message(&resolved.alert);
            ctx.reporter.raise(alert);
        }
    }
}

/// The message of a resolution: what is back to normal, and what had fired (`resolved: CPU
/// back within its threshold of 90 (it fired with: CPU usage 99.0% is above 90%)`).
pub(super) fn resolution_message(alert: &RaisedAlert) -> String {
    let threshold = if alert.threshold.is_finite() {
        format!(" of {}", alert.threshold)
    } else {
        String::new()
    };
    format!(
        "resolved: {} back within its threshold{threshold} (it fired with: {})",
        alert.kind.name(),
        alert.message
    )
}

pub(super) fn raise_rule_alert(ctx: &TaskContext, raised: &RaisedAlert) {
    let alert = raised.to_alert(random_id());
    ctx.firing.lock().unwrap_or_else(|e| e.into_inner()).insert(
        (raised.rule.clone(), raised.kind, raised.subject.clone()),
        alert.alert_id,
    );
    log::event(
        if raised.severity == Severity::Critical {
            Level::Bad
        } else {
            Level::Warn
        },
        "ALERT",
        format_args!(
            "{} {}: {} (rule {}, alert {:016x})",
            ctx.task_id,
            raised.kind.name(),
            raised.message,
            raised.rule,
            alert.alert_id
        ),
    );
    ctx.reporter.raise(alert);
}

pub(super) fn probe_alert(ctx: &TaskContext, e: &ProbeError, source: &str) -> Alert {
    error_alert(
        &ctx.agent,
        &ctx.task_id,
        e.alert_type(),
        source,
        format!("{source}: {e}"),
    )
}

pub(super) fn error_alert(
    agent: &str,
    task: &str,
    kind: AlertType,
    source: &str,
    message: String,
) -> Alert {
    Alert {
        alert_id: random_id(),
        resolves: 0,
        agent: agent.to_string(),
        task: task.to_string(),
        alert_type: kind,
        severity: Severity::Warning,
        value: 0.0,
        threshold: 0.0,
        time_ms: log::now_ms(),
        rule: format!("probe:{source}"),
        message,
        subject: String::new(),
    }
}
