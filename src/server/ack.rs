//! Acknowledgements: an operator says they have seen an alert (who, when, a comment). An
//! acknowledged alert still fires and is still forwarded; the status page and `/api/alerts`
//! show who took it.
//!
//! Kept in `acknowledgements.json` in the data directory (replaced whole on each change: they
//! are made by people, a few a day); those of alerts older than the alert retention are
//! dropped when the file is next written.

use crate::log;
use crate::persist::replace_json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Longest name or comment.
pub const MAX_TEXT: usize = 1024;

/// One acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub by: String,
    pub at_ms: u64,
    pub comment: String,
    /// The acknowledged alert's time, so that the acknowledgement goes with it.
    pub alert_time_ms: u64,
}

impl Acknowledgement {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "by": self.by,
            "at": log::rfc3339(self.at_ms),
            "at_ms": self.at_ms,
            "comment": self.comment,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AckError {
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not an acknowledgements file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Checks a name or comment given over the API.
pub fn checked_text(name: &str, v: &str) -> Result<String, AckError> {
    if v.len() > MAX_TEXT {
        return Err(AckError::Invalid(format!(
            "{name}: longer than {MAX_TEXT} bytes"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(AckError::Invalid(format!(
            "{name}: control characters are not allowed"
        )));
    }
    Ok(v.to_string())
}

/// The acknowledgements, by alert id.
#[derive(Debug)]
pub struct Acknowledgements {
    path: PathBuf,
    /// By alert id, in the file as 16 hex digits.
    by_alert: BTreeMap<String, Acknowledgement>,
}

impl Acknowledgements {
    pub fn open(dir: &Path) -> Result<Acknowledgements, AckError> {
        let path = dir.join("acknowledgements.json");
        let by_alert = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| AckError::Parse {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(AckError::Io { path, source }),
        };
        Ok(Acknowledgements { path, by_alert })
    }

    pub fn get(&self, alert_id: u64) -> Option<&Acknowledgement> {
        self.by_alert.get(&format!("{alert_id:016x}"))
    }

    /// Records (or replaces) the acknowledgement of `alert_id`, dropping those of alerts
    /// older than `oldest_ms`, and saves the file.
    pub fn acknowledge(
        &mut self,
        alert_id: u64,
        ack: Acknowledgement,
        oldest_ms: u64,
    ) -> Result<(), AckError> {
        self.by_alert.retain(|_, a| a.alert_time_ms >= oldest_ms);
        self.by_alert.insert(format!("{alert_id:016x}"), ack);
        replace_json(&self.path, &self.by_alert).map_err(|source| AckError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acknowledgement_survives_a_reopen_and_old_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut acks = Acknowledgements::open(dir.path()).unwrap();
        let ack = |t| Acknowledgement {
            by: "ops".into(),
            at_ms: t + 1,
            comment: "on it".into(),
            alert_time_ms: t,
        };
        acks.acknowledge(7, ack(100), 0).unwrap();
        acks.acknowledge(8, ack(5000), 1000).unwrap();
        let reopened = Acknowledgements::open(dir.path()).unwrap();
        assert_eq!(reopened.get(8), Some(&ack(5000)));
        assert_eq!(reopened.get(7), None, "older than the retention");
        assert!(checked_text("comment", "a\nb").is_err());
    }
}
