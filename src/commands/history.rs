//! Reading history: `nms query` over the HTTP API, and `nms store check` / `nms store export`
//! over a data directory (or a server).

use crate::cli::{QueryArgs, StoreArgs, StoreCheckArgs, StoreCommand, StoreExportArgs};
use crate::options::client_token;
use anyhow::Context;
use std::io::Write;

pub fn query(args: QueryArgs) -> anyhow::Result<()> {
    let format = if args.json {
        nms::history::Format::Json
    } else if args.csv {
        nms::history::Format::Csv
    } else {
        nms::history::Format::Table
    };
    let options = nms::history::QueryOptions {
        server: args.server,
        token: client_token(&args.token)?,
        agent: args.agent,
        task: args.task,
        from: args.from,
        to: args.to,
        step: args.step,
        fields: args.fields,
        limit: args.limit,
    };
    smol::block_on(nms::history::query(
        &options,
        format,
        &mut std::io::stdout().lock(),
    ))?;
    Ok(())
}

/// A time option: Unix milliseconds or RFC 3339.
fn time_arg(flag: &str, text: &str) -> anyhow::Result<u64> {
    nms::log::parse_time(text).with_context(|| {
        format!(
            "{flag} {text:?}: not a time (Unix milliseconds or RFC 3339, e.g. 2026-12-01T00:00:00Z)"
        )
    })
}

pub fn store(args: StoreArgs) -> anyhow::Result<()> {
    match args.command {
        StoreCommand::Check(check) => store_check(check),
        StoreCommand::Export(export) => store_export(export),
    }
}

/// `nms store check`: reads every file of the store and reports what it holds and any damage.
fn store_check(check: StoreCheckArgs) -> anyhow::Result<()> {
    let data_dir = match check.data_dir {
        Some(d) => d,
        None => nms::config::default_data_dir("server")?,
    };
    let root = data_dir.join("store");
    let report = nms::store::check::check(&root)
        .with_context(|| format!("cannot read {}", root.display()))?;
    let mut out = std::io::stdout().lock();
    if check.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{}: {} partition files, {} chunks holding {} reports, {} rollup blocks, {} alerts, {} log segments ({} records)",
            root.display(),
            report.partitions,
            report.chunks,
            report.reports,
            report.blocks,
            report.alerts,
            report.wal_segments,
            report.wal_records
        )?;
        for p in &report.problems {
            writeln!(out, "damaged: {p}")?;
        }
        if report.problems.is_empty() {
            writeln!(out, "no damage found")?;
        }
    }
    if !report.problems.is_empty() {
        anyhow::bail!(
            "{} problem(s) found in {}",
            report.problems.len(),
            root.display()
        );
    }
    Ok(())
}

/// `nms store export`: the reports of a time range as JSON lines or CSV.
fn store_export(export: StoreExportArgs) -> anyhow::Result<()> {
    let from_ms = time_arg("--from", &export.from)?;
    let to_ms = match &export.to {
        Some(t) => time_arg("--to", t)?,
        None => nms::log::now_ms() + 1,
    };
    if from_ms >= to_ms {
        anyhow::bail!("--from must be before --to");
    }
    let source = match export.data_dir {
        Some(dir) => nms::history::Source::DataDir(dir),
        None => nms::history::Source::Server {
            base: export.server,
            token: client_token(&export.token)?,
        },
    };
    let options = nms::history::ExportOptions {
        source,
        agent: export.agent,
        task: export.task,
        from_ms,
        to_ms,
    };
    let format = if export.csv {
        nms::history::Format::Csv
    } else {
        nms::history::Format::JsonLines
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let n = smol::block_on(nms::history::export(&options, format, &mut out))?;
    out.flush()?;
    eprintln!("nms: {n} reports exported");
    Ok(())
}
