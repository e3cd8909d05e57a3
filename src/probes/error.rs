//! What can go wrong while measuring: one [`ProbeError`] for every probe, each with a message an
//! operator can act on, and the AlertFlow alert type the agent raises for it.

use crate::wire::AlertType;
use std::time::Duration;

/// A destination (host name or IP literal) that was refused before anything ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid destination {input:?}: {reason}")]
pub struct DestinationError {
    /// The text that was refused (cut to 80 characters).
    pub input: String,
    pub reason: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The measuring program is not installed (or not on `PATH`).
    #[error(
        "`{0}` is not installed on this host (not found on PATH); install it to run this measurement"
    )]
    ToolMissing(String),
    /// The destination's name does not resolve.
    #[error("unknown host {host}: {reason}")]
    UnknownHost { host: String, reason: String },
    /// There is no route to the destination.
    #[error("{tool}: destination unreachable: {detail}")]
    Unreachable { tool: &'static str, detail: String },
    /// The program did not finish before its deadline and was killed.
    #[error("{tool} did not finish within {:.1} s and was stopped", after.as_secs_f64())]
    Timeout { tool: &'static str, after: Duration },
    /// The program may not do what it needs (raw sockets, binding a port).
    #[error("{tool} is not permitted to run here: {detail}")]
    PermissionDenied { tool: &'static str, detail: String },
    /// The iperf3 server is running another test.
    #[error("the iperf3 server is busy running another test; try again later")]
    ServerBusy,
    /// iperf3 reported an error (its own message).
    #[error("iperf3: {0}")]
    Iperf(String),
    /// The program's output is not what the parser expects.
    #[error("could not read the output of {tool}: {reason}")]
    Parse { tool: &'static str, reason: String },
    /// A watched network interface does not exist (any more) on this host.
    #[error("no network interface named {0:?} on this host")]
    NoSuchInterface(String),
    #[error(transparent)]
    InvalidDestination(#[from] DestinationError),
    /// A measurement parameter out of range (a packet count of 0, a test of 0 seconds).
    #[error("invalid measurement parameter: {0}")]
    InvalidArgument(String),
    /// The operating system's statistics could not be read.
    #[error("could not read system statistics: {0}")]
    System(String),
    /// Starting or talking to the program failed.
    #[error("could not run `{tool}`: {source}")]
    Io {
        tool: String,
        #[source]
        source: std::io::Error,
    },
}

impl ProbeError {
    /// What went wrong, as a short key that stays the same while the cause persists (a
    /// timeout's duration or an I/O error's wording may vary, the cause does not): the agent
    /// keeps one ERROR or TIMEOUT alert firing per probe and cause.
    pub fn cause(&self) -> String {
        match self {
            ProbeError::ToolMissing(tool) => format!("missing:{tool}"),
            ProbeError::UnknownHost { host, .. } => format!("unknown_host:{host}"),
            ProbeError::Unreachable { .. } => "unreachable".into(),
            ProbeError::Timeout { tool, .. } => format!("timeout:{tool}"),
            ProbeError::PermissionDenied { tool, .. } => format!("permission:{tool}"),
            ProbeError::ServerBusy => "server_busy".into(),
            ProbeError::Iperf(message) => format!("iperf3:{message}"),
            ProbeError::Parse { tool, .. } => format!("parse:{tool}"),
            ProbeError::NoSuchInterface(name) => format!("no_interface:{name}"),
            ProbeError::InvalidDestination(e) => format!("destination:{}", e.input),
            ProbeError::InvalidArgument(what) => format!("argument:{what}"),
            ProbeError::System(_) => "system".into(),
            ProbeError::Io { tool, source } => format!("io:{tool}:{:?}", source.kind()),
        }
    }

    /// The alert type the agent raises for this failure: TIMEOUT for a deadline that passed,
    /// ERROR for everything else.
    pub fn alert_type(&self) -> AlertType {
        match self {
            ProbeError::Timeout { .. } => AlertType::Timeout,
            _ => AlertType::Error,
        }
    }
}
