//! A pluggable probe: one module that declares its task fields ([`ParamDef`]s), names its
//! measurement fields through the one metric schema (`crate::schema`, the fields whose sample
//! is `SampleKind::Probe(number)`), and says how it runs. The task file reader, the wire, the
//! agent, the store, the rules, `/metrics`, `decode` and `inspect` all handle every probe
//! through [`ProbeDef`], so a new probe is its module plus a line in [`super::PROBES`] and its
//! fields in the schema (docs/ARCHITECTURE.md walks through the DNS probe).

use super::error::ProbeError;
use crate::wire::{ParamValue, ProbeItem};
use std::future::Future;
use std::pin::Pin;

/// A running measurement: the values of the probe's schema fields, in schema order.
pub type Measurement<'a> = Pin<Box<dyn Future<Output = Result<Vec<f32>, ProbeError>> + Send + 'a>>;

/// Everything the rest of the system knows of one probe.
#[derive(Debug)]
pub struct ProbeDef {
    /// The number its samples carry on the wire (16 to 255; never renumber one).
    pub number: u8,
    /// Its name: the `link_metrics` key in the assignment dialect, `NAME_parameters` in the
    /// original dialect, the rule variable and the JSON `probe`.
    pub name: &'static str,
    /// A few words for `inspect` and errors.
    pub summary: &'static str,
    pub params: &'static [ParamDef],
    /// Starts one measurement of a checked item ([`ProbeDef::check`] passed).
    pub run: for<'a> fn(&'a ProbeItem) -> Measurement<'a>,
}

/// One task field of a probe.
#[derive(Debug)]
pub struct ParamDef {
    pub name: &'static str,
    pub kind: ParamKind,
    /// What it means, for errors and `inspect`.
    pub doc: &'static str,
}

/// What a task field holds.
#[derive(Debug)]
pub enum ParamKind {
    /// A host name or IP literal; required.
    Host,
    /// An IP address literal; optional.
    Address,
    /// A whole number in `min..=max`, `default` when absent.
    Integer { min: u64, max: u64, default: u64 },
}

impl ProbeDef {
    pub fn param(&self, name: &str) -> Option<&'static ParamDef> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The names of its task fields, for "expected one of" messages.
    pub fn param_names(&self) -> Vec<&'static str> {
        self.params.iter().map(|p| p.name).collect()
    }

    /// Checks an item as an agent receives it: every parameter known and of its kind, every
    /// required one present. The task file reader checks the same with JSON paths.
    pub fn check(&self, item: &ProbeItem) -> Result<(), String> {
        for p in &item.params {
            let def = self.param(&p.name).ok_or_else(|| {
                format!(
                    "{} has no parameter {:?} (known: {})",
                    self.name,
                    p.name,
                    self.param_names().join(", ")
                )
            })?;
            def.check(&p.value)
                .map_err(|e| format!("{}.{}: {e}", self.name, def.name))?;
        }
        for def in self.params {
            if matches!(def.kind, ParamKind::Host) && item.param(def.name).is_none() {
                return Err(format!("{} needs {} ({})", self.name, def.name, def.doc));
            }
        }
        Ok(())
    }
}

impl ParamDef {
    /// Whether `value` is of this field's kind and within its bounds.
    pub fn check(&self, value: &ParamValue) -> Result<(), String> {
        match (&self.kind, value) {
            (ParamKind::Host, ParamValue::Text(t)) => super::Destination::new(t)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            (ParamKind::Address, ParamValue::Text(t)) => t
                .parse::<std::net::IpAddr>()
                .map(|_| ())
                .map_err(|_| format!("{t:?} is not an IP address")),
            (ParamKind::Integer { min, max, .. }, ParamValue::Integer(n)) => {
                if n < min || n > max {
                    Err(format!("{n} is not within {min}..={max}"))
                } else {
                    Ok(())
                }
            }
            (ParamKind::Integer { .. }, ParamValue::Text(_)) => Err("not a number".into()),
            (_, ParamValue::Integer(_)) => Err("not text".into()),
        }
    }
}

/// A text parameter of a checked item (`None` when an optional one is absent).
pub fn text<'a>(item: &'a ProbeItem, name: &str) -> Option<&'a str> {
    match item.param(name) {
        Some(ParamValue::Text(t)) => Some(t),
        _ => None,
    }
}

/// A whole-number parameter of a checked item, or its default.
pub fn integer(def: &ProbeDef, item: &ProbeItem, name: &str) -> u64 {
    match item.param(name) {
        Some(ParamValue::Integer(n)) => *n,
        _ => match def.param(name).map(|p| &p.kind) {
            Some(ParamKind::Integer { default, .. }) => *default,
            _ => 0,
        },
    }
}
