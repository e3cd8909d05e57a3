//! The agent's durable queue of alerts not yet acknowledged by the server.
//!
//! A directory with one file per alert, `<alert id as 16 hex digits>.json`, holding the alert as
//! JSON. [`AlertSpool::push`] writes a temporary file, fsyncs it, renames it into place and
//! fsyncs the directory, so once it returns the alert survives a crash or power cut;
//! [`AlertSpool::remove`] deletes the file when the server has acknowledged the alert. Opening
//! the spool after a restart finds every alert still pending. A file that does not parse (a
//! torn write from before the rename was atomic, a disk error, a stray file) is moved aside to
//! `<name>.corrupt` with a warning and the rest of the spool is used; leftover temporary files
//! are deleted. The spool is bounded: when it is full the oldest alert is dropped, counted and
//! reported by `push`. A lock file keeps two agents from sharing one spool directory.
//!
//! Only the ids and times of pending alerts are kept in memory; alerts are read back from disk
//! when they are (re)sent.

use crate::wire::alertflow::MAX_FRAME_LEN;
use crate::wire::codec::MAX_STRING_LEN;
use crate::wire::packet::MAX_NAME_LEN;
use crate::wire::{Alert, Frame, FrameBody};
use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Default bound on the number of spooled alerts.
pub const DEFAULT_MAX_ALERTS: usize = 10_000;
const LOCK_FILE: &str = "spool.lock";
const TEMP_SUFFIX: &str = ".tmp";
const CORRUPT_SUFFIX: &str = ".corrupt";

#[derive(Debug, Error)]
pub enum SpoolError {
    #[error("alert spool {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "alert spool {0} is in use by another process (is another agent running with the same \
         data directory?)"
    )]
    Locked(PathBuf),
    #[error("alert {alert_id:016x} cannot be sent: {reason}")]
    InvalidAlert { alert_id: u64, reason: String },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What [`AlertSpool::push`] did besides storing the alert.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pushed {
    /// The oldest pending alert, dropped because the spool was full.
    pub dropped: Option<u64>,
    /// Why the alert could not be spooled, when it is kept in memory instead (see
    /// [`crate::alertflow::AlertSender::raise`]).
    pub kept_in_memory: Option<String>,
}

/// A directory of pending alerts. See the module documentation.
#[derive(Debug)]
pub struct AlertSpool {
    dir: PathBuf,
    max_alerts: usize,
    /// Pending alerts in sending order: (time, id).
    order: BTreeSet<(u64, u64)>,
    /// Time of each pending alert, by id.
    times: HashMap<u64, u64>,
    dropped: u64,
    /// Held (and locked) for as long as the spool is open.
    _lock: File,
}

impl AlertSpool {
    /// Opens (creating it if needed) the spool in `dir` and finds the alerts pending in it.
    pub fn open(dir: impl Into<PathBuf>, max_alerts: usize) -> Result<AlertSpool, SpoolError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(SpoolError::Locked(dir)),
            Err(fs::TryLockError::Error(e)) => return Err(io_error(&lock_path)(e)),
        }
        let mut spool = AlertSpool {
            dir,
            max_alerts: max_alerts.max(1),
            order: BTreeSet::new(),
            times: HashMap::new(),
            dropped: 0,
            _lock: lock,
        };
        spool.scan()?;
        while spool.order.len() > spool.max_alerts {
            spool.drop_oldest()?;
        }
        Ok(spool)
    }

    fn scan(&mut self) -> Result<(), SpoolError> {
        let entries = fs::read_dir(&self.dir).map_err(io_error(&self.dir))?;
        for entry in entries {
            let entry = entry.map_err(io_error(&self.dir))?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(TEMP_SUFFIX) {
                // An alert whose push never completed: it was never reported raised.
                if let Err(e) = fs::remove_file(&path) {
                    crate::log::event(
                        crate::log::Level::Warn,
                        "SPOOL",
                        format_args!("cannot remove {}: {e}", path.display()),
                    );
                }
                continue;
            }
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            match read_alert(&path, stem) {
                Ok(alert) => {
                    self.order.insert((alert.time_ms, alert.alert_id));
                    self.times.insert(alert.alert_id, alert.time_ms);
                }
                Err(reason) => self.quarantine(&path, &reason),
            }
        }
        Ok(())
    }

    /// Moves an unreadable file aside so it is kept for inspection and never read again.
    fn quarantine(&self, path: &Path, reason: &str) {
        let mut aside = path.as_os_str().to_owned();
        aside.push(CORRUPT_SUFFIX);
        match fs::rename(path, &aside) {
            Ok(()) => crate::log::event(
                crate::log::Level::Warn,
                "SPOOL",
                format_args!(
                    "{} is unreadable ({reason}); moved aside to {}",
                    path.display(),
                    Path::new(&aside).display()
                ),
            ),
            Err(e) => crate::log::event(
                crate::log::Level::Warn,
                "SPOOL",
                format_args!(
                    "{} is unreadable ({reason}) and cannot be moved aside ({e}); \
                 ignoring it",
                    path.display()
                ),
            ),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of pending alerts.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Alerts dropped because the spool was full, since it was opened.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn contains(&self, alert_id: u64) -> bool {
        self.times.contains_key(&alert_id)
    }

    fn path_of(&self, alert_id: u64) -> PathBuf {
        self.dir.join(format!("{alert_id:016x}.json"))
    }

    /// Stores `alert` durably. When this returns `Ok`, the alert survives a crash. Pushing an
    /// alert id that is already pending replaces it. An alert that could never be delivered
    /// (a string too long for a frame, a value that is not a finite number) is refused.
    pub fn push(&mut self, alert: &Alert) -> Result<Pushed, SpoolError> {
        validate(alert)?;
        let path = self.path_of(alert.alert_id);
        let temp = self
            .dir
            .join(format!("{:016x}.json{TEMP_SUFFIX}", alert.alert_id));
        let json = serde_json::to_vec(alert).map_err(|e| SpoolError::InvalidAlert {
            alert_id: alert.alert_id,
            reason: e.to_string(),
        })?;
        let write = || -> io::Result<()> {
            let mut file = File::create(&temp)?;
            file.write_all(&json)?;
            file.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&temp);
            return Err(io_error(&temp)(e));
        }
        fs::rename(&temp, &path).map_err(io_error(&path))?;
        sync_dir(&self.dir)?;
        // Only now that the new alert is safe does the index change, and room is made for it.
        let mut pushed = Pushed::default();
        if let Some(old_time) = self.times.get(&alert.alert_id).copied() {
            self.order.remove(&(old_time, alert.alert_id));
        } else if self.order.len() >= self.max_alerts {
            pushed.dropped = self.drop_oldest()?;
        }
        self.order.insert((alert.time_ms, alert.alert_id));
        self.times.insert(alert.alert_id, alert.time_ms);
        Ok(pushed)
    }

    fn drop_oldest(&mut self) -> Result<Option<u64>, SpoolError> {
        let Some(&(time, id)) = self.order.first() else {
            return Ok(None);
        };
        self.remove(id)?;
        self.dropped += 1;
        if self.dropped.is_power_of_two() {
            crate::log::event(
                crate::log::Level::Warn,
                "SPOOL",
                format_args!(
                    "alert spool is full ({} alerts): dropped the oldest, {id:016x} raised at \
                 {time} ms ({} dropped so far)",
                    self.max_alerts, self.dropped
                ),
            );
        }
        Ok(Some(id))
    }

    /// Deletes a pending alert (the server acknowledged it). Returns whether it was pending.
    /// The deletion is not fsynced: if it is lost in a crash the alert is sent once more, and the
    /// server, which stores each alert id once, acknowledges it again.
    pub fn remove(&mut self, alert_id: u64) -> Result<bool, SpoolError> {
        let Some(time) = self.times.remove(&alert_id) else {
            return Ok(false);
        };
        self.order.remove(&(time, alert_id));
        let path = self.path_of(alert_id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    /// Ids of the pending alerts, oldest first (by time, then id).
    pub fn pending_ids(&self) -> Vec<u64> {
        self.order.iter().map(|&(_, id)| id).collect()
    }

    /// Reads one pending alert back. `Ok(None)` when it is no longer pending; a file that has
    /// become unreadable is moved aside and forgotten, also `Ok(None)`.
    pub fn load(&mut self, alert_id: u64) -> Result<Option<Alert>, SpoolError> {
        if !self.contains(alert_id) {
            return Ok(None);
        }
        let path = self.path_of(alert_id);
        let stem = format!("{alert_id:016x}");
        match read_alert(&path, &stem) {
            Ok(alert) => Ok(Some(alert)),
            Err(reason) => {
                self.quarantine(&path, &reason);
                if let Some(time) = self.times.remove(&alert_id) {
                    self.order.remove(&(time, alert_id));
                }
                Ok(None)
            }
        }
    }

    /// Every pending alert, oldest first (by time, then id).
    pub fn pending(&mut self) -> Result<Vec<Alert>, SpoolError> {
        let mut alerts = Vec::with_capacity(self.len());
        for id in self.pending_ids() {
            if let Some(alert) = self.load(id)? {
                alerts.push(alert);
            }
        }
        Ok(alerts)
    }
}

/// Reads and checks one spool file; the error is a reason to quarantine it.
fn read_alert(path: &Path, stem: &str) -> Result<Alert, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let alert: Alert = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if format!("{:016x}", alert.alert_id) != stem {
        return Err(format!(
            "it holds alert {:016x}, which does not match its name",
            alert.alert_id
        ));
    }
    Ok(alert)
}

/// Makes a rename or creation in `dir` durable. Directories cannot be opened for syncing on
/// every platform; where they cannot, the rename's own guarantees have to do.
fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Refuses an alert that the spool could not read back or the server could not decode: it would
/// otherwise stay pending for ever and be resent on every connection.
fn validate(alert: &Alert) -> Result<(), SpoolError> {
    let invalid = |reason: String| SpoolError::InvalidAlert {
        alert_id: alert.alert_id,
        reason,
    };
    let strings = [
        ("agent name", &alert.agent, MAX_NAME_LEN),
        ("task id", &alert.task, MAX_STRING_LEN),
        ("rule name", &alert.rule, MAX_STRING_LEN),
        ("message", &alert.message, MAX_STRING_LEN),
    ];
    for (what, s, max) in strings {
        if s.len() > max {
            return Err(invalid(format!(
                "its {what} is {} bytes long; at most {max} are allowed",
                s.len()
            )));
        }
    }
    for (what, v) in [("value", alert.value), ("threshold", alert.threshold)] {
        if !v.is_finite() {
            return Err(invalid(format!("its {what} {v} is not a finite number")));
        }
    }
    // The largest possible agent id, so the check holds whichever id the agent is given.
    let frame = Frame {
        keyed: false,
        agent_id: crate::wire::packet::MAX_AGENT_ID,
        body: FrameBody::Alert(alert.clone()),
    };
    let len = frame.encode(None).len() - 4;
    if len > MAX_FRAME_LEN {
        return Err(invalid(format!(
            "its frame would be {len} bytes long; at most {MAX_FRAME_LEN} are allowed"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{AlertType, Severity};

    fn alert(id: u64, time_ms: u64) -> Alert {
        Alert {
            alert_id: id,
            resolves: 0,
            agent: "edge-1".into(),
            task: "t1".into(),
            alert_type: AlertType::Ram,
            severity: Severity::Critical,
            value: 97.0,
            threshold: 95.0,
            time_ms,
            rule: "ram_usage".into(),
            message: "RAM above threshold".into(),
            subject: String::new(),
        }
    }

    #[test]
    fn pending_alerts_survive_reopening_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = AlertSpool::open(dir.path(), 100).unwrap();
            spool.push(&alert(7, 300)).unwrap();
            spool.push(&alert(9, 100)).unwrap();
            spool.push(&alert(3, 300)).unwrap();
            spool.push(&alert(5, 200)).unwrap();
            assert!(spool.remove(5).unwrap());
            assert!(!spool.remove(5).unwrap());
        }
        let mut spool = AlertSpool::open(dir.path(), 100).unwrap();
        let ids: Vec<u64> = spool
            .pending()
            .unwrap()
            .iter()
            .map(|a| a.alert_id)
            .collect();
        assert_eq!(ids, vec![9, 3, 7]);
        assert_eq!(spool.load(9).unwrap(), Some(alert(9, 100)));
    }

    #[test]
    fn a_full_spool_drops_the_oldest_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = AlertSpool::open(dir.path(), 2).unwrap();
        assert_eq!(spool.push(&alert(1, 10)).unwrap().dropped, None);
        assert_eq!(spool.push(&alert(2, 20)).unwrap().dropped, None);
        assert_eq!(spool.push(&alert(3, 30)).unwrap().dropped, Some(1));
        // Replacing a pending alert drops nothing.
        assert_eq!(spool.push(&alert(3, 30)).unwrap().dropped, None);
        assert_eq!(spool.pending_ids(), vec![2, 3]);
        assert_eq!(spool.dropped(), 1);
        assert!(!dir.path().join(format!("{:016x}.json", 1)).exists());
    }

    #[test]
    fn a_torn_file_is_moved_aside_and_the_rest_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = AlertSpool::open(dir.path(), 100).unwrap();
            spool.push(&alert(1, 10)).unwrap();
            spool.push(&alert(2, 20)).unwrap();
        }
        let torn = dir.path().join(format!("{:016x}.json", 2));
        let full = fs::read(&torn).unwrap();
        fs::write(&torn, &full[..full.len() / 2]).unwrap();
        fs::write(dir.path().join("0000000000000004.json.tmp"), b"{").unwrap();
        let mut spool = AlertSpool::open(dir.path(), 100).unwrap();
        assert_eq!(spool.pending_ids(), vec![1]);
        assert!(dir.path().join(format!("{:016x}.json.corrupt", 2)).exists());
        assert!(!dir.path().join("0000000000000004.json.tmp").exists());
        assert_eq!(spool.pending().unwrap(), vec![alert(1, 10)]);
    }

    #[test]
    fn undeliverable_alerts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = AlertSpool::open(dir.path(), 100).unwrap();
        let mut nan = alert(1, 10);
        nan.value = f64::NAN;
        assert!(matches!(
            spool.push(&nan),
            Err(SpoolError::InvalidAlert { .. })
        ));
        let mut long = alert(2, 10);
        long.agent = "a".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(
            spool.push(&long),
            Err(SpoolError::InvalidAlert { .. })
        ));
        assert!(spool.is_empty());
    }

    #[test]
    fn a_second_opener_of_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = AlertSpool::open(dir.path(), 100).unwrap();
        assert!(matches!(
            AlertSpool::open(dir.path(), 100),
            Err(SpoolError::Locked(_))
        ));
    }
}
