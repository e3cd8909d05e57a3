//! Opening a store: taking the data directory's lock, loading the series the catalog names,
//! recovering the write-ahead log (numbering its rows, replaying it into the head), finding the
//! hours an interrupted run left unsealed, and starting maintenance.

use super::{
    Inner, Store, StoreError, StoreOptions, StoreStats,
    head::Head,
    lock, maintain, partition,
    partition::{Catalog, Pool},
    sequence,
    wal::{self, SegmentRecord, SeriesKey, Wal, WalRecovery},
};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

impl Store {
    /// Opens the store of a server's data directory (its files are in `data_dir/store`),
    /// replays the write-ahead log into the head, and starts maintenance.
    pub fn open(data_dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let root = data_dir.join("store");
        let lock_file = lock_root(&root)?;
        let catalog_path = root.join("catalog.sqlite");
        let catalog = Catalog::open(&root).map_err(StoreError::db(&catalog_path))?;
        let head = head_of_catalog(&catalog, &catalog_path, options.head_max_reports)?;
        let wal_dir = root.join("wal");
        let (mut wal, mut records, recovery) =
            Wal::open(&wal_dir).map_err(StoreError::io(&wal_dir))?;
        number_recovered(&mut wal, &mut records, &catalog, &catalog_path, &root)?;
        let committed = wal.next_seq();
        log_recovery(&wal_dir, &recovery);
        let inner = Arc::new(Inner {
            root: root.clone(),
            data_dir: data_dir.to_path_buf(),
            options: options.clone(),
            head: Mutex::new(head),
            wal: Mutex::new(wal),
            ingest_pool: Mutex::new(Pool::new(&root, true)),
            maintain_pool: Mutex::new(Pool::new(&root, options.durable)),
            query_pool: Mutex::new(Pool::new(&root, true)),
            alert_pool: Mutex::new(Pool::new(&root, true)),
            sequence_pool: Mutex::new(Pool::new(&root, true)),
            committed_seq: AtomicU64::new(committed),
            commit_times: Mutex::new(std::collections::VecDeque::new()),
            catalog: Mutex::new(catalog),
            stats: Mutex::new(StoreStats::default()),
            stop: AtomicBool::new(false),
            wake: (Mutex::new(false), std::sync::Condvar::new()),
        });
        let replayed = inner.replay(records)?;
        if replayed > 0 {
            crate::log::event(
                crate::log::Level::Info,
                "STORE",
                format_args!(
                    "{replayed} report(s) recovered from the write-ahead log ({} segment(s))",
                    recovery.segments
                ),
            );
        }
        inner.find_unsealed()?;
        let maintenance = if options.background {
            Some(start_maintenance(&inner, &root)?)
        } else {
            None
        };
        Ok(Store {
            inner,
            maintenance,
            _lock: lock_file,
        })
    }
}

/// Creates the store's directory and takes its lock (held while the store is open: one process
/// at a time).
fn lock_root(root: &Path) -> Result<std::fs::File, StoreError> {
    std::fs::create_dir_all(root).map_err(|source| StoreError::CreateDir {
        path: root.to_path_buf(),
        source,
    })?;
    let lock_path = root.join("lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(StoreError::io(&lock_path))?;
    if lock_file.try_lock().is_err() {
        return Err(StoreError::Locked(root.to_path_buf()));
    }
    Ok(lock_file)
}

/// An empty head that knows every series the catalog names (as moved into chunks already).
fn head_of_catalog(
    catalog: &Catalog,
    catalog_path: &Path,
    head_max_reports: usize,
) -> Result<Head, StoreError> {
    let mut head = Head::new(head_max_reports);
    for (id, agent, task, target) in catalog.series().map_err(StoreError::db(catalog_path))? {
        head.know_series(
            id,
            SeriesKey {
                agent,
                task,
                target: (!target.is_empty()).then_some(target),
            },
            true,
        );
    }
    Ok(head)
}

/// Sets where the log's numbering goes on, and numbers the recovered rows that have none.
fn number_recovered(
    wal: &mut Wal,
    records: &mut [SegmentRecord],
    catalog: &Catalog,
    catalog_path: &Path,
    root: &Path,
) -> Result<(), StoreError> {
    // Numbering goes on after every number the store ever gave: those in the log, in the
    // chunks, and the high-water mark written before log segments are deleted.
    let logged = records
        .iter()
        .filter_map(|(_, r)| match r {
            wal::WalRecord::Row(row) => Some(row.seq),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let noted = catalog
        .fact(sequence::NEXT_SEQ_FACT)
        .map_err(StoreError::db(catalog_path))?
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1);
    let chunked = sequence::newest_in_chunks(root)?;
    wal.set_next_seq(noted.max(logged + 1).max(chunked + 1));
    // Rows of a log written before sequence numbers get theirs now.
    for (_, record) in records {
        if let wal::WalRecord::Row(row) = record
            && row.seq == 0
        {
            wal.number(std::slice::from_mut(row));
        }
    }
    Ok(())
}

/// Logs what recovering the log cut or found damaged.
fn log_recovery(wal_dir: &Path, recovery: &WalRecovery) {
    if recovery.truncated_bytes > 0 {
        crate::log::event(
            crate::log::Level::Warn,
            "STORE",
            format_args!(
                "{}: cut {} bytes of an unfinished write (never acknowledged)",
                wal_dir.display(),
                recovery.truncated_bytes
            ),
        );
    }
    for d in &recovery.damaged {
        crate::log::event(crate::log::Level::Bad, "STORE", format_args!("{d}"));
    }
}

/// Starts the maintenance thread.
fn start_maintenance(
    inner: &Arc<Inner>,
    root: &Path,
) -> Result<std::thread::JoinHandle<()>, StoreError> {
    let inner = inner.clone();
    std::thread::Builder::new()
        .name("nms-store".into())
        .spawn(move || maintain::run(&inner))
        .map_err(StoreError::io(root))
}

impl Inner {
    /// Rebuilds the head from the log's records (skipping what reached the chunks already).
    fn replay(&self, records: Vec<(u64, wal::WalRecord)>) -> Result<u64, StoreError> {
        let mut head = lock(&self.head);
        let mut columns: std::collections::HashMap<(u64, u32), u32> =
            std::collections::HashMap::new();
        let mut series_ids: std::collections::HashMap<(u64, u32), u32> =
            std::collections::HashMap::new();
        let mut replayed = 0;
        let now = self.now();
        // What retention deleted while the log still held it does not come back.
        let oldest = now.saturating_sub(self.options.retention.raw.as_millis() as u64);
        for (segment, record) in records {
            match record {
                wal::WalRecord::Series { id, key } => {
                    let id_now = head.know_series(id, key, false);
                    series_ids.insert((segment, id), id_now);
                }
                wal::WalRecord::Column { id, column } => {
                    let id_now = head.column_id(&column);
                    columns.insert((segment, id), id_now);
                }
                wal::WalRecord::Row(mut row) => {
                    let Some(series) = series_ids.get(&(segment, row.series)).copied() else {
                        continue;
                    };
                    row.series = series;
                    row.values
                        .retain_mut(|(c, _)| match columns.get(&(segment, *c)) {
                            Some(id) => {
                                *c = *id;
                                true
                            }
                            None => false,
                        });
                    if row.time_ms < oldest || self.stored_before(&mut head, series, row.time_ms)? {
                        continue;
                    }
                    head.insert(row, segment, now);
                    replayed += 1;
                }
            }
        }
        Ok(replayed)
    }

    /// Finds the hours whose chunks were written but not sealed (an interrupted run).
    fn find_unsealed(&self) -> Result<(), StoreError> {
        let partitions = partition::list(&self.root, partition::Tier::Raw)
            .map_err(StoreError::io(&self.root))?;
        let mut pool = lock(&self.maintain_pool);
        let mut found = Vec::new();
        for id in partitions {
            let path = id.path(&self.root);
            let Some(conn) = pool.get(id, false).map_err(StoreError::db(&path))? else {
                continue;
            };
            let mut stmt = conn
                .prepare("SELECT series, hour_ms FROM unsealed")
                .map_err(StoreError::db(&path))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)? as u64))
                })
                .map_err(StoreError::db(&path))?;
            for r in rows {
                found.push(r.map_err(StoreError::db(&path))?);
            }
        }
        let mut head = lock(&self.head);
        for (series, hour) in found {
            head.mark_unsealed(series, hour);
        }
        Ok(())
    }
}
