//! `nms store check`: reads every file of a store without changing any, and reports damage
//! precisely: which file, which series and time, what is wrong. SQLite's own integrity check
//! covers the partition files' structure; every chunk and block is decoded (its checksum and
//! layout verified) and its index row compared with what it holds; every log frame's checksum
//! is verified.

use super::chunk::{RawChunk, RollupBlock};
use super::partition::{self, HOUR_MS, Tier};
use super::wal;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use std::path::Path;

/// What a check found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub partitions: usize,
    pub chunks: u64,
    pub reports: u64,
    pub blocks: u64,
    pub alerts: u64,
    pub wal_segments: usize,
    pub wal_records: usize,
    /// One line per problem: file, where, what.
    pub problems: Vec<String>,
}

fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// Checks the store in `root` (a data directory's `store/`).
pub fn check(root: &Path) -> std::io::Result<CheckReport> {
    let mut report = CheckReport::default();
    if !root.exists() {
        report
            .problems
            .push(format!("{}: no store here", root.display()));
        return Ok(report);
    }
    let catalog = root.join("catalog.sqlite");
    if catalog.exists() {
        integrity(&catalog, &mut report);
    } else {
        report
            .problems
            .push(format!("{}: missing (the series names)", catalog.display()));
    }
    for tier in Tier::ALL {
        for id in partition::list(root, tier)? {
            report.partitions += 1;
            let path = id.path(root);
            let Some(conn) = integrity(&path, &mut report) else {
                continue;
            };
            let problems = match tier {
                Tier::Raw => check_chunks(&conn, &path, id, &mut report),
                Tier::Minute | Tier::Hour => check_blocks(&conn, &path, &mut report),
                Tier::Alerts => check_alerts(&conn, &path, &mut report),
            };
            if let Err(e) = problems {
                report.problems.push(format!("{}: {e}", path.display()));
            }
        }
    }
    let (records, recovery) = wal::verify(&root.join("wal"))?;
    report.wal_segments = recovery.segments;
    report.wal_records = records;
    report.problems.extend(recovery.damaged);
    if recovery.truncated_bytes > 0 {
        report.problems.push(format!(
            "{}: {} bytes of an unfinished last write (never acknowledged; cut at the next start)",
            root.join("wal").display(),
            recovery.truncated_bytes
        ));
    }
    Ok(report)
}

fn integrity(path: &Path, report: &mut CheckReport) -> Option<Connection> {
    let conn = match open_read_only(path) {
        Ok(c) => c,
        Err(e) => {
            report
                .problems
                .push(format!("{}: cannot open: {e}", path.display()));
            return None;
        }
    };
    let result: rusqlite::Result<Vec<String>> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect());
    match result {
        Ok(lines) if lines == ["ok"] => Some(conn),
        Ok(lines) => {
            for l in lines {
                report.problems.push(format!("{}: {l}", path.display()));
            }
            None
        }
        Err(e) => {
            report
                .problems
                .push(format!("{}: not a readable database: {e}", path.display()));
            None
        }
    }
}

fn check_chunks(
    conn: &Connection,
    path: &Path,
    id: partition::PartitionId,
    report: &mut CheckReport,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("SELECT series, first_ms, last_ms, count, data FROM chunks")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let series: u32 = row.get(0)?;
        let first: i64 = row.get(1)?;
        let last: i64 = row.get(2)?;
        let count: i64 = row.get(3)?;
        let data: Vec<u8> = row.get(4)?;
        report.chunks += 1;
        let at = format!(
            "{}: series {series}, chunk at {} ({first})",
            path.display(),
            crate::log::rfc3339(first as u64)
        );
        match RawChunk::decode(&data) {
            Err(e) => report.problems.push(format!("{at}: {e}")),
            Ok(chunk) => {
                report.reports += chunk.len() as u64;
                let (t0, t1) = (
                    chunk.times.first().copied().unwrap_or(0),
                    chunk.times.last().copied().unwrap_or(0),
                );
                if chunk.len() as i64 != count || t0 as i64 != first || t1 as i64 != last {
                    report.problems.push(format!(
                        "{at}: the index says {count} reports from {first} to {last}, the chunk holds {} from {t0} to {t1}",
                        chunk.len()
                    ));
                }
                if chunk.times.windows(2).any(|w| w[0] >= w[1]) {
                    report
                        .problems
                        .push(format!("{at}: times are not strictly ascending"));
                }
                let hour = t0 - t0 % HOUR_MS;
                if t0 < id.start_ms || t1 >= id.end_ms() || t1 >= hour + HOUR_MS {
                    report.problems.push(format!(
                        "{at}: reports outside the chunk's hour or the file's day"
                    ));
                }
            }
        }
    }
    Ok(())
}

fn check_blocks(conn: &Connection, path: &Path, report: &mut CheckReport) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("SELECT series, start_ms, data FROM blocks")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let series: u32 = row.get(0)?;
        let start: i64 = row.get(1)?;
        let data: Vec<u8> = row.get(2)?;
        report.blocks += 1;
        match RollupBlock::decode(&data) {
            Err(e) => report.problems.push(format!(
                "{}: series {series}, block at {start}: {e}",
                path.display()
            )),
            Ok(b) if b.start_ms as i64 != start => report.problems.push(format!(
                "{}: series {series}, block at {start} says it starts at {}",
                path.display(),
                b.start_ms
            )),
            Ok(_) => {}
        }
    }
    Ok(())
}

fn check_alerts(conn: &Connection, path: &Path, report: &mut CheckReport) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("SELECT alert_id, record FROM alerts")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let text: String = row.get(1)?;
        report.alerts += 1;
        match serde_json::from_str::<super::AlertRecord>(&text) {
            Ok(a) if a.alert_id as i64 == id => {}
            Ok(a) => report.problems.push(format!(
                "{}: alert {:016x} stored under id {:016x}",
                path.display(),
                a.alert_id,
                id as u64
            )),
            Err(e) => report.problems.push(format!(
                "{}: alert {:016x}: unreadable record: {e}",
                path.display(),
                id as u64
            )),
        }
    }
    Ok(())
}
