//! What is handed to the store and what it answers: a metrics [`Report`], what became of it
//! ([`Stored`], [`Refusal`]), and the counters the store keeps ([`StoreStats`]).

use crate::schema::{Field, Reading};
use serde::Serialize;

/// One metrics report to store: who, what, when, and its typed readings.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub agent: String,
    pub task: String,
    /// What the report measured towards (ping destination or iperf server), when known.
    pub target: Option<String>,
    pub time_ms: u64,
    pub readings: Vec<Reading>,
}

impl Report {
    /// The API form: the report's fields at the top level by their schema names, an iperf
    /// test's `transport`, and per interface its fields under `interfaces`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        let mut obj = Map::new();
        obj.insert("agent".into(), json!(self.agent));
        obj.insert("task".into(), json!(self.task));
        obj.insert("time".into(), json!(crate::log::rfc3339(self.time_ms)));
        obj.insert("time_ms".into(), json!(self.time_ms));
        if let Some(t) = &self.target {
            obj.insert("target".into(), json!(t));
        }
        let mut interfaces: std::collections::BTreeMap<&str, Map<String, Value>> =
            Default::default();
        for r in &self.readings {
            let name = crate::schema::api_name(r.field, r.instance.as_deref()).into_owned();
            match (&r.instance, r.field.per_interface()) {
                (Some(i), true) => {
                    let entry = interfaces.entry(i).or_default();
                    if r.field == Field::LinkState
                        && let Some(state) = crate::wire::LinkState::from_u8(r.value as u8)
                    {
                        entry.insert("state".into(), json!(state.name()));
                    }
                    entry.insert(name, json!(r.value));
                }
                (Some(t), false) => {
                    obj.insert("transport".into(), json!(t));
                    obj.insert(name, json!(r.value));
                }
                (None, _) => {
                    obj.insert(name, json!(r.value));
                }
            }
        }
        if !interfaces.is_empty() {
            obj.insert("interfaces".into(), json!(interfaces));
        }
        Value::Object(obj)
    }

    /// The value of a field (the first reading of it).
    pub fn value(&self, field: Field) -> Option<f64> {
        self.readings
            .iter()
            .find(|r| r.field == field)
            .map(|r| r.value)
    }
}

/// Why a report was refused (it is acknowledged, since sending it again cannot help).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Dated further ahead of the server's clock than allowed.
    Future,
    /// Dated before what raw retention keeps.
    TooOld,
}

/// What became of a report or alert handed to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    Duplicate,
    Refused(Refusal),
}

/// Counters a store keeps.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreStats {
    pub metrics_stored: u64,
    pub metrics_duplicates: u64,
    pub metrics_refused_future: u64,
    pub metrics_refused_too_old: u64,
    /// Reports that could not be stored (full disk, I/O error) and were not acknowledged.
    pub metrics_unstored: u64,
    pub alerts_stored: u64,
    pub alerts_duplicates: u64,
    pub alerts_unstored: u64,
    /// Episodes of failing writes (each logged once).
    pub write_failure_episodes: u64,
    /// The current episode's error, while writes fail.
    pub failing: Option<String>,
    pub chunks_written: u64,
    pub hours_sealed: u64,
    pub partitions_deleted: u64,
    pub maintenance_failures: u64,
    pub wal_segments_deleted: u64,
    /// Metrics reports imported from an older store's `metrics.jsonl`.
    pub imported_metrics: u64,
    pub imported_alerts: u64,
}
