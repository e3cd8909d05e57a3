//! The `nms` binary: parses the command line, hands each subcommand to the library, and turns an
//! error into one line on standard error (`nms: ...`) and exit status 1.

mod cli;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use cli::{Cli, Command, CompletionsArgs, DecodeArgs};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("nms: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let color = cli.color.enabled(std::io::stdout().is_terminal());
    match cli.command {
        Command::Decode(args) => decode(args, color),
        Command::Completions(args) => completions(args),
    }
}

fn decode(args: DecodeArgs, color: bool) -> anyhow::Result<()> {
    let options = nms::decode::Options {
        input: match args.file {
            Some(path) => nms::decode::Input::File(path),
            None => nms::decode::Input::Stdin,
        },
        hex: args.hex,
        key_file: args.key_file,
        output: if args.json {
            nms::decode::Output::Json
        } else {
            nms::decode::Output::Text { color }
        },
    };
    nms::decode::run(
        &options,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
    )?;
    Ok(())
}

fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "nms", &mut out);
    match std::io::stdout().lock().write_all(&out) {
        // `nms completions bash | head` is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("cannot write the completion script"),
    }
}
