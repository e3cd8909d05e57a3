//! `nms bench`: a load generator that measures the server against the machine it runs on.
//!
//! It starts a server (a child `nms server` in a temporary data directory, or uses a running one
//! given with `--server`), hands it task files naming N simulated agents, and runs those agents
//! as [`AgentEndpoint`](crate::nettask::AgentEndpoint)s multiplexed over a few UDP sockets
//! ([`fleet`]). Each agent registers, receives its task and sends metrics reports, at a given
//! rate or as fast as acknowledgements allow; a few optionally raise alerts over AlertFlow
//! ([`alerts`]). The run reports reports stored per second, acknowledgement and alert latency,
//! lost and duplicated reports ([`verify`]), the server's CPU and memory from `/proc`, and the
//! loopback ceiling of the same exchange without any protocol work ([`ceiling`]), measured in
//! the same run so the server's rate reads as a fraction of what the machine can do at all.

pub mod alerts;
pub mod ceiling;
pub mod fleet;
pub mod latency;
mod measure;
mod phases;
mod report;
pub mod store;
pub mod target;
pub mod verify;

pub use report::{BenchReport, RemoteWriteFigures};

use crate::wire::Key;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use target::Target;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("server under test: {0}")]
    Server(String),
    #[error("{0}")]
    Setup(String),
}

/// The validated options of a run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub agents: usize,
    /// Reports per second per agent; `None`: as fast as acknowledgements allow.
    pub rate: Option<f64>,
    pub seconds: f64,
    /// A running server's NetTask address and HTTP API; `None`: start one.
    pub server: Option<(SocketAddr, SocketAddr)>,
    /// Raise alerts over AlertFlow at `alert_rate` per second.
    pub alerts: bool,
    /// The started server's `--remote-write` receiver.
    pub remote_write: Option<String>,
    pub alert_rate: f64,
    /// Threads (each with one UDP socket) the simulated agents run on.
    pub threads: usize,
    /// Reports each agent keeps unacknowledged when sending as fast as acks allow.
    pub window: usize,
    pub ceiling_seconds: f64,
    pub key: Option<Key>,
    /// The `nms` executable the server is started from.
    pub server_exe: PathBuf,
    /// Folder the temporary data directory is made in (default: the system's temp folder).
    pub work_dir: Option<PathBuf>,
    /// Keep the temporary data directory.
    pub keep: bool,
    /// Print progress to standard error.
    pub progress: bool,
    /// Kill the (child) server with SIGKILL this often while measuring, and start it again.
    pub kill_every: Option<f64>,
    /// A running server's API token (for posting the bench's tasks).
    pub token: Option<String>,
}

/// The heartbeat interval the started server hands out: one second, longer for large fleets so
/// idle agents send at most 10,000 heartbeats a second in all (a deployment of that size would
/// set `nms server --heartbeat-ms` the same way).
pub fn heartbeat_ms(agents: usize) -> u64 {
    (agents as u64 / 10).max(1000)
}

/// Runs the benchmark.
pub fn run(options: &BenchOptions) -> Result<BenchReport, BenchError> {
    if options.agents == 0 {
        return Err(BenchError::Setup("--agents must be at least 1".into()));
    }
    let nonce = fastrand::u32(..);
    let prefix = if options.server.is_some() {
        format!("bench-{nonce:08x}")
    } else {
        "bench".to_string()
    };
    let names: Arc<Vec<String>> = Arc::new(
        (0..options.agents)
            .map(|i| format!("{prefix}-{i:06}"))
            .collect(),
    );
    let tasks = target::task_files(&prefix, &names);
    let work_dir = options
        .work_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("nms-bench-{}-{nonce:08x}", std::process::id()));
    let progress = |text: String| {
        if options.progress {
            eprintln!("nms bench: {text}");
        }
    };

    if options.kill_every.is_some() && options.server.is_some() {
        return Err(BenchError::Setup(
            "--kill-every needs a server the bench starts (not --server)".into(),
        ));
    }
    let mut target = match options.server {
        Some((nettask, http)) => Target::remote(nettask, http, options.token.clone(), &tasks)?,
        None => {
            progress(format!("starting a server in {}", work_dir.display()));
            Target::start(
                &options.server_exe,
                &work_dir,
                &tasks,
                heartbeat_ms(options.agents),
                options.remote_write.as_deref(),
            )?
        }
    };
    let result = measure::measure(options, &mut target, names, &progress);
    let data_dir = target.data_dir.clone();
    drop(target);
    if !options.keep && options.server.is_none() {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    let mut report = result?;
    report.data_dir = data_dir.filter(|_| options.keep);
    Ok(report)
}
