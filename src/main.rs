//! The `nms` binary: parses the command line, hands each subcommand to the library, and turns an
//! error into one line on standard error (`nms: ...`) and exit status 1.

mod cli;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use cli::{
    AgentArgs, Cli, Command, CompletionsArgs, DecodeArgs, InspectArgs, SendTaskArgs, ServerArgs,
};
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
        Command::Server(args) => server(args),
        Command::Agent(args) => agent(args),
        Command::Decode(args) => decode(args, color),
        Command::Completions(args) => completions(args),
        Command::SendTask(args) => send_task(args, color),
        Command::Inspect(args) => inspect(args, color),
    }
}

fn server(args: ServerArgs) -> anyhow::Result<()> {
    let keys = nms::config::server_keys(args.key_file.as_deref(), args.keys_file.as_deref())?;
    let options = nms::server::ServerOptions {
        task_files: args.configs,
        listen: args.listen,
        nettask_port: args.nettask_port,
        alertflow_port: args.alertflow_port,
        http: args.http,
        data_dir: match args.data_dir {
            Some(d) => d,
            None => nms::config::default_data_dir("server")?,
        },
        keys,
        heartbeat: std::time::Duration::from_millis(args.heartbeat_ms.clamp(100, 3_600_000)),
        missed_heartbeats: args.missed_heartbeats.max(1),
        initial_timeout: std::time::Duration::from_millis(args.timeout_ms.clamp(10, 60_000)),
        max_retransmissions: args.max_retransmissions,
        local_agent: args.local_agent,
        verbose: args.verbose,
        alertmanager: args.alertmanager,
    };
    smol::block_on(nms::server::run(options))
}

fn agent(args: AgentArgs) -> anyhow::Result<()> {
    let id = match args.id {
        Some(id) => id,
        None => nms::config::host_name()?,
    };
    nms::config::check_agent_name(&id)?;
    let data_dir = match args.data_dir {
        Some(d) => d,
        None => nms::config::default_data_dir("agents")?.join(&id),
    };
    let key = args
        .key_file
        .as_deref()
        .map(nms::config::read_key)
        .transpose()?;
    let options = nms::agent::AgentOptions {
        server: args.server,
        id,
        data_dir,
        key,
    };
    smol::block_on(nms::agent::run(options))
}

fn send_task(args: SendTaskArgs, color: bool) -> anyhow::Result<()> {
    let options = nms::send_task::Options {
        file: args.file,
        server: args.server,
        output: if args.json {
            nms::send_task::Output::Json
        } else {
            nms::send_task::Output::Text { color }
        },
    };
    smol::block_on(nms::send_task::run(&options, &mut std::io::stdout().lock()))?;
    Ok(())
}

fn inspect(args: InspectArgs, color: bool) -> anyhow::Result<()> {
    if let Some(path) = args.task {
        let check = nms::inspect::task_file::check_file(&path);
        let shown = match &check.result {
            _ if args.json => format!("{:#}\n", check.to_json()),
            // An invalid file is the one error line on standard error.
            Err(_) => String::new(),
            Ok(_) => nms::inspect::task_file::render(&check, color),
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
        server: args.server,
        output: if args.json {
            nms::inspect::Output::Json
        } else {
            nms::inspect::Output::Text { color }
        },
        watch: args.watch,
    };
    smol::block_on(nms::inspect::run(&options, &mut std::io::stdout().lock()))?;
    Ok(())
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
