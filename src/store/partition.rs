//! The partition files: one SQLite database per tier and time span (`raw/2026-12-01.sqlite`,
//! `minute/2026-12-01.sqlite`, `hour/2026-12.sqlite`, `alerts/2026-12.sqlite`), and the
//! catalogue (`catalog.sqlite`: series names and store facts). SQLite carries what it is good
//! at: atomic, durable transactions (WAL journal, `synchronous=FULL`), a B-tree index on
//! (series, time), and integrity checks. Retention deletes whole files.
//!
//! A [`Pool`] keeps open connections to the partitions one thread uses; the store's writer,
//! its maintenance and its queries each have their own, so reads never wait for a write.

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const DAY_MS: u64 = 86_400_000;
pub const HOUR_MS: u64 = 3_600_000;
pub const MINUTE_MS: u64 = 60_000;

/// What a partition file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Raw reports, as chunks of one series within one hour; a file per day.
    Raw,
    /// Per-minute rollups, a block per series and hour; a file per day.
    Minute,
    /// Per-hour rollups, a block per series and day; a file per month.
    Hour,
    /// Alerts; a file per month.
    Alerts,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Raw, Tier::Minute, Tier::Hour, Tier::Alerts];

    pub fn dir_name(self) -> &'static str {
        match self {
            Tier::Raw => "raw",
            Tier::Minute => "minute",
            Tier::Hour => "hour",
            Tier::Alerts => "alerts",
        }
    }

    fn monthly(self) -> bool {
        matches!(self, Tier::Hour | Tier::Alerts)
    }

    /// The start of the partition holding time `t`.
    pub fn partition_start(self, t: u64) -> u64 {
        if self.monthly() {
            month_start(t)
        } else {
            t - t % DAY_MS
        }
    }

    /// The end (exclusive) of the partition starting at `start`.
    pub fn partition_end(self, start: u64) -> u64 {
        if self.monthly() {
            next_month(start)
        } else {
            start + DAY_MS
        }
    }

    fn file_name(self, start: u64) -> String {
        let date = crate::log::rfc3339(start);
        let stem = if self.monthly() {
            &date[..7]
        } else {
            &date[..10]
        };
        format!("{stem}.sqlite")
    }

    fn parse_name(self, name: &str) -> Option<u64> {
        let stem = name.strip_suffix(".sqlite")?;
        let text = if self.monthly() {
            (stem.len() == 7).then(|| format!("{stem}-01T00:00:00Z"))?
        } else {
            (stem.len() == 10).then(|| format!("{stem}T00:00:00Z"))?
        };
        let start = crate::log::parse_time(&text)?;
        (self.file_name(start) == name).then_some(start)
    }

    fn schema(self) -> &'static str {
        match self {
            Tier::Raw => {
                "CREATE TABLE IF NOT EXISTS chunks(
                    series INTEGER NOT NULL, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,
                    count INTEGER NOT NULL, data BLOB NOT NULL,
                    min_seq INTEGER NOT NULL DEFAULT 0, max_seq INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY(series, first_ms)) WITHOUT ROWID;
                 CREATE TABLE IF NOT EXISTS unsealed(
                    series INTEGER NOT NULL, hour_ms INTEGER NOT NULL,
                    PRIMARY KEY(series, hour_ms)) WITHOUT ROWID;"
            }
            Tier::Minute | Tier::Hour => {
                "CREATE TABLE IF NOT EXISTS blocks(
                    series INTEGER NOT NULL, start_ms INTEGER NOT NULL, data BLOB NOT NULL,
                    PRIMARY KEY(series, start_ms)) WITHOUT ROWID;"
            }
            Tier::Alerts => {
                "CREATE TABLE IF NOT EXISTS alerts(
                    alert_id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL,
                    agent TEXT NOT NULL, resolves INTEGER NOT NULL, record TEXT NOT NULL);
                 CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts(time_ms);
                 CREATE INDEX IF NOT EXISTS alerts_by_resolves ON alerts(resolves)
                    WHERE resolves != 0;"
            }
        }
    }
}

/// The first millisecond of the UTC month holding `t`.
fn month_start(t: u64) -> u64 {
    let date = crate::log::rfc3339(t);
    crate::log::parse_time(&format!("{}-01T00:00:00Z", &date[..7])).unwrap_or(t - t % DAY_MS)
}

fn next_month(start: u64) -> u64 {
    // 32 days after the first of a month is always in the next month.
    month_start(month_start(start) + 32 * DAY_MS)
}

/// One partition file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId {
    pub tier: Tier,
    pub start_ms: u64,
}

impl PartitionId {
    pub fn of(tier: Tier, t: u64) -> PartitionId {
        PartitionId {
            tier,
            start_ms: tier.partition_start(t),
        }
    }

    pub fn end_ms(&self) -> u64 {
        self.tier.partition_end(self.start_ms)
    }

    pub fn path(&self, root: &Path) -> PathBuf {
        root.join(self.tier.dir_name())
            .join(self.tier.file_name(self.start_ms))
    }

    /// The partitions of `tier` that overlap `[from, to)`, oldest first.
    pub fn covering(tier: Tier, from: u64, to: u64) -> Vec<PartitionId> {
        let mut out = Vec::new();
        let mut start = tier.partition_start(from);
        while start < to {
            out.push(PartitionId {
                tier,
                start_ms: start,
            });
            let next = tier.partition_end(start);
            if next <= start {
                break;
            }
            start = next;
        }
        out
    }
}

/// The partition files present in `root` for `tier`, oldest first.
pub fn list(root: &Path, tier: Tier) -> std::io::Result<Vec<PartitionId>> {
    let dir = root.join(tier.dir_name());
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name();
        if let Some(start) = name.to_str().and_then(|n| tier.parse_name(n)) {
            out.push(PartitionId {
                tier,
                start_ms: start,
            });
        }
    }
    out.sort();
    Ok(out)
}

/// Bytes a partition takes on disk (with SQLite's journal files).
pub fn file_bytes(path: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(PathBuf::from(p)).ok()
        })
        .map(|m| m.len())
        .sum()
}

/// Deletes a partition file and its journal files.
pub fn remove(path: &Path) -> std::io::Result<()> {
    for suffix in ["-wal", "-shm", ""] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(PathBuf::from(p)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Pages each partition connection caches (SQLite's default is 2 MB; many partitions are
/// open at once, and chunks are read once per query).
const CACHE_KIB: i64 = 512;

fn configure(conn: &Connection, durable: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is synced before it returns (the log's segments are deleted after).
    conn.pragma_update(None, "synchronous", if durable { "FULL" } else { "OFF" })?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    Ok(())
}

/// Opens (creating when `create`) a partition file; `None` when it does not exist and is not
/// to be created.
pub fn open(
    root: &Path,
    id: PartitionId,
    create: bool,
    durable: bool,
) -> rusqlite::Result<Option<Connection>> {
    let path = id.path(root);
    if !path.exists() {
        if !create {
            return Ok(None);
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                    Some(format!("cannot create {}: {e}", dir.display())),
                )
            })?;
        }
    }
    let conn = if create {
        Connection::open(&path)?
    } else {
        Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?
    };
    configure(&conn, durable)?;
    conn.execute_batch(id.tier.schema())?;
    if id.tier == Tier::Raw {
        add_sequence_columns(&conn)?;
    }
    Ok(Some(conn))
}

/// Gives a raw partition of an earlier version the chunks' sequence range (0: none known) and
/// its index, which readers in sequence order search.
fn add_sequence_columns(conn: &Connection) -> rusqlite::Result<()> {
    let has = conn
        .prepare("SELECT 1 FROM pragma_table_info('chunks') WHERE name = 'max_seq'")?
        .exists([])?;
    if !has {
        conn.execute_batch(
            "ALTER TABLE chunks ADD COLUMN min_seq INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE chunks ADD COLUMN max_seq INTEGER NOT NULL DEFAULT 0;",
        )?;
    }
    conn.execute_batch("CREATE INDEX IF NOT EXISTS chunks_by_seq ON chunks(max_seq)")
}

/// Open partition connections of one thread.
pub struct Pool {
    root: PathBuf,
    open: HashMap<PartitionId, Connection>,
    durable: bool,
    /// Partitions with a transaction begun by [`Pool::begin`], not committed yet.
    in_transaction: Vec<PartitionId>,
}

/// Most connections a pool keeps open.
const POOL_SIZE: usize = 48;

impl Pool {
    /// `durable`: commits are synced (off only for a bulk load that can be done again).
    pub fn new(root: &Path, durable: bool) -> Pool {
        Pool {
            root: root.to_path_buf(),
            open: HashMap::new(),
            durable,
            in_transaction: Vec::new(),
        }
    }

    /// The connection to a partition (created if needed) inside a transaction of this pool:
    /// begun on first use, committed by [`Pool::commit`] together with the others. One sync
    /// per file for a whole maintenance pass, however many series it writes.
    pub fn begin(&mut self, id: PartitionId) -> rusqlite::Result<&Connection> {
        if !self.in_transaction.contains(&id) {
            let conn = self.get(id, true)?.ok_or(rusqlite::Error::InvalidQuery)?;
            conn.execute_batch("BEGIN")?;
            self.in_transaction.push(id);
        }
        self.open.get(&id).ok_or(rusqlite::Error::InvalidQuery)
    }

    /// Commits every transaction begun, rollup files first and raw files last (a raw file's
    /// commit is what makes its hours sealed), then nothing is pending. On a failure the
    /// transactions not committed yet are rolled back and the error returned.
    pub fn commit(&mut self) -> Result<(), (PartitionId, rusqlite::Error)> {
        let mut pending = std::mem::take(&mut self.in_transaction);
        pending.sort_by_key(|id| (id.tier == Tier::Raw, id.start_ms));
        let mut failed = None;
        for id in pending {
            let Some(conn) = self.open.get(&id) else {
                continue;
            };
            if failed.is_some() {
                let _ = conn.execute_batch("ROLLBACK");
                continue;
            }
            if let Err(e) = conn.execute_batch("COMMIT") {
                let _ = conn.execute_batch("ROLLBACK");
                failed = Some((id, e));
            }
        }
        match failed {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }

    /// Rolls back every transaction begun.
    pub fn rollback(&mut self) {
        for id in std::mem::take(&mut self.in_transaction) {
            if let Some(conn) = self.open.get(&id) {
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
    }

    /// The connection to a partition; `None` when the file does not exist (and `create` is
    /// false). A file deleted by retention since it was opened is not served.
    pub fn get(&mut self, id: PartitionId, create: bool) -> rusqlite::Result<Option<&Connection>> {
        let exists = id.path(&self.root).exists();
        if !exists {
            self.open.remove(&id);
            if !create {
                return Ok(None);
            }
        }
        if !self.open.contains_key(&id) {
            let Some(conn) = open(&self.root, id, create, self.durable)? else {
                return Ok(None);
            };
            if self.open.len() >= POOL_SIZE {
                // Keep the newest partitions: they are the ones written and read most (and
                // never one inside a transaction).
                let in_transaction = &self.in_transaction;
                if let Some(oldest) = self
                    .open
                    .keys()
                    .filter(|k| !in_transaction.contains(k))
                    .min()
                    .copied()
                {
                    self.open.remove(&oldest);
                }
            }
            self.open.insert(id, conn);
        }
        Ok(self.open.get(&id))
    }

    /// Forgets the connection to a partition (before it is deleted).
    pub fn close(&mut self, id: PartitionId) {
        if self.in_transaction.contains(&id) {
            return;
        }
        self.open.remove(&id);
    }
}

/// The catalogue: series ids and names, and facts about the store.
pub struct Catalog {
    conn: Connection,
}

impl Catalog {
    pub fn open(root: &Path) -> rusqlite::Result<Catalog> {
        let conn = Connection::open(root.join("catalog.sqlite"))?;
        configure(&conn, true)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS series(
                id INTEGER PRIMARY KEY, agent TEXT NOT NULL, task TEXT NOT NULL,
                target TEXT NOT NULL, UNIQUE(agent, task, target));
             CREATE TABLE IF NOT EXISTS facts(key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )?;
        Ok(Catalog { conn })
    }

    /// Every series: (id, agent, task, target or "").
    pub fn series(&self) -> rusqlite::Result<Vec<(u32, String, String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, agent, task, target FROM series ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        rows.collect()
    }

    /// Records series (id, agent, task, target or "") in one transaction.
    pub fn add_series(&mut self, series: &[(u32, &str, &str, &str)]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO series(id, agent, task, target) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (id, agent, task, target) in series {
                stmt.execute(params![id, agent, task, target])?;
            }
        }
        tx.commit()
    }

    pub fn fact(&self, key: &str) -> rusqlite::Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM facts WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
    }

    pub fn set_fact(&self, key: &str, value: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO facts(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_named_by_their_utc_day_or_month() {
        let t = crate::log::parse_time("2026-12-31T23:59:59Z").unwrap();
        let raw = PartitionId::of(Tier::Raw, t);
        assert_eq!(
            raw.path(Path::new("s")),
            Path::new("s/raw/2026-12-31.sqlite")
        );
        assert_eq!(
            raw.end_ms(),
            crate::log::parse_time("2027-01-01T00:00:00Z").unwrap()
        );
        let hour = PartitionId::of(Tier::Hour, t);
        assert_eq!(
            hour.path(Path::new("s")),
            Path::new("s/hour/2026-12.sqlite")
        );
        assert_eq!(
            hour.end_ms(),
            crate::log::parse_time("2027-01-01T00:00:00Z").unwrap()
        );
        assert_eq!(Tier::Hour.parse_name("2026-12.sqlite"), Some(hour.start_ms));
        assert_eq!(
            Tier::Raw.parse_name("2026-12-31.sqlite"),
            Some(raw.start_ms)
        );
        assert_eq!(Tier::Raw.parse_name("2026-13-01.sqlite"), None);
        assert_eq!(Tier::Raw.parse_name("notes.txt"), None);
        let feb = crate::log::parse_time("2028-02-10T00:00:00Z").unwrap();
        let feb = PartitionId::of(Tier::Alerts, feb);
        assert_eq!(
            feb.end_ms() - feb.start_ms,
            29 * DAY_MS,
            "2028 is a leap year"
        );
        let days = PartitionId::covering(Tier::Raw, raw.start_ms - 1, raw.start_ms + 1);
        assert_eq!(days.len(), 2);
    }
}
