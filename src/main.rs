//! The `nms` binary: parses the command line, hands each subcommand to the library, and turns an
//! error into one line on standard error (`nms: ...`) and exit status 1. The raw command line is
//! `cli/`, the validated options built from it and the settings files `options/`, and what each
//! subcommand does with them `commands/`.

mod cli;
mod commands;
mod options;

/// mimalloc instead of the system allocator: the server allocates and frees small records at
/// every report, and glibc's per-thread arenas kept much of that memory (and time) to
/// themselves (BENCHMARKS.md). Built with `no_thp`: with transparent huge pages allowed, each
/// of its eagerly committed arenas was backed by 2 MiB pages at the first touch (an agent's
/// anonymous memory 14.6 MB instead of 3.6 MB).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{ArgMatches, CommandFactory, FromArgMatches};
use cli::{Cli, ColorWhen, Command, LogArgs, LogFormat};
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Started by an agent to run ping or iperf3 so that they die with it.
    let mut args = std::env::args_os();
    if nms::probes::guard::is_guard(args.next().as_deref()) {
        return nms::probes::guard::run(args);
    }
    nms::probes::guard::make_available();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli, &matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("nms: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, matches: &ArgMatches) -> anyhow::Result<()> {
    let color = cli.color.enabled(std::io::stdout().is_terminal());
    init_log(
        match &cli.command {
            Command::Server(a) => Some(&a.log),
            Command::Agent(a) => Some(&a.log),
            Command::Bench(a) => Some(&a.log),
            _ => None,
        },
        cli.color,
    );
    match cli.command {
        Command::Server(args) => commands::server::run(args, matches.subcommand_matches("server")),
        Command::Agent(args) => commands::agent::run(args),
        Command::Decode(args) => commands::tools::decode(args, color),
        Command::Completions(args) => commands::tools::completions(args),
        Command::SendTask(args) => commands::tools::send_task(args, color),
        Command::Inspect(args) => commands::tools::inspect(args, color),
        Command::Bench(args) => commands::tools::bench(args),
        Command::Agents(args) => commands::operator::agents(args),
        Command::Tasks(args) => commands::operator::tasks(args),
        Command::Alerts(args) => commands::operator::alerts(args),
        Command::Query(args) => commands::history::query(args),
        Command::Store(args) => commands::history::store(args),
    }
}

/// Sets how log lines look, from `-v`/`-q`, `--log-format` and `--color`.
fn init_log(args: Option<&LogArgs>, color: ColorWhen) {
    use nms::log::{Color, Format, LogOptions};
    let (verbose, quiet, format) = args.map_or((0, 0, LogFormat::Text), |a| {
        (a.verbose, a.quiet, a.log_format)
    });
    nms::log::init(LogOptions {
        min_level: LogOptions::level_for(verbose, quiet),
        format: match format {
            LogFormat::Text => Format::Text,
            LogFormat::Json => Format::Json,
        },
        color: match color {
            ColorWhen::Auto => Color::Auto,
            ColorWhen::Always => Color::Always,
            ColorWhen::Never => Color::Never,
        },
    });
}
