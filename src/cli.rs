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

/// One variant per subcommand; each carries its own argument struct.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read one raw NetTask packet or AlertFlow frame, verify its tag and print every field.
    Decode(DecodeArgs),
    /// Print a shell completion script for nms to standard output.
    Completions(CompletionsArgs),
    /// Validate a task file and its rule files, then hand it to a running server to dispatch.
    SendTask(SendTaskArgs),
    /// Show a running server's agents, latest metrics and recent alerts, or explain a task file.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nms decode < tests/fixtures/packets/ack.bin\n  \
    nms decode --json --file tests/fixtures/packets/metrics_typical.bin\n  \
    xxd -p tests/fixtures/packets/ack.bin | nms decode --hex\n  \
    nms decode --key-file tests/fixtures/packets/test.key --file tests/fixtures/packets/keyed_ack.bin")]
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

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
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

    /// Print the server's JSON answer instead of text.
    #[arg(long)]
    pub json: bool,
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

    /// Print one JSON object instead of tables (one line per refresh with --watch).
    #[arg(long)]
    pub json: bool,

    /// Redraw every 2 seconds until interrupted (Ctrl-C).
    #[arg(long, conflicts_with = "task")]
    pub watch: bool,

    /// Explain this task file instead (no server needed): its validation, measurements,
    /// thresholds, and the rhai each rule compiles to.
    #[arg(long, value_name = "FILE")]
    pub task: Option<PathBuf>,
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
