//! The flags of the operator's commands against a running server's HTTP API: `agents`,
//! `tasks`, `alerts` (list, ack, silence, expire), `query`, and `store` (check, export).

use super::TokenArgs;
use clap::{Args, Subcommand};
use std::path::PathBuf;

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
