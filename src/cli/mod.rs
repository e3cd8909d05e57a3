//! The command line as clap sees it: raw flags and arguments, nothing else. Each subcommand's
//! arguments are turned into the library's validated options in `options/`, and the work is done
//! by the library (`nms::decode::run`, ...), so that this folder stays a plain description of
//! the interface that `nms completions` can turn into shell completions.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

mod daemons;
mod operate;
mod tools;

pub use daemons::{AgentArgs, ServerArgs};
pub use operate::{
    AgentsArgs, AgentsCommand, AlertsArgs, AlertsCommand, ApiArgs, QueryArgs, StoreArgs,
    StoreCheckArgs, StoreCommand, StoreExportArgs, TasksArgs, TasksCommand,
};
pub use tools::{BenchArgs, CompletionsArgs, DecodeArgs, InspectArgs, SendTaskArgs};

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
mod tests;
