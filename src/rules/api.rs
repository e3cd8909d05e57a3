//! The functions rules call: `alert`/`alert_for` (which record a firing alert), and small
//! helpers (`measured`, `ema`, `to_fixed`). Registered on the rule engine by [`register`].

use crate::wire::{AlertType, Severity};
use rhai::{Dynamic, Engine, EvalAltResult, FLOAT, INT, ImmutableString};
use std::sync::{Arc, Mutex, PoisonError};

/// An `alert` call, as the rule made it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Firing {
    pub kind: AlertType,
    pub severity: Severity,
    /// What the alert is about within the rule (an interface name, `ping`, `iperf`); empty
    /// when the rule raises one alert of this kind.
    pub subject: String,
    pub threshold: f64,
    pub value: f64,
    pub message: String,
}

/// Collects the alerts the running rule raises.
#[derive(Debug, Clone, Default)]
pub(crate) struct FiringSink(Arc<Mutex<Vec<Firing>>>);

impl FiringSink {
    fn push(&self, firing: Firing) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(firing);
    }

    /// Takes every alert recorded since the last call.
    pub fn take(&self) -> Vec<Firing> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

type Outcome<T> = Result<T, Box<EvalAltResult>>;

/// Whether a rule may raise alerts of this kind: all but the server's own `agent_down` and
/// `agent_up`.
pub fn is_rule_kind(kind: AlertType) -> bool {
    !matches!(kind, AlertType::AgentDown | AlertType::AgentUp)
}

/// Most characters of an alert message; longer ones are cut (with `...`).
pub const MAX_MESSAGE_CHARS: usize = 512;

pub(crate) fn register(engine: &mut Engine, sink: &FiringSink) {
    let s = sink.clone();
    engine.register_fn(
        "alert",
        move |kind: Dynamic, threshold: Dynamic, value: Dynamic, message: Dynamic| {
            record(&s, "", kind, threshold, value, message, None)
        },
    );
    let s = sink.clone();
    engine.register_fn(
        "alert",
        move |kind: Dynamic,
              threshold: Dynamic,
              value: Dynamic,
              message: Dynamic,
              severity: Dynamic| {
            record(&s, "", kind, threshold, value, message, Some(severity))
        },
    );
    let s = sink.clone();
    engine.register_fn(
        "alert_for",
        move |subject: Dynamic,
              kind: Dynamic,
              threshold: Dynamic,
              value: Dynamic,
              message: Dynamic| {
            let subject = text(subject, "subject")?;
            record(&s, &subject, kind, threshold, value, message, None)
        },
    );
    let s = sink.clone();
    engine.register_fn(
        "alert_for",
        move |subject: Dynamic,
              kind: Dynamic,
              threshold: Dynamic,
              value: Dynamic,
              message: Dynamic,
              severity: Dynamic| {
            let subject = text(subject, "subject")?;
            record(
                &s,
                &subject,
                kind,
                threshold,
                value,
                message,
                Some(severity),
            )
        },
    );

    engine.register_fn("measured", |value: Dynamic| !value.is_unit());
    engine.register_fn("ema", ema);
    engine.register_fn("to_fixed", |value: FLOAT, digits: INT| {
        format!("{value:.*}", digits.clamp(0, 12) as usize)
    });
    engine.register_fn("to_fixed", |value: INT, _digits: INT| value.to_string());
    engine.register_fn("to_fixed", |_: (), _digits: INT| "n/a".to_string());
}

fn record(
    sink: &FiringSink,
    subject: &str,
    kind: Dynamic,
    threshold: Dynamic,
    value: Dynamic,
    message: Dynamic,
    severity: Option<Dynamic>,
) -> Outcome<()> {
    let kind_name = text(kind, "kind")?;
    let kind = AlertType::parse(&kind_name)
        .filter(|k| is_rule_kind(*k))
        .ok_or_else(|| {
            let known: Vec<&str> = AlertType::ALL
                .into_iter()
                .filter(|k| is_rule_kind(*k))
                .map(AlertType::kind)
                .collect();
            failure(format!(
                "unknown alert kind '{kind_name}'; expected one of {}",
                known.join(", ")
            ))
        })?;
    let severity = match severity {
        None => Severity::Warning,
        Some(severity) => {
            let name = text(severity, "severity")?;
            Severity::parse(&name).ok_or_else(|| {
                failure(format!(
                    "unknown severity '{name}'; expected info, warning or critical"
                ))
            })?
        }
    };
    let mut message = message.to_string();
    if message.chars().count() > MAX_MESSAGE_CHARS {
        message = message.chars().take(MAX_MESSAGE_CHARS - 3).collect();
        message.push_str("...");
    }
    sink.push(Firing {
        kind,
        severity,
        subject: subject.to_string(),
        threshold: float(&threshold, "threshold")?,
        value: float(&value, "value")?,
        message,
    });
    Ok(())
}

/// Exponential moving average: `alpha * value + (1 - alpha) * previous`; the value itself when
/// there is no previous average yet, and the previous average when the value is `()`.
fn ema(previous: Dynamic, value: Dynamic, alpha: FLOAT) -> Outcome<Dynamic> {
    if !(0.0..=1.0).contains(&alpha) {
        return Err(failure(format!(
            "ema: alpha {alpha} is not between 0 and 1"
        )));
    }
    if value.is_unit() {
        return Ok(previous);
    }
    let value = float(&value, "ema value")?;
    if previous.is_unit() {
        return Ok(Dynamic::from_float(value));
    }
    let previous = float(&previous, "ema previous average")?;
    Ok(Dynamic::from_float(
        alpha * value + (1.0 - alpha) * previous,
    ))
}

fn text(value: Dynamic, what: &str) -> Outcome<ImmutableString> {
    let type_name = value.type_name();
    value
        .into_immutable_string()
        .map_err(|_| failure(format!("{what} must be a string, not {type_name}")))
}

fn float(value: &Dynamic, what: &str) -> Outcome<f64> {
    if let Ok(f) = value.as_float() {
        return Ok(f);
    }
    if let Ok(i) = value.as_int() {
        return Ok(i as f64);
    }
    Err(failure(format!(
        "{what} must be a number, not {}",
        if value.is_unit() {
            "() (not measured)"
        } else {
            value.type_name()
        }
    )))
}

fn failure(message: String) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(message.into(), rhai::Position::NONE).into()
}
