//! The flags of the commands that run once and print: `decode`, `send-task`, `inspect`,
//! `bench` and `completions`.

use super::{ApiArgs, LogArgs, TokenArgs};
use clap::Args;
use std::path::PathBuf;

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

    #[command(flatten)]
    pub api: ApiArgs,
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
