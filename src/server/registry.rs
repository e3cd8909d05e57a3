//! The registry of agents: names, the ids the server assigned them, where and when they were
//! last heard from, and whether they are up.
//!
//! Ids are stable: an agent that registers again (after a restart of either side) gets the id its
//! name had. The name-to-id table is persisted in `agents.json` in the data directory (written to
//! a temporary file and renamed, so it is never half-written); liveness is kept in memory.

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

#[derive(Debug)]
pub struct Registry {
    path: PathBuf,
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
        let mut registry = Registry {
            path,
            by_id: HashMap::new(),
            by_name: HashMap::new(),
            next_id: 1,
        };
        for r in records {
            registry.next_id = registry.next_id.max(r.id + 1);
            registry.by_name.insert(r.name.clone(), r.id);
            registry.by_id.insert(r.id, r);
        }
        Ok(registry)
    }

    fn save(&self) -> Result<(), RegistryError> {
        let mut records: Vec<&AgentRecord> = self.by_id.values().collect();
        records.sort_by_key(|r| r.id);
        let io = |source| RegistryError::Io {
            path: self.path.clone(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(&records).map_err(|e| io(e.into()))?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes).map_err(io)?;
        let f = std::fs::File::open(&tmp).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }

    /// Registers (or re-registers) an agent by name; returns its id.
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
            self.save()?;
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
        let mut r = Registry::open(dir.path()).unwrap();
        assert_eq!(r.register("r3", a, 3, 0, "0.1", 3).unwrap(), 3);
        assert_eq!(r.register("r2", a, 3, 0, "0.1", 3).unwrap(), 2);
        assert_eq!(r.by_name("r1").unwrap().status, Status::Down);
    }
}
