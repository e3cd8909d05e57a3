//! The registry of agents: names, the ids the server assigned them, where and when they were
//! last heard from, and whether they are up.
//!
//! Ids are stable: an agent that registers again (after a restart of either side) gets the id its
//! name had. The name-to-id table is persisted in the data directory as a snapshot,
//! `agents.json` (written to a temporary file and renamed, so it is never half-written), plus a
//! journal, `agents.log`, of the records added or changed since (JSON lines, appended and
//! fdatasynced once per [`Registry::flush`], so a burst of registrations costs one write, not one
//! snapshot per agent). Opening replays the journal and folds it into a new snapshot; so does a
//! journal that grew longer than the registry. Liveness is kept in memory.

use crate::persist::{JsonLog, replace_json};
use crate::wire::packet::MAX_AGENT_ID;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Most agents one server registers.
pub const MAX_AGENTS: usize = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Up,
    Down,
}

/// What the server knows of one agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentRecord {
    pub name: String,
    pub id: u32,
    pub address: Option<SocketAddr>,
    pub first_registered_ms: u64,
    #[serde(skip, default = "down")]
    pub status: Status,
    #[serde(default)]
    pub last_seen_ms: u64,
    #[serde(default)]
    pub registrations: u64,
    #[serde(default)]
    pub capabilities: u8,
    #[serde(default)]
    pub software: String,
    /// The agent clock of its latest registration (a keyed server refuses older ones).
    #[serde(default)]
    pub last_registration_ms: u64,
}

fn down() -> Status {
    Status::Down
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid agent registry: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the registry is full ({MAX_AGENTS} agents)")]
    Full,
}

/// Journal lines past which the journal is folded into the snapshot, at least.
const MIN_COMPACTION_LINES: usize = 4096;

#[derive(Debug)]
pub struct Registry {
    path: PathBuf,
    journal_path: PathBuf,
    /// Open once the first change is appended; absent right after a compaction.
    journal: Option<JsonLog>,
    journal_lines: usize,
    /// Ids whose records changed since the last flush.
    pending: Vec<u32>,
    by_id: HashMap<u32, AgentRecord>,
    by_name: HashMap<String, u32>,
    next_id: u32,
}

impl Registry {
    /// Loads `agents.json` from `dir` (an empty registry when there is none).
    pub fn open(dir: &Path) -> Result<Registry, RegistryError> {
        let path = dir.join("agents.json");
        let records: Vec<AgentRecord> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| RegistryError::Parse {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(RegistryError::Io { path, source }),
        };
        let journal_path = dir.join("agents.log");
        let mut registry = Registry {
            path,
            journal_path,
            journal: None,
            journal_lines: 0,
            pending: Vec::new(),
            by_id: HashMap::new(),
            by_name: HashMap::new(),
            next_id: 1,
        };
        for r in records {
            registry.insert(r);
        }
        let replayed = registry.replay_journal()?;
        if replayed > 0 {
            registry.compact()?;
        }
        Ok(registry)
    }

    fn insert(&mut self, r: AgentRecord) {
        self.next_id = self.next_id.max(r.id + 1);
        if let Some(old) = self.by_id.get(&r.id)
            && old.name != r.name
        {
            self.by_name.remove(&old.name);
        }
        self.by_name.insert(r.name.clone(), r.id);
        self.by_id.insert(r.id, r);
    }

    /// Applies the journal's records (a torn last line, from a crash mid-write, is cut off);
    /// returns how many lines it held.
    fn replay_journal(&mut self) -> Result<usize, RegistryError> {
        if !self.journal_path.exists() {
            return Ok(0);
        }
        let (journal, records, recovery) = JsonLog::open::<AgentRecord>(&self.journal_path)
            .map_err(|source| RegistryError::Io {
                path: self.journal_path.clone(),
                source,
            })?;
        let lines = records.len() + recovery.bad_lines.len();
        for mut record in records {
            if let Some(old) = self.by_id.get(&record.id) {
                record.status = old.status;
            }
            self.insert(record);
        }
        self.journal = Some(journal);
        Ok(lines)
    }

    /// Writes the whole registry as the snapshot and empties the journal.
    fn compact(&mut self) -> Result<(), RegistryError> {
        let mut records: Vec<&AgentRecord> = self.by_id.values().collect();
        records.sort_by_key(|r| r.id);
        let io = |source| RegistryError::Io {
            path: self.path.clone(),
            source,
        };
        replace_json(&self.path, &records).map_err(io)?;
        self.journal = None;
        match std::fs::remove_file(&self.journal_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(RegistryError::Io {
                    path: self.journal_path.clone(),
                    source: e,
                });
            }
            _ => {}
        }
        self.journal_lines = 0;
        Ok(())
    }

    /// Makes every registration since the last flush durable: one append and one fdatasync
    /// for all of them. Call it before answering those registrations.
    pub fn flush(&mut self) -> Result<(), RegistryError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.pending.sort_unstable();
        self.pending.dedup();
        let io = |source| RegistryError::Io {
            path: self.journal_path.clone(),
            source,
        };
        if self.journal.is_none() {
            self.journal = Some(
                JsonLog::open::<AgentRecord>(&self.journal_path)
                    .map_err(io)?
                    .0,
            );
        }
        let changed: Vec<&AgentRecord> = self
            .pending
            .iter()
            .filter_map(|id| self.by_id.get(id))
            .collect();
        if let Some(journal) = self.journal.as_mut() {
            journal.append(&changed).map_err(io)?;
        }
        self.journal_lines += self.pending.len();
        self.pending.clear();
        if self.journal_lines > MIN_COMPACTION_LINES.max(self.by_id.len()) {
            self.compact()?;
        }
        Ok(())
    }

    /// Registers (or re-registers) an agent by name; returns its id. The change is durable
    /// after the next [`Registry::flush`].
    pub fn register(
        &mut self,
        name: &str,
        address: SocketAddr,
        now_ms: u64,
        capabilities: u8,
        software: &str,
        registration_ms: u64,
    ) -> Result<u32, RegistryError> {
        let (id, is_new) = match self.by_name.get(name) {
            Some(id) => (*id, false),
            None => {
                if self.by_id.len() >= MAX_AGENTS || self.next_id > MAX_AGENT_ID {
                    return Err(RegistryError::Full);
                }
                let id = self.next_id;
                self.next_id += 1;
                (id, true)
            }
        };
        let record = self.by_id.entry(id).or_insert_with(|| AgentRecord {
            name: name.to_string(),
            id,
            address: None,
            first_registered_ms: now_ms,
            status: Status::Down,
            last_seen_ms: now_ms,
            registrations: 0,
            capabilities,
            software: software.to_string(),
            last_registration_ms: 0,
        });
        let moved = record.address != Some(address);
        record.address = Some(address);
        record.last_seen_ms = now_ms;
        record.registrations += 1;
        record.capabilities = capabilities;
        record.software = software.to_string();
        let newer = registration_ms > record.last_registration_ms;
        record.last_registration_ms = record.last_registration_ms.max(registration_ms);
        self.by_name.insert(name.to_string(), id);
        if is_new || moved || newer {
            self.pending.push(id);
        }
        Ok(id)
    }

    pub fn get(&self, id: u32) -> Option<&AgentRecord> {
        self.by_id.get(&id)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut AgentRecord> {
        self.by_id.get_mut(&id)
    }

    pub fn by_name(&self, name: &str) -> Option<&AgentRecord> {
        self.by_name.get(name).and_then(|id| self.by_id.get(id))
    }

    /// Every agent, by id.
    pub fn all(&self) -> Vec<&AgentRecord> {
        let mut v: Vec<&AgentRecord> = self.by_id.values().collect();
        v.sort_by_key(|r| r.id);
        v
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut AgentRecord> {
        self.by_id.values_mut()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            crate::log::event(
                crate::log::Level::Bad,
                "REGISTRY",
                format_args!("agent registry not saved: {e}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let mut r = Registry::open(dir.path()).unwrap();
        assert_eq!(r.register("r1", a, 1, 0, "0.1", 1).unwrap(), 1);
        assert_eq!(r.register("r2", a, 1, 0, "0.1", 1).unwrap(), 2);
        assert_eq!(r.register("r1", a, 2, 0, "0.1", 2).unwrap(), 1);
        r.flush().unwrap();
        let mut r = Registry::open(dir.path()).unwrap();
        assert_eq!(r.register("r3", a, 3, 0, "0.1", 3).unwrap(), 3);
        assert_eq!(r.register("r2", a, 3, 0, "0.1", 3).unwrap(), 2);
        assert_eq!(r.by_name("r1").unwrap().status, Status::Down);
    }

    #[test]
    fn flushed_registrations_survive_a_crash_and_are_folded_into_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:4001".parse().unwrap();
        let mut r = Registry::open(dir.path()).unwrap();
        for i in 0..10 {
            r.register(&format!("agent{i}"), a, 1, 0, "0.1", 1).unwrap();
        }
        r.register("agent3", b, 2, 0, "0.1", 2).unwrap();
        r.flush().unwrap();
        // A crash: nothing runs after the flush (no Drop), and the journal ends torn.
        std::mem::forget(r);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("agents.log"))
            .unwrap();
        std::io::Write::write_all(&mut f, b"{\"name\":\"half").unwrap();
        drop(f);
        let mut r = Registry::open(dir.path()).unwrap();
        assert_eq!(r.len(), 10);
        assert_eq!(r.by_name("agent3").unwrap().address, Some(b));
        assert!(
            !dir.path().join("agents.log").exists(),
            "folded into agents.json"
        );
        assert_eq!(r.register("agent10", a, 3, 0, "0.1", 3).unwrap(), 11);
    }
}
