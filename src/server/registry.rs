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
//!
//! An agent can be forgotten ([`Registry::forget`]): the journal gets a tombstone, and its id is
//! never handed out again (the snapshot keeps the next id to assign). Each record also keeps the
//! instance of the agent's latest registration (keyed AlertFlow frames are bound to it, also
//! after a server restart) and whether the agent ever sent anything after registering.

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
    /// The instance of its latest registration: its session's keys derive from it.
    #[serde(default)]
    pub instance: u64,
    /// Whether it sent anything (a report, a heartbeat) after registering. Agents that never
    /// did and stay silent are forgotten. Records from before this field count as having.
    #[serde(default = "yes")]
    pub reported: bool,
    /// A tombstone in the journal: the agent was forgotten.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forgotten: bool,
}

fn down() -> Status {
    Status::Down
}

fn yes() -> bool {
    true
}

/// `agents.json`: the records and the next id to hand out (so the id of a forgotten agent is
/// never given to another). Files written before forgetting existed hold the bare array.
#[derive(Deserialize)]
#[serde(untagged)]
enum Snapshot {
    Current {
        next_id: u32,
        agents: Vec<AgentRecord>,
    },
    Array(Vec<AgentRecord>),
}

#[derive(Serialize)]
struct SnapshotOut<'a> {
    next_id: u32,
    agents: Vec<&'a AgentRecord>,
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
    /// Forgotten agents not yet written to the journal.
    tombstones: Vec<AgentRecord>,
}

impl Registry {
    /// Loads `agents.json` from `dir` (an empty registry when there is none).
    pub fn open(dir: &Path) -> Result<Registry, RegistryError> {
        let path = dir.join("agents.json");
        let (next_id, records) = match std::fs::read(&path) {
            Ok(bytes) => {
                match serde_json::from_slice(&bytes).map_err(|source| RegistryError::Parse {
                    path: path.clone(),
                    source,
                })? {
                    Snapshot::Current { next_id, agents } => (next_id, agents),
                    Snapshot::Array(agents) => (1, agents),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (1, Vec::new()),
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
            next_id: next_id.max(1),
            tombstones: Vec::new(),
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
        if r.forgotten {
            if let Some(old) = self.by_id.remove(&r.id) {
                self.by_name.remove(&old.name);
            }
            return;
        }
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
        let snapshot = SnapshotOut {
            next_id: self.next_id,
            agents: records,
        };
        replace_json(&self.path, &snapshot).map_err(io)?;
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
        if self.pending.is_empty() && self.tombstones.is_empty() {
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
            .tombstones
            .iter()
            .chain(self.pending.iter().filter_map(|id| self.by_id.get(id)))
            .collect();
        let lines = changed.len();
        if let Some(journal) = self.journal.as_mut() {
            journal.append(&changed).map_err(io)?;
        }
        self.journal_lines += lines;
        self.pending.clear();
        self.tombstones.clear();
        if self.journal_lines > MIN_COMPACTION_LINES.max(self.by_id.len()) {
            self.compact()?;
        }
        Ok(())
    }

    /// Registers (or re-registers) an agent by name; returns its id. The change is durable
    /// after the next [`Registry::flush`].
    #[allow(clippy::too_many_arguments)]
    pub fn register(
        &mut self,
        name: &str,
        address: SocketAddr,
        now_ms: u64,
        capabilities: u8,
        software: &str,
        registration_ms: u64,
        instance: u64,
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
            instance: 0,
            reported: false,
            forgotten: false,
        });
        let moved = record.address != Some(address);
        record.address = Some(address);
        record.last_seen_ms = now_ms;
        record.registrations += 1;
        record.capabilities = capabilities;
        record.software = software.to_string();
        let newer = registration_ms > record.last_registration_ms;
        record.last_registration_ms = record.last_registration_ms.max(registration_ms);
        let renewed = record.instance != instance;
        record.instance = instance;
        self.by_name.insert(name.to_string(), id);
        if is_new || moved || newer || renewed {
            self.pending.push(id);
        }
        Ok(id)
    }

    /// Records that an agent sent something after registering (saved with the next flush).
    pub fn mark_reported(&mut self, id: u32) {
        if let Some(r) = self.by_id.get_mut(&id)
            && !r.reported
        {
            r.reported = true;
            self.pending.push(id);
        }
    }

    /// Forgets an agent: its record goes, a tombstone is journaled with the next flush, and its
    /// id is never handed out again. Returns the record.
    pub fn forget(&mut self, name: &str) -> Option<AgentRecord> {
        let id = self.by_name.remove(name)?;
        let record = self.by_id.remove(&id)?;
        self.pending.retain(|p| *p != id);
        let mut tombstone = record.clone();
        tombstone.forgotten = true;
        self.tombstones.push(tombstone);
        Some(record)
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
        assert_eq!(r.register("r1", a, 1, 0, "0.1", 1, 1).unwrap(), 1);
        assert_eq!(r.register("r2", a, 1, 0, "0.1", 1, 1).unwrap(), 2);
        assert_eq!(r.register("r1", a, 2, 0, "0.1", 2, 2).unwrap(), 1);
        r.flush().unwrap();
        let mut r = Registry::open(dir.path()).unwrap();
        assert_eq!(r.register("r3", a, 3, 0, "0.1", 3, 3).unwrap(), 3);
        assert_eq!(r.register("r2", a, 3, 0, "0.1", 3, 3).unwrap(), 2);
        assert_eq!(r.by_name("r1").unwrap().status, Status::Down);
    }

    #[test]
    fn flushed_registrations_survive_a_crash_and_are_folded_into_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:4001".parse().unwrap();
        let mut r = Registry::open(dir.path()).unwrap();
        for i in 0..10 {
            r.register(&format!("agent{i}"), a, 1, 0, "0.1", 1, 1)
                .unwrap();
        }
        r.register("agent3", b, 2, 0, "0.1", 2, 2).unwrap();
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
        assert_eq!(r.register("agent10", a, 3, 0, "0.1", 3, 3).unwrap(), 11);
    }

    #[test]
    fn a_forgotten_agent_is_gone_after_reopening_and_its_id_is_never_given_again() {
        let dir = tempfile::tempdir().unwrap();
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let mut r = Registry::open(dir.path()).unwrap();
        r.register("keep", a, 1, 0, "0.1", 1, 1).unwrap();
        assert_eq!(r.register("spoof", a, 1, 0, "0.1", 1, 2).unwrap(), 2);
        r.flush().unwrap();
        assert_eq!(r.forget("spoof").map(|x| x.id), Some(2));
        assert!(r.forget("spoof").is_none());
        r.flush().unwrap();
        drop(r);
        let mut r = Registry::open(dir.path()).unwrap();
        assert!(r.by_name("spoof").is_none());
        assert_eq!(r.len(), 1);
        assert_eq!(
            r.register("new", a, 2, 0, "0.1", 2, 3).unwrap(),
            3,
            "id 2 stays used"
        );
        r.flush().unwrap();
        drop(r);
        // The snapshot (after compaction at open) still knows the next id.
        let r = Registry::open(dir.path()).unwrap();
        assert_eq!(r.by_name("new").map(|x| x.id), Some(3));
    }
}
