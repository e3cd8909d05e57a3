//! The validated configuration of a server ([`ServerOptions`]) and the checks and defaults
//! of its command-line values.

use super::ServerError;
use super::{alertmanager, http, remote_write};
use crate::nettask::Keys;
use crate::store::StoreOptions;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The validated configuration of a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub task_files: Vec<PathBuf>,
    pub listen: IpAddr,
    pub nettask_port: u16,
    pub alertflow_port: u16,
    /// The AlertFlow port announced to agents in REGISTERED, when it differs from the port the
    /// server listens on (a port forward or a proxy in between); `None` announces the real one.
    pub advertise_alertflow_port: Option<u16>,
    pub http: SocketAddr,
    pub data_dir: PathBuf,
    pub keys: Keys,
    /// How often agents must be heard from.
    pub heartbeat: Duration,
    /// Intervals without a word before an agent is down.
    pub missed_heartbeats: u32,
    pub initial_timeout: Duration,
    pub max_retransmissions: u32,
    /// Run an agent of this name in the same process.
    pub local_agent: Option<String>,
    /// Log every stored metrics report.
    pub verbose: bool,
    /// Forward alerts to each of these Alertmanagers (every one gets every alert): base URLs,
    /// with their credentials ([`alertmanager::Target`]).
    pub alertmanagers: Vec<alertmanager::Target>,
    /// The HTTP APIs of the other servers that serve the same agents: an agent silent here
    /// that one of them serves (it moved there) is not reported down.
    pub peers: Vec<String>,
    /// Send every stored report to each of these remote-write receivers.
    pub remote_writes: Vec<remote_write::Destination>,
    /// The URL others reach the HTTP API at (behind a proxy, say): alerts' `generatorURL` and
    /// links point there. Default: the `--http` address.
    pub external_url: Option<String>,
    /// Retention and limits of the time-series store.
    pub store: StoreOptions,
    /// Most agents registered at once; new names past it are refused.
    pub max_agents: usize,
    /// Without keys: new agent names accepted per second (after a burst of
    /// `admission::NEW_AGENTS_BURST`).
    pub new_agents_per_second: u64,
    /// Agents that never sent anything after registering are forgotten after this long silent.
    pub forget_unreported_after: Duration,
    /// Who may read and write through the HTTP API.
    pub api: http::ApiAccess,
}

/// The origin of tasks posted over the HTTP API (others name their task file).
pub const HTTP_ORIGIN: &str = "HTTP API";

/// Checks `--external-url`: an `http://` or `https://` URL with a host, no query.
pub fn check_external_url(url: &str) -> Result<String, ServerError> {
    let uri: hyper::Uri = url
        .trim()
        .parse()
        .map_err(|_| ServerError::ExternalUrl(format!("--external-url {url:?}: not a URL")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none_or(str::is_empty) {
        return Err(ServerError::ExternalUrl(format!(
            "--external-url {url:?}: give the URL the HTTP API is reached at, e.g. \
             https://monitor.example.net/nms"
        )));
    }
    if uri.query().is_some() {
        return Err(ServerError::ExternalUrl(format!(
            "--external-url {url:?}: a base URL has no query"
        )));
    }
    Ok(url.trim().trim_end_matches('/').to_string())
}

/// The default of `--max-agents`.
pub const DEFAULT_MAX_AGENTS: usize = 10_000;
/// The default of `--new-agents-per-second`.
pub const DEFAULT_NEW_AGENTS_PER_SECOND: u64 = 50;
