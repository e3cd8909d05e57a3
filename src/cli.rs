//! The command line as clap sees it: raw flags and arguments, nothing else. Each subcommand's
//! arguments are turned into the library's validated options in `main.rs`, and the work is done
//! by the library (`nms::decode::run`, ...), so that this file stays a plain description of the
//! interface that `nms completions` can turn into shell completions.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// nms: network monitoring with a central server, agents, NetTask (UDP) and AlertFlow (TCP).
#[derive(Debug, Parser)]
#[command(name = "nms", version, about, propagate_version = true)]
pub struct Cli {
    /// When to colour the output: auto (a terminal, and NO_COLOR unset), always or never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,

    #[command(subcommand)]
    pub command: Command,
}

/// One variant per subcommand; each carries its own argument struct (parsed once, so the size
/// of the largest does not matter).
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the central server: NetTask (UDP), AlertFlow (TCP) and the HTTP API.
    Server(ServerArgs),
    /// Run an agent on a monitored host: `nms agent --server HOST[:PORT]` is all it needs.
    Agent(AgentArgs),
    /// Read one raw NetTask packet or AlertFlow frame, verify its tag and print every field.
    Decode(DecodeArgs),
    /// Print a shell completion script for nms to standard output.
    Completions(CompletionsArgs),
    /// Validate a task file and its rule files, then hand it to a running server to dispatch.
    SendTask(SendTaskArgs),
    /// Show a running server's agents, latest metrics and recent alerts, or explain a task file.
    Inspect(InspectArgs),
    /// Load-test a server with simulated agents and measure it against the loopback ceiling.
    Bench(BenchArgs),
    /// A running server's agents: `nms agents list`, `nms agents forget NAME`.
    Agents(AgentsArgs),
    /// A running server's tasks: `nms tasks list`, `nms tasks remove TASK_ID`.
    Tasks(TasksArgs),
    /// A running server's alerts: list, acknowledge, silence.
    Alerts(AlertsArgs),
    /// A time range of an agent's reports, or their statistics per step, from a running server.
    Query(QueryArgs),
    /// The server's store on disk: check its files, export a range.
    Store(StoreArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nms query --agent r1 --from 2026-12-01T00:00:00Z --to 2026-12-02T00:00:00Z\n  \
    nms query --agent r1 --from 1796083200000 --step 5m --fields rtt_avg_ms,loss_percent\n  \
    nms query --agent r1 --step 1h --from 2026-11-01T00:00:00Z --csv > r1-hours.csv")]
pub struct QueryArgs {
    /// The server's HTTP API.
    #[arg(long, value_name = "URL", env = "NMS_SERVER", default_value = nms::client::DEFAULT_SERVER)]
    pub server: String,

    #[command(flatten)]
    pub token: TokenArgs,

    /// Only this agent's reports.
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,

    /// Only this task's reports.
    #[arg(long, value_name = "TASK_ID")]
    pub task: Option<String>,

    /// Start of the range (Unix milliseconds or RFC 3339) [default: the newest reports; with
    /// --step, an hour before --to].
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,

    /// End of the range (exclusive) [default: now].
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,

    /// Statistics (count, min, max, mean; p10/p50/p90 of RTT) per step of this length (60s,
    /// 5m, 1h), from the coarsest stored tier that has the resolution.
    #[arg(long, value_name = "DURATION")]
    pub step: Option<String>,

    /// Only these fields (comma-separated: cpu_percent,rtt_avg_ms,...).
    #[arg(long, value_name = "LIST")]
    pub fields: Option<String>,

    /// At most this many reports (without --step) [default: 1000].
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Print the server's JSON answer.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,

    /// Print CSV.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub command: StoreCommand,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Verify every file of the store without changing any; report damage with its file,
    /// series and time (exit status 1 when there is any).
    Check(StoreCheckArgs),
    /// Every report of a time range, oldest first, as JSON lines or CSV.
    Export(StoreExportArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nms store check\n  \
    nms store check --data-dir /var/lib/nms --json")]
pub struct StoreCheckArgs {
    /// The server's data directory [default: the user's data directory, e.g.
    /// ~/.local/share/nms/server].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nms store export --from 2026-12-01T00:00:00Z --to 2026-12-02T00:00:00Z --csv > day.csv\n  \
    nms store export --agent r1 --from 1796083200000 > r1.jsonl\n  \
    nms store export --data-dir /var/lib/nms --from 2026-11-01T00:00:00Z --csv > nov.csv")]
pub struct StoreExportArgs {
    /// The server's HTTP API (the default, unless --data-dir is given).
    #[arg(long, value_name = "URL", env = "NMS_SERVER", default_value = nms::client::DEFAULT_SERVER)]
    pub server: String,

    #[command(flatten)]
    pub token: TokenArgs,

    /// Read the store in this data directory instead (no server may be using it).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Only this agent's reports.
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,

    /// Only this task's reports.
    #[arg(long, value_name = "TASK_ID")]
    pub task: Option<String>,

    /// Start of the range (Unix milliseconds or RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub from: String,

    /// End of the range (exclusive) [default: now].
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,

    /// CSV (a column per field, interfaces as field[interface]) instead of JSON lines.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nms agents list\n  \
    nms agents forget edge-router-1\n  \
    nms agents forget --server http://127.0.0.1:9470 --api-token-file /etc/nms/api-token r1")]
pub struct AgentsArgs {
    #[command(subcommand)]
    pub command: AgentsCommand,
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// List the agents: name, id, state, address, last seen, tasks.
    List(ApiArgs),
    /// Forget an agent: its registration and session go (its stored data stays, and the
    /// tasks that name it keep naming it), its firing alerts are resolved; a running agent of
    /// that name registers again, under a new id.
    Forget(ForgetArgs),
}

/// How a client reaches the HTTP API, and how it prints the answer.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The server's HTTP API.
    #[arg(long, value_name = "URL", env = "NMS_SERVER", default_value = nms::client::DEFAULT_SERVER)]
    pub server: String,

    #[command(flatten)]
    pub token: TokenArgs,

    /// Print the server's JSON answer instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The agent's name.
    #[arg(value_name = "NAME")]
    pub name: String,

    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nms tasks list\n  \
    nms tasks remove bench")]
pub struct TasksArgs {
    #[command(subcommand)]
    pub command: TasksCommand,
}

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// List the loaded tasks: id, number, where each came from, devices.
    List(ApiArgs),
    /// Remove a task posted with send-task: its agents are sent CANCEL, its saved copy is
    /// deleted, its firing alerts are resolved (a task from a --config file stays: edit the
    /// file and reload the server).
    Remove(RemoveTaskArgs),
}

#[derive(Debug, Args)]
pub struct RemoveTaskArgs {
    /// The task's id.
    #[arg(value_name = "TASK_ID")]
    pub task_id: String,

    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nms alerts list --firing\n  \
    nms alerts ack 3f2a9c1d00b4e871 --comment 'replacing the fan'\n  \
    nms alerts silence --agent edge-router-1 --duration 2h --comment 'firmware upgrade'\n  \
    nms alerts silence --kind packet_loss --task uplinks --from 2026-12-01T22:00:00Z --until 2026-12-02T02:00:00Z\n  \
    nms alerts silences\n  \
    nms alerts expire 9d0c4b2a11e7f305")]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub command: AlertsCommand,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// List stored alerts (newest last), or only those firing now with --firing.
    List(AlertsListArgs),
    /// Acknowledge an alert: who (default: $USER), when, a comment; shown on the status page
    /// and in /api/alerts. It still fires and is still forwarded.
    Ack(AckArgs),
    /// Set a silence (a maintenance window): alerts it matches leave the page's firing list,
    /// /metrics' firing gauges and Alertmanager until it ends.
    Silence(SilenceArgs),
    /// List the silences (in force, to come, and those ended in the last week).
    Silences(ApiArgs),
    /// End a silence now.
    Expire(ExpireArgs),
}

#[derive(Debug, Args)]
pub struct AlertsListArgs {
    /// Only the alerts firing now (silenced ones included, and marked).
    #[arg(long)]
    pub firing: bool,

    /// Only this agent's alerts.
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,

    /// Most alerts listed.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,

    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct AckArgs {
    /// The alert's id (16 hex digits, as `nms alerts list` shows it).
    #[arg(value_name = "ALERT_ID")]
    pub alert_id: String,

    /// Who acknowledges it [default: $USER].
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,

    /// Why, or what is being done.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub comment: String,

    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct SilenceArgs {
    /// Silence this agent's alerts (`*` matches any text: `edge-*`).
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,

    /// Silence this task's alerts (`*` allowed).
    #[arg(long, value_name = "TASK_ID")]
    pub task: Option<String>,

    /// Silence alerts of this kind (cpu, ram, packet_loss, agent_down, ...).
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,

    /// When it starts (RFC 3339 or Unix ms) [default: now].
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,

    /// When it ends (RFC 3339 or Unix ms).
    #[arg(
        long,
        value_name = "TIME",
        conflicts_with = "duration",
        required_unless_present = "duration"
    )]
    pub until: Option<String>,

    /// How long it lasts from its start (30m, 2h, 1d).
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,

    /// Why (shown on the status page).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub comment: String,

    /// Who sets it [default: $USER].
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,

    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct ExpireArgs {
    /// The silence's id (as `nms alerts silences` shows it).
    #[arg(value_name = "SILENCE_ID")]
    pub id: String,

    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nms decode < tests/fixtures/packets/ack.bin\n  \
    nms decode --json --file tests/fixtures/packets/metrics_typical.bin\n  \
    xxd -p tests/fixtures/packets/ack.bin | nms decode --hex\n  \
    nms decode --key-file tests/fixtures/packets/test.key --instance 0x5f3a91c20be47d16 --file tests/fixtures/packets/keyed_ack.bin")]
pub struct DecodeArgs {
    /// Read the packet from this file instead of standard input.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,

    /// The input is hex text (whitespace and 0x prefixes are ignored), not raw bytes.
    #[arg(long)]
    pub hex: bool,

    /// Verify keyed (HMAC) tags with the pre-shared key in this file (hex text, 32+ digits).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,

    /// The instance (hex, as `nms decode` prints it) of the REGISTRATION whose session a keyed
    /// packet or frame belongs to: keyed tags are bound to it.
    #[arg(long, value_name = "HEX", value_parser = nms::decode::parse_instance)]
    pub instance: Option<u64>,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

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

/// How a long-running command logs.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log more: debug lines too (the server: every stored metrics report).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log less: only warnings and errors (-qq: only errors).
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,

    /// How log lines are written: text (time, level, kind, message) or json (one object per
    /// line). Under systemd, lines carry the journal's priority prefix (<3> to <7>) either way.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nms bench --agents 200 --seconds 10 --json\n  \
    nms bench --agents 10000 --rate 1 --seconds 20\n  \
    nms bench --agents 50 --alerts --work-dir /dev/shm\n  \
    nms bench --server 192.0.2.10:8081 --http 192.0.2.10:9470 --agents 1000 --rate 1\n  \
    nms bench --store --agents 80 --days 15 --rate 1 --json")]
pub struct BenchArgs {
    /// Simulated agents (distinct ids), each registering and receiving a task.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub agents: usize,

    /// Metrics reports per second per agent [default: as fast as acknowledgements allow].
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// Seconds to measure, after every agent registered.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    pub seconds: f64,

    /// A running server's NetTask address instead of a server the bench starts itself.
    #[arg(long, value_name = "HOST:PORT")]
    pub server: Option<String>,

    /// That server's HTTP API [default: the --server host, port 9470].
    #[arg(long, value_name = "HOST:PORT", requires = "server")]
    pub http: Option<String>,

    /// The started server also sends every report to this remote-write receiver (e.g. a
    /// Prometheus on loopback started with --web.enable-remote-write-receiver); the run then
    /// reports the destination's lag and backlog while measuring, and how long it took to
    /// send the rest afterwards.
    #[arg(long, value_name = "URL")]
    pub remote_write: Option<String>,

    /// Also raise alerts over AlertFlow and measure their latency.
    #[arg(long)]
    pub alerts: bool,

    /// Alerts per second, all agents together, with --alerts.
    #[arg(long, value_name = "N", default_value_t = 20.0)]
    pub alert_rate: f64,

    /// Threads (one UDP socket each) the simulated agents run on.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,

    /// Reports each agent keeps unacknowledged when no --rate is given.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub window: usize,

    /// Seconds the loopback ceiling is measured.
    #[arg(long, value_name = "S", default_value_t = 3.0)]
    pub ceiling_seconds: f64,

    /// Pre-shared key (hex text, 32+ digits) for the agents and the started server.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,

    /// Folder for the started server's temporary data directory [default: the system's
    /// temporary folder]; a tmpfs such as /dev/shm leaves the disk's fsync out of the figures.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    /// Keep the started server's data directory.
    #[arg(long)]
    pub keep: bool,

    /// Kill the server the bench starts with SIGKILL every SECONDS while measuring, and start
    /// it again: nothing acknowledged may be lost or stored twice.
    #[arg(long, value_name = "SECONDS")]
    pub kill_every: Option<f64>,

    #[command(flatten)]
    pub token: TokenArgs,

    /// Measure the store instead: generate --days of history of --agents at --rate reports a
    /// second (plus one agent with 30 days), then time a server's start and range queries.
    #[arg(long)]
    pub store: bool,

    /// Days of history the store bench generates.
    #[arg(long, value_name = "DAYS", default_value_t = 15.0)]
    pub days: f64,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nms send-task configs/default.json\n  \
    nms send-task --server http://127.0.0.1:9470 --json configs/assignment-example.json")]
pub struct SendTaskArgs {
    /// The task file (either dialect; see configs/README.md).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The server's HTTP API.
    #[arg(long, value_name = "URL", env = "NMS_SERVER", default_value = nms::client::DEFAULT_SERVER)]
    pub server: String,

    #[command(flatten)]
    pub token: TokenArgs,

    /// Print the server's JSON answer instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Where a client finds the HTTP API's token.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The API token file [default: $NMS_API_TOKEN (the token itself), else `api-token-file` of
    /// the server settings file, else the token a local server generated in its data folder].
    #[arg(long, value_name = "FILE")]
    pub api_token_file: Option<PathBuf>,

    /// The server settings file to take `api-token-file` (or `data-dir`) from [default:
    /// ~/.config/nms/server.toml, then /etc/nms/server.toml].
    #[arg(long, value_name = "FILE")]
    pub settings: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nms inspect\n  \
    nms inspect --watch\n  \
    nms inspect --json --server http://127.0.0.1:9470\n  \
    nms inspect --task configs/default.json")]
pub struct InspectArgs {
    /// The server's HTTP API.
    #[arg(long, value_name = "URL", env = "NMS_SERVER", default_value = nms::client::DEFAULT_SERVER)]
    pub server: String,

    #[command(flatten)]
    pub token: TokenArgs,

    /// Print one JSON object instead of tables (one line per refresh with --watch).
    #[arg(long)]
    pub json: bool,

    /// Redraw every 2 seconds until interrupted (Ctrl-C).
    #[arg(long, conflicts_with = "task")]
    pub watch: bool,

    /// Explain this task file instead (no server needed): its validation, measurements,
    /// thresholds and rules.
    #[arg(long, value_name = "FILE")]
    pub task: Option<PathBuf>,

    /// With --task: also print the rhai each threshold compiles to.
    #[arg(long, requires = "task")]
    pub rhai: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    /// Whether output to a stream should be coloured. `Auto` colours a terminal unless the
    /// `NO_COLOR` environment variable is set to a non-empty value (<https://no-color.org>).
    pub fn enabled(self, stream_is_terminal: bool) -> bool {
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn decode_flags_parse() {
        let cli = Cli::parse_from(["nms", "decode", "--hex", "--json", "--key-file", "k"]);
        let Command::Decode(args) = cli.command else {
            panic!("expected decode, got {:?}", cli.command);
        };
        assert!(args.hex && args.json);
        assert_eq!(args.key_file, Some(PathBuf::from("k")));
        assert_eq!(cli.color, ColorWhen::Auto);
    }

    #[test]
    fn send_task_and_inspect_flags_parse() {
        let cli = Cli::parse_from([
            "nms",
            "send-task",
            "t.json",
            "--server",
            "http://h:1",
            "--json",
        ]);
        let Command::SendTask(args) = cli.command else {
            panic!("expected send-task, got {:?}", cli.command);
        };
        assert_eq!(
            (args.file, args.server, args.json),
            ("t.json".into(), "http://h:1".into(), true)
        );
        let cli = Cli::parse_from(["nms", "inspect", "--task", "t.json"]);
        let Command::Inspect(args) = cli.command else {
            panic!("expected inspect, got {:?}", cli.command);
        };
        assert_eq!(args.task, Some(PathBuf::from("t.json")));
        assert!(Cli::try_parse_from(["nms", "inspect", "--task", "t.json", "--watch"]).is_err());
    }
}
