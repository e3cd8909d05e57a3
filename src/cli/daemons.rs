//! The flags of the two long-running commands: `nms server` and `nms agent`.

use super::LogArgs;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nms server --config configs/default.json --local-agent local -v\n  \
    nms server --config configs/assignment-example.json --listen 0.0.0.0 --key-file /etc/nms/psk")]
pub struct ServerArgs {
    /// Settings file (TOML) [default: ~/.config/nms/server.toml, then /etc/nms/server.toml, if
    /// present]. Flags given on the command line win over it.
    #[arg(long, value_name = "FILE")]
    pub settings: Option<PathBuf>,

    /// A task file to load and dispatch (either dialect); repeat for several.
    #[arg(long = "config", value_name = "FILE")]
    pub configs: Vec<PathBuf>,

    /// Address the NetTask and AlertFlow ports listen on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0")]
    pub listen: std::net::IpAddr,

    /// UDP port of NetTask.
    #[arg(long, value_name = "PORT", default_value_t = 8081)]
    pub nettask_port: u16,

    /// TCP port of AlertFlow.
    #[arg(long, value_name = "PORT", default_value_t = 8080)]
    pub alertflow_port: u16,

    /// The AlertFlow port announced to agents, when a port forward or a proxy sits in front
    /// of the real one (tests put a fault-injecting proxy there).
    #[arg(long, value_name = "PORT", hide = true)]
    pub advertise_alertflow_port: Option<u16>,

    /// Address of the HTTP API (loopback by default).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9470")]
    pub http: std::net::SocketAddr,

    /// Where metrics, alerts and the agent registry are stored [default: the user's data
    /// directory, e.g. ~/.local/share/nms/server].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Pre-shared key (hex text, 32+ digits): every packet and frame carries an HMAC tag.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,

    /// Per-agent keys: one `NAME HEXKEY` per line (# comments allowed).
    #[arg(long, value_name = "FILE")]
    pub keys_file: Option<PathBuf>,

    /// How often agents must be heard from, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub heartbeat_ms: u64,

    /// Heartbeat intervals without a word before an agent is marked down.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub missed_heartbeats: u32,

    /// Initial NetTask retransmission timeout in milliseconds (then adaptive).
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub timeout_ms: u64,

    /// NetTask retransmissions without an answer before a peer is reported lost.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_retransmissions: u32,

    /// Also run an agent of this name in the server process (monitors the server's own host).
    #[arg(long, value_name = "NAME")]
    pub local_agent: Option<String>,

    #[command(flatten)]
    pub log: LogArgs,

    /// Forward every alert, and its resolution, to Prometheus Alertmanager at this base URL
    /// (its v2 API), e.g. http://127.0.0.1:9093 or https://am.example.net; repeat for each
    /// member of a cluster (each gets every alert).
    #[arg(long = "alertmanager", value_name = "URL")]
    pub alertmanagers: Vec<String>,

    /// Credentials for Alertmanager, in a file: `bearer TOKEN`, or `basic USER:PASSWORD`
    /// (never logged).
    #[arg(long, value_name = "FILE")]
    pub alertmanager_auth_file: Option<PathBuf>,

    /// CA certificates (PEM) that Alertmanager's https certificate is checked against, in
    /// addition to the system's.
    #[arg(long, value_name = "FILE")]
    pub alertmanager_ca_file: Option<PathBuf>,

    /// The HTTP API of another server that serves the same agents (their --server lists name
    /// both), e.g. http://monitor-b.example.net:9470; repeat for each. An agent silent here
    /// that a peer serves (it moved there) is not reported down. Peers are asked with this
    /// server's API token when their reads need one.
    #[arg(long = "peer", value_name = "URL")]
    pub peers: Vec<String>,

    /// Send every stored metrics report to a Prometheus remote-write receiver at this URL
    /// (e.g. http://127.0.0.1:9090/api/v1/write; Mimir, Thanos, Cortex and VictoriaMetrics
    /// take it too); repeat for several. Each has a durable cursor: after an outage or a
    /// restart it sends what it missed, in order.
    #[arg(long = "remote-write", value_name = "URL")]
    pub remote_writes: Vec<String>,

    /// Credentials for the --remote-write receivers, in a file: `bearer TOKEN`, or `basic
    /// USER:PASSWORD` (never logged).
    #[arg(long, value_name = "FILE")]
    pub remote_write_auth_file: Option<PathBuf>,

    /// CA certificates (PEM) that https remote-write receivers are checked against, in
    /// addition to the system's.
    #[arg(long, value_name = "FILE")]
    pub remote_write_ca_file: Option<PathBuf>,

    /// The URL the HTTP API is reached at by others (a reverse proxy in front, say), for the
    /// links in forwarded alerts (generatorURL) [default: http://ADDR:PORT of --http].
    #[arg(long, value_name = "URL")]
    pub external_url: Option<String>,

    /// How long raw metrics reports are kept (e.g. 15d, 6w).
    #[arg(long, value_name = "DURATION", default_value = "15d")]
    pub retention_raw: String,

    /// How long per-minute rollups are kept.
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    pub retention_minute: String,

    /// How long per-hour rollups are kept.
    #[arg(long, value_name = "DURATION", default_value = "730d")]
    pub retention_hour: String,

    /// How long alerts are kept.
    #[arg(long, value_name = "DURATION", default_value = "365d")]
    pub retention_alerts: String,

    /// Cap on the store's size on disk (e.g. 50GB, 512MiB); past it the oldest partitions are
    /// deleted, raw reports first [default: no cap].
    #[arg(long, value_name = "SIZE")]
    pub max_store_size: Option<String>,
    /// The HTTP API's bearer token (a file holding 16+ characters): writes need it, and reads
    /// when they are not public [default on loopback: generated in DIR/api-token].
    #[arg(long, value_name = "FILE")]
    pub api_token_file: Option<PathBuf>,

    /// Whether reads of the HTTP API need no token [default: true on a loopback address only].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub public_read: Option<bool>,

    /// Serve the HTTP API without a token for writes, even on a non-loopback address (anyone
    /// who reaches it can then install tasks and forget agents).
    #[arg(long)]
    pub insecure_api: bool,

    /// Most agents registered at once; registrations of new names past it are refused.
    #[arg(long, value_name = "N", default_value_t = nms::server::DEFAULT_MAX_AGENTS)]
    pub max_agents: usize,

    /// Without keys: new agent names accepted per second (after a burst of 2000).
    #[arg(long, value_name = "N", default_value_t = nms::server::DEFAULT_NEW_AGENTS_PER_SECOND)]
    pub new_agents_per_second: u64,

    /// Forget agents that never sent anything after registering once they are silent this long.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub forget_unreported_after_s: u64,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nms agent --server 192.0.2.10\n  \
    nms agent --server monitor-a.example.net,monitor-b.example.net\n  \
    nms agent --server monitor.example.net:8081 --id r1 --key-file /etc/nms/psk")]
pub struct AgentArgs {
    /// Settings file (TOML) [default: ~/.config/nms/agent.toml, then /etc/nms/agent.toml, if
    /// present]. Flags given on the command line win over it.
    #[arg(long, value_name = "FILE")]
    pub settings: Option<PathBuf>,

    /// The server's NetTask address: HOST or HOST:PORT (default port 8081), or several,
    /// comma-separated (A,B): the agent registers with the first that answers and moves to
    /// the next when its server is lost, carrying its unacknowledged reports. Required here
    /// or in the settings file.
    #[arg(long, value_name = "HOST[:PORT][,...]")]
    pub server: Option<String>,

    /// With several servers: go back to the first one when it answers again (tried every
    /// 30 s) [default: stay with the server that serves the agent].
    #[arg(long)]
    pub prefer_first: bool,

    /// With several servers: try them in an order of this agent's own, from a hash of its
    /// name and each server's (rendezvous hashing), instead of as listed. Agents given the
    /// same list spread evenly over it, and each has its own second choice, so the agents of
    /// a lost server are shared among the others (docs/SCALING.md).
    #[arg(long)]
    pub spread: bool,

    /// This agent's name, matched against `device_id` in task files [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub id: Option<String>,

    /// Where unacknowledged alerts are kept [default: a per-id folder in the user's data
    /// directory, e.g. ~/.local/share/nms/agents/NAME].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Pre-shared key (hex text, 32+ digits), the same as the server's.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,

    #[command(flatten)]
    pub log: LogArgs,
}
