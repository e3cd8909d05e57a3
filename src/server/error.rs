//! What can keep a server from starting or running: [`ServerError`], each variant saying what
//! was being done, with the cause as its source (the binary prints the chain).

use super::ack::AckError;
use super::alertmanager::target::TargetError;
use super::dispatch::LoadError;
use super::registry::RegistryError;
use super::silence::SilenceError;
use crate::store::StoreError;
use std::path::PathBuf;

/// Why a server did not start, or stopped while running.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// `--external-url` (or a `--peer`) is not a base URL of an HTTP API.
    #[error("{0}")]
    ExternalUrl(String),
    /// A port could not be bound; `what` names the port and address.
    #[error("cannot bind the {what}")]
    Bind {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create data directory {}", path.display())]
    DataDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the firing alerts")]
    FiringAlerts(#[source] StoreError),
    /// The local agent's name is not a valid agent name.
    #[error("{0}")]
    LocalAgent(String),
    #[error("the NetTask driver stopped")]
    DriverStopped,
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Tasks(#[from] LoadError),
    #[error(transparent)]
    Silences(#[from] SilenceError),
    #[error(transparent)]
    Acknowledgements(#[from] AckError),
    #[error(transparent)]
    Alertmanager(#[from] TargetError),
}

/// An error and its sources, `outer: inner: ...` (as the binary prints errors).
pub(super) fn chain(error: &dyn std::error::Error) -> String {
    crate::log::error_chain(error)
}
