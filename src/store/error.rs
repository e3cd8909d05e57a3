//! What can go wrong in the store ([`StoreError`]); an I/O or database error names the file or
//! directory it happened to.

use super::chunk;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Database {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path}: damaged chunk of series {series} at {first_ms}: {source}")]
    Damaged {
        path: PathBuf,
        series: u32,
        first_ms: u64,
        source: chunk::ChunkError,
    },
    #[error(
        "the store holds {0} reports in memory that it cannot move to disk; new reports are refused until it can"
    )]
    HeadFull(usize),
    #[error("the store is closed")]
    Closed,
    #[error("{0} is in use by another process (a running server?)")]
    Locked(PathBuf),
}

impl StoreError {
    pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(super) fn db(path: &Path) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Database {
            path: path.to_path_buf(),
            source,
        }
    }
}
