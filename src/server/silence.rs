//! Silences (maintenance windows): matchers on agent, task and kind with a start, an end and
//! a comment. While a silence is in force, the alerts it matches still fire and are stored,
//! but they leave the status page's firing list, `/metrics`' firing gauges and Alertmanager;
//! when it ends, an alert still firing comes back everywhere.
//!
//! Kept in `silences.json` in the data directory (replaced whole, never half-written), so they
//! survive restarts; silences that ended more than [`KEEP_ENDED_MS`] ago are dropped when the file
//! is next written.

use crate::log;
use crate::persist::replace_json;
use crate::store::AlertRecord;
use crate::wire::AlertType;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How long an ended silence is still listed (and kept in the file).
pub const KEEP_ENDED_MS: u64 = 7 * 24 * 3_600_000;
/// Most silences kept at once.
pub const MAX_SILENCES: usize = 10_000;
/// Longest matcher value or comment.
pub const MAX_TEXT: usize = 1024;

/// Which alerts a silence matches: every matcher given must match (exactly, or with `*`
/// standing for any text); a silence without matchers is refused.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Matchers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<AlertType>,
}

impl Matchers {
    pub fn matches(&self, record: &AlertRecord) -> bool {
        self.agent.as_deref().is_none_or(|p| glob(p, &record.agent))
            && self.task.as_deref().is_none_or(|p| glob(p, &record.task))
            && self.kind.is_none_or(|k| k == record.kind)
    }

    pub fn is_empty(&self) -> bool {
        self.agent.is_none() && self.task.is_none() && self.kind.is_none()
    }

    /// `agent=edge-1 task=* kind=cpu`, for logs and tables.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(a) = &self.agent {
            parts.push(format!("agent={a}"));
        }
        if let Some(t) = &self.task {
            parts.push(format!("task={t}"));
        }
        if let Some(k) = self.kind {
            parts.push(format!("kind={}", k.kind()));
        }
        parts.join(" ")
    }
}

/// Whether `text` matches `pattern`, where each `*` stands for any text (none included).
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// One silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// 16 hex digits.
    pub id: String,
    pub matchers: Matchers,
    pub starts_ms: u64,
    pub ends_ms: u64,
    pub comment: String,
    /// Who set it (as they said).
    pub created_by: String,
    pub created_ms: u64,
}

impl Silence {
    pub fn active(&self, now_ms: u64) -> bool {
        self.starts_ms <= now_ms && now_ms < self.ends_ms
    }

    /// `active`, `pending` (not started yet) or `expired`.
    pub fn state(&self, now_ms: u64) -> &'static str {
        if now_ms < self.starts_ms {
            "pending"
        } else if now_ms < self.ends_ms {
            "active"
        } else {
            "expired"
        }
    }

    pub fn silences(&self, record: &AlertRecord, now_ms: u64) -> bool {
        self.active(now_ms) && self.matchers.matches(record)
    }

    pub fn to_json(&self, now_ms: u64) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "matchers": self.matchers,
            "starts": log::rfc3339(self.starts_ms),
            "starts_ms": self.starts_ms,
            "ends": log::rfc3339(self.ends_ms),
            "ends_ms": self.ends_ms,
            "comment": self.comment,
            "created_by": self.created_by,
            "created": log::rfc3339(self.created_ms),
            "state": self.state(now_ms),
        })
    }
}

/// What a client asks for when it sets a silence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub task: Option<String>,
    /// An alert kind (`cpu`, `agent_down`, `PACKETLOSS`, ...).
    #[serde(default)]
    pub kind: Option<String>,
    /// Unix ms or RFC 3339; default: now.
    #[serde(default)]
    pub starts: Option<serde_json::Value>,
    /// Unix ms or RFC 3339; or give `duration`.
    #[serde(default)]
    pub ends: Option<serde_json::Value>,
    /// `2h`, `30m`, ...: the end is the start plus this.
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub created_by: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a silences file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn time_value(name: &str, v: &serde_json::Value) -> Result<u64, SilenceError> {
    let parsed = match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => log::parse_time(s),
        _ => None,
    };
    parsed.ok_or_else(|| {
        SilenceError::Invalid(format!(
            "{name}: {v} is not a time (Unix milliseconds or RFC 3339, e.g. 2026-11-27T10:00:00Z)"
        ))
    })
}

fn checked_text(name: &str, v: &str) -> Result<String, SilenceError> {
    if v.len() > MAX_TEXT {
        return Err(SilenceError::Invalid(format!(
            "{name}: longer than {MAX_TEXT} bytes"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(SilenceError::Invalid(format!(
            "{name}: control characters are not allowed"
        )));
    }
    Ok(v.to_string())
}

impl SilenceRequest {
    /// The silence asked for, checked, with a new id, at `now_ms`.
    pub fn build(&self, now_ms: u64) -> Result<Silence, SilenceError> {
        let kind = match &self.kind {
            None => None,
            Some(k) => Some(AlertType::parse(k).ok_or_else(|| {
                SilenceError::Invalid(format!(
                    "kind: {k:?} is not an alert kind (one of {})",
                    AlertType::ALL
                        .iter()
                        .map(|t| t.kind())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?),
        };
        let matchers = Matchers {
            agent: self
                .agent
                .as_deref()
                .map(|a| checked_text("agent", a))
                .transpose()?,
            task: self
                .task
                .as_deref()
                .map(|t| checked_text("task", t))
                .transpose()?,
            kind,
        };
        if matchers.is_empty() {
            return Err(SilenceError::Invalid(
                "a silence needs at least one matcher: agent, task or kind".into(),
            ));
        }
        let starts_ms = match &self.starts {
            Some(v) => time_value("starts", v)?,
            None => now_ms,
        };
        let ends_ms = match (&self.ends, &self.duration) {
            (Some(_), Some(_)) => {
                return Err(SilenceError::Invalid(
                    "give ends or duration, not both".into(),
                ));
            }
            (Some(v), None) => time_value("ends", v)?,
            (None, Some(d)) => {
                let d = humantime::parse_duration(d.trim()).map_err(|_| {
                    SilenceError::Invalid(format!(
                        "duration: {d:?} is not a duration (e.g. 30m, 2h, 1d)"
                    ))
                })?;
                starts_ms.saturating_add(d.as_millis() as u64)
            }
            (None, None) => {
                return Err(SilenceError::Invalid(
                    "a silence needs an end: give ends (a time) or duration (e.g. 2h)".into(),
                ));
            }
        };
        if ends_ms <= starts_ms {
            return Err(SilenceError::Invalid(format!(
                "ends ({}) is not after starts ({})",
                log::rfc3339(ends_ms),
                log::rfc3339(starts_ms)
            )));
        }
        if ends_ms <= now_ms {
            return Err(SilenceError::Invalid(format!(
                "ends ({}) is in the past",
                log::rfc3339(ends_ms)
            )));
        }
        Ok(Silence {
            id: format!("{:016x}", crate::alertflow::random_id()),
            matchers,
            starts_ms,
            ends_ms,
            comment: checked_text("comment", &self.comment)?,
            created_by: checked_text("created_by", &self.created_by)?,
            created_ms: now_ms,
        })
    }
}

/// The silences, and the file they are kept in.
#[derive(Debug)]
pub struct Silences {
    path: PathBuf,
    list: Vec<Silence>,
}

impl Silences {
    /// Reads `silences.json` from `dir` (none yet: no silences).
    pub fn open(dir: &Path) -> Result<Silences, SilenceError> {
        let path = dir.join("silences.json");
        let list = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| SilenceError::Parse {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(SilenceError::Io { path, source }),
        };
        Ok(Silences { path, list })
    }

    /// Every silence kept, newest first.
    pub fn all(&self) -> Vec<Silence> {
        let mut all = self.list.clone();
        all.sort_by_key(|s| std::cmp::Reverse(s.created_ms));
        all
    }

    /// The silence in force at `now_ms` that matches `record`, if any.
    pub fn silencing(&self, record: &AlertRecord, now_ms: u64) -> Option<&Silence> {
        self.list.iter().find(|s| s.silences(record, now_ms))
    }

    /// Adds a silence and saves the file.
    pub fn add(&mut self, silence: Silence, now_ms: u64) -> Result<(), SilenceError> {
        self.prune(now_ms);
        if self.list.len() >= MAX_SILENCES {
            return Err(SilenceError::Invalid(format!(
                "{MAX_SILENCES} silences are kept already: expire some first"
            )));
        }
        self.list.push(silence);
        self.save()
    }

    /// Ends the silence `id` now (it stays listed as expired). `Ok(None)`: no such silence.
    pub fn expire(&mut self, id: &str, now_ms: u64) -> Result<Option<Silence>, SilenceError> {
        let Some(s) = self.list.iter_mut().find(|s| s.id == id) else {
            return Ok(None);
        };
        s.ends_ms = s.ends_ms.min(now_ms).max(s.starts_ms.min(now_ms));
        if s.starts_ms > now_ms {
            s.starts_ms = now_ms;
        }
        let expired = s.clone();
        self.save()?;
        Ok(Some(expired))
    }

    /// The next time after `now_ms` a silence starts or ends (the forwarders look again then).
    pub fn next_change(&self, now_ms: u64) -> Option<u64> {
        self.list
            .iter()
            .flat_map(|s| [s.starts_ms, s.ends_ms])
            .filter(|t| *t > now_ms)
            .min()
    }

    fn prune(&mut self, now_ms: u64) {
        self.list
            .retain(|s| now_ms.saturating_sub(s.ends_ms) < KEEP_ENDED_MS);
    }

    fn save(&self) -> Result<(), SilenceError> {
        replace_json(&self.path, &self.list).map_err(|source| SilenceError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests;
