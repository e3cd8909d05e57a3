//! File persistence shared by the server's small records (the agent registry, task numbers, kept
//! uploads): an append-only log of JSON lines, and whole-file replacement that is never seen
//! half-written.
//!
//! Records are appended in batches, each batch written with one `write` and made durable with
//! one `fdatasync` before the caller acknowledges anything. Reading back tolerates a torn last
//! line (a crash in the middle of a write): it is cut off and reported, the rest is kept.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Replaces `path` with `value` as pretty JSON, never half-written: a temporary file is
/// written, synced and renamed over it.
pub fn replace_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[derive(Debug)]
pub struct JsonLog {
    path: PathBuf,
    file: File,
}

/// What reading a log found besides its records.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Lines that did not parse (kept in the file, skipped).
    pub bad_lines: Vec<usize>,
    /// Bytes of an incomplete last line that were cut off.
    pub truncated_bytes: u64,
}

impl JsonLog {
    /// Opens (creating if needed) the log at `path` and reads every record in it.
    pub fn open<T: DeserializeOwned>(path: &Path) -> std::io::Result<(JsonLog, Vec<T>, Recovery)> {
        let mut records = Vec::new();
        let mut recovery = Recovery::default();
        if path.exists() {
            let file = File::open(path)?;
            let len = file.metadata()?.len();
            let mut reader = BufReader::new(file);
            let mut line = Vec::new();
            let mut offset = 0u64;
            let mut number = 0usize;
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line)?;
                if n == 0 {
                    break;
                }
                number += 1;
                if line.last() != Some(&b'\n') {
                    // A torn write: drop it so the next append starts on a clean line.
                    recovery.truncated_bytes = len - offset;
                    let f = OpenOptions::new().write(true).open(path)?;
                    f.set_len(offset)?;
                    f.sync_all()?;
                    break;
                }
                offset += n as u64;
                match serde_json::from_slice::<T>(&line) {
                    Ok(r) => records.push(r),
                    Err(_) => recovery.bad_lines.push(number),
                }
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok((
            JsonLog {
                path: path.to_path_buf(),
                file,
            },
            records,
            recovery,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends records and makes them durable; on failure nothing of them stays in the file.
    pub fn append<T: Serialize>(&mut self, records: &[T]) -> std::io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(records.len() * 160);
        for r in records {
            serde_json::to_writer(&mut buf, r)?;
            buf.push(b'\n');
        }
        let len = self.file.metadata()?.len();
        let result = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        if result.is_err() {
            // A full disk can take half a line: cut it, so that the next good record does not
            // start in the middle of a line (and get lost with it when read back).
            let _ = self.file.set_len(len);
        }
        result
    }
}
