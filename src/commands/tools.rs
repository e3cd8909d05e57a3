//! The commands that run once and print: `send-task`, `inspect`, `decode`, `bench` and
//! `completions`.

use crate::cli::{BenchArgs, Cli, CompletionsArgs, DecodeArgs, InspectArgs, SendTaskArgs};
use crate::options::client_token;
use anyhow::Context;
use clap::CommandFactory;
use std::io::{IsTerminal, Write};

pub fn send_task(args: SendTaskArgs, color: bool) -> anyhow::Result<()> {
    let options = nms::send_task::Options {
        file: args.file,
        token: client_token(&args.api.token)?,
        server: args.api.server,
        output: nms::send_task::Output::chosen(args.api.json, color),
    };
    smol::block_on(nms::send_task::run(&options, &mut std::io::stdout().lock()))?;
    Ok(())
}

pub fn inspect(args: InspectArgs, color: bool) -> anyhow::Result<()> {
    if let Some(path) = args.task {
        let check = nms::inspect::task_file::check_file(&path);
        let shown = match &check.result {
            _ if args.json => format!("{:#}\n", check.to_json()),
            // An invalid file is the one error line on standard error.
            Err(_) => String::new(),
            Ok(_) => {
                let mut text = nms::inspect::task_file::render(&check, color, args.rhai);
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                text
            }
        };
        std::io::stdout()
            .lock()
            .write_all(shown.as_bytes())
            .context("cannot write the output")?;
        return match check.problems().first() {
            Some(problem) => Err(anyhow::anyhow!("{problem}")),
            None => Ok(()),
        };
    }
    let options = nms::inspect::Options {
        token: client_token(&args.token)?,
        server: args.server,
        output: nms::inspect::Output::chosen(args.json, color),
        watch: args.watch,
        clear_screen: std::io::stdout().is_terminal(),
    };
    smol::block_on(nms::inspect::run(&options, &mut std::io::stdout().lock()))?;
    Ok(())
}

pub fn decode(args: DecodeArgs, color: bool) -> anyhow::Result<()> {
    let options = nms::decode::Options {
        input: match args.file {
            Some(path) => nms::decode::Input::File(path),
            None => nms::decode::Input::Stdin,
        },
        hex: args.hex,
        key_file: args.key_file,
        instance: args.instance,
        output: nms::decode::Output::chosen(args.json, color),
    };
    nms::decode::run(
        &options,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
    )?;
    Ok(())
}

/// `nms bench`: the load test (or with `--store`, the store's), printed as text or JSON.
pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    if args.store {
        let report = nms::bench::store::run(&crate::options::store_bench_options(&args)?)?;
        return print_report(args.json, &report, || report.to_text());
    }
    let report = nms::bench::run(&crate::options::bench_options(&args)?)?;
    print_report(args.json, &report, || report.to_text())
}

/// A benchmark's report on standard output: one JSON line, or its text.
fn print_report(
    json: bool,
    report: &impl serde::Serialize,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, report)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", text())?;
    }
    Ok(())
}

pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "nms", &mut out);
    match std::io::stdout().lock().write_all(&out) {
        // `nms completions bash | head` is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("cannot write the completion script"),
    }
}
