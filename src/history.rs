//! History for operators: `nms query` (a time range of one agent's reports or its statistics
//! per step, as a table, JSON or CSV), `nms store export` (every report of a range as JSON
//! lines or CSV, for pandas and spreadsheets) and `nms store check` (the store's files verified
//! without changing them). Query and export ask a running server's HTTP API; export and check
//! also work on a data directory while no server uses it.

use crate::client::{self, ClientError};
use crate::store::{RawQuery, Store, StoreError, StoreOptions};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the store in {path}: {source}")]
    Store { path: PathBuf, source: StoreError },
    #[error("{0}")]
    Answer(String),
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
    JsonLines,
}

/// What `nms query` asks.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    pub server: String,
    pub token: Option<String>,
    pub agent: Option<String>,
    pub task: Option<String>,
    /// Times as the API takes them: Unix ms or RFC 3339.
    pub from: Option<String>,
    pub to: Option<String>,
    /// A step such as `60s` or `5m`: statistics per step instead of raw reports.
    pub step: Option<String>,
    pub fields: Option<String>,
    pub limit: Option<usize>,
}

fn query_string(pairs: &[(&str, Option<String>)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

/// A report's fields as (column, value) pairs: the top-level numbers, `transport`, and each
/// interface's numbers as `field[interface]`.
fn flatten(record: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let Some(map) = record.as_object() else {
        return out;
    };
    for (k, v) in map {
        match (k.as_str(), v) {
            ("agent" | "task" | "target" | "time" | "time_ms", _) => {}
            ("interfaces", Value::Object(ifaces)) => {
                for (name, fields) in ifaces {
                    if let Some(fields) = fields.as_object() {
                        for (f, x) in fields {
                            out.push((format!("{f}[{name}]"), x.clone()));
                        }
                    }
                }
            }
            _ => out.push((k.clone(), v.clone())),
        }
    }
    out
}

/// A CSV cell: quoted when it holds a comma, a quote or a line break.
fn csv_cell(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

const FIXED: [&str; 5] = ["time", "time_ms", "agent", "task", "target"];

/// Writes records as CSV with the given field columns after the fixed ones.
fn write_csv(
    out: &mut dyn Write,
    records: &[Value],
    columns: &[String],
    header: bool,
) -> std::io::Result<()> {
    if header {
        let mut names: Vec<String> = FIXED.iter().map(|s| s.to_string()).collect();
        names.extend(columns.iter().cloned());
        let line: Vec<String> = names.iter().map(|n| csv_cell(n)).collect();
        writeln!(out, "{}", line.join(","))?;
    }
    for r in records {
        let flat: BTreeMap<String, Value> = flatten(r).into_iter().collect();
        let mut cells: Vec<String> = FIXED.iter().map(|k| csv_cell(&text(&r[*k]))).collect();
        cells.extend(
            columns
                .iter()
                .map(|c| csv_cell(&flat.get(c).map(text).unwrap_or_default())),
        );
        writeln!(out, "{}", cells.join(","))?;
    }
    Ok(())
}

/// The field columns of some records, in a stable order.
fn columns_of<'a>(records: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    let mut set = std::collections::BTreeSet::new();
    for r in records {
        for (k, _) in flatten(r) {
            set.insert(k);
        }
    }
    set.into_iter().collect()
}

/// A table of raw records: time, agent, task, target and the fields.
fn write_table(out: &mut dyn Write, records: &[Value]) -> std::io::Result<()> {
    let columns = columns_of(records);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header: Vec<String> = ["time", "agent", "task", "target"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    header.extend(columns.iter().cloned());
    rows.push(header);
    for r in records {
        let flat: BTreeMap<String, Value> = flatten(r).into_iter().collect();
        let mut row: Vec<String> = ["time", "agent", "task", "target"]
            .iter()
            .map(|k| text(&r[*k]))
            .collect();
        row.extend(
            columns
                .iter()
                .map(|c| flat.get(c).map(text).unwrap_or_default()),
        );
        rows.push(row);
    }
    write_aligned(out, &rows)
}

fn write_aligned(out: &mut dyn Write, rows: &[Vec<String>]) -> std::io::Result<()> {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}

/// Steps as rows: one per step and series, a column per field (its mean, with min and max).
fn steps_rows(answer: &Value, csv: bool) -> Vec<Vec<String>> {
    let mut columns = std::collections::BTreeSet::new();
    let series = answer["series"].as_array().cloned().unwrap_or_default();
    for s in &series {
        for step in s["steps"].as_array().into_iter().flatten() {
            for (k, _) in flatten(step) {
                if k != "transport" {
                    columns.insert(k);
                }
            }
        }
    }
    let columns: Vec<String> = columns.into_iter().collect();
    let mut header: Vec<String> = ["time", "agent", "task", "target", "tier"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for c in &columns {
        if csv {
            for stat in ["count", "min", "max", "mean", "p10", "p50", "p90"] {
                header.push(format!("{c}.{stat}"));
            }
        } else {
            header.push(format!("{c} mean (min..max)"));
        }
    }
    let mut rows = vec![header];
    for s in &series {
        for step in s["steps"].as_array().into_iter().flatten() {
            let flat: BTreeMap<String, Value> = flatten(step).into_iter().collect();
            let mut row = vec![
                text(&step["time"]),
                text(&s["agent"]),
                text(&s["task"]),
                text(&s["target"]),
                text(&s["tier"]),
            ];
            for c in &columns {
                let v = flat.get(c).cloned().unwrap_or(Value::Null);
                if csv {
                    for stat in ["count", "min", "max", "mean", "p10", "p50", "p90"] {
                        row.push(text(&v[stat]));
                    }
                } else if v.is_null() {
                    row.push(String::new());
                } else {
                    let n = |k: &str| v[k].as_f64().map_or(String::new(), |x| format!("{x:.3}"));
                    row.push(format!("{} ({}..{})", n("mean"), n("min"), n("max")));
                }
            }
            rows.push(row);
        }
    }
    rows
}

/// `nms query`.
pub async fn query(
    options: &QueryOptions,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), HistoryError> {
    let q = query_string(&[
        ("agent", options.agent.clone()),
        ("task", options.task.clone()),
        ("from", options.from.clone()),
        ("to", options.to.clone()),
        ("step", options.step.clone()),
        ("fields", options.fields.clone()),
        ("limit", options.limit.map(|l| l.to_string())),
    ]);
    let path = format!("/api/metrics?{q}");
    let answer = client::get_json_as(&options.server, options.token.as_deref(), &path).await?;
    if format == Format::Json {
        serde_json::to_writer_pretty(&mut *out, &answer)
            .map_err(|e| HistoryError::Output(e.into()))?;
        writeln!(out)?;
        return Ok(());
    }
    if options.step.is_some() {
        let rows = steps_rows(&answer, format == Format::Csv);
        match format {
            Format::Csv => {
                for r in rows {
                    let cells: Vec<String> = r.iter().map(|c| csv_cell(c)).collect();
                    writeln!(out, "{}", cells.join(","))?;
                }
            }
            _ => write_aligned(out, &rows)?,
        }
        return Ok(());
    }
    let records = answer
        .as_array()
        .cloned()
        .ok_or_else(|| HistoryError::Answer(format!("{path}: the answer is not a list")))?;
    match format {
        Format::Csv => write_csv(out, &records, &columns_of(&records), true)?,
        Format::JsonLines => {
            for r in &records {
                writeln!(out, "{r}")?;
            }
        }
        _ => {
            if records.is_empty() {
                writeln!(out, "no reports in that range")?;
            } else {
                write_table(out, &records)?;
            }
        }
    }
    Ok(())
}

/// Where an export reads from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A running server's HTTP API.
    Server { base: String, token: Option<String> },
    /// A data directory no server is using.
    DataDir(PathBuf),
}

/// What `nms store export` writes.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub source: Source,
    pub agent: Option<String>,
    pub task: Option<String>,
    /// Unix ms (the CLI parses RFC 3339 too).
    pub from_ms: u64,
    pub to_ms: u64,
}

/// Reports per page while exporting.
const PAGE: usize = 10_000;

/// Reads the range page by page, handing each page to `each`.
async fn pages(
    options: &ExportOptions,
    mut each: impl FnMut(Vec<Value>) -> Result<(), HistoryError>,
) -> Result<u64, HistoryError> {
    let mut after: Option<String> = None;
    let mut total = 0u64;
    let store = match &options.source {
        Source::DataDir(dir) => Some(
            Store::open(
                dir,
                StoreOptions {
                    background: false,
                    ..StoreOptions::default()
                },
            )
            .map_err(|source| HistoryError::Store {
                path: dir.clone(),
                source,
            })?,
        ),
        Source::Server { .. } => None,
    };
    loop {
        let (records, next) = match (&options.source, &store) {
            (Source::Server { base, token }, _) => {
                let q = query_string(&[
                    ("agent", options.agent.clone()),
                    ("task", options.task.clone()),
                    ("from", Some(options.from_ms.to_string())),
                    ("to", Some(options.to_ms.to_string())),
                    ("limit", Some(PAGE.to_string())),
                    ("after", after.clone()),
                ]);
                let (answer, next) =
                    client::get_json_page(base, token.as_deref(), &format!("/api/metrics?{q}"))
                        .await?;
                let records = answer.as_array().cloned().unwrap_or_default();
                (records, next)
            }
            (Source::DataDir(dir), Some(store)) => {
                let page = store
                    .metrics(&RawQuery {
                        agent: options.agent.clone(),
                        task: options.task.clone(),
                        from_ms: Some(options.from_ms),
                        to_ms: Some(options.to_ms),
                        limit: PAGE,
                        after: after.clone(),
                    })
                    .map_err(|source| HistoryError::Store {
                        path: dir.clone(),
                        source,
                    })?;
                (
                    page.records.iter().map(|r| r.to_json()).collect(),
                    page.next,
                )
            }
            (Source::DataDir(_), None) => unreachable!("the store is opened above"),
        };
        total += records.len() as u64;
        each(records)?;
        match next {
            Some(n) => after = Some(n),
            None => return Ok(total),
        }
    }
}

/// `nms store export`: every report in the range, oldest first; returns how many.
pub async fn export(
    options: &ExportOptions,
    format: Format,
    out: &mut dyn Write,
) -> Result<u64, HistoryError> {
    match format {
        Format::Csv => {
            // The columns are every field of the range: read once for them, once to write.
            let mut columns = std::collections::BTreeSet::new();
            pages(options, |records| {
                for r in &records {
                    for (k, _) in flatten(r) {
                        columns.insert(k);
                    }
                }
                Ok(())
            })
            .await?;
            let columns: Vec<String> = columns.into_iter().collect();
            let mut first = true;
            pages(options, |records| {
                write_csv(out, &records, &columns, first)?;
                first = false;
                Ok(())
            })
            .await
        }
        _ => {
            pages(options, |records| {
                for r in &records {
                    writeln!(out, "{r}")?;
                }
                Ok(())
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_flatten_into_columns_and_cells_are_quoted() {
        let r = json!({"agent": "r1", "task": "t", "time": "x", "time_ms": 5, "cpu_percent": 2.5,
            "interfaces": {"eth0": {"bytes_per_sec": 10.0, "state": "up"}}});
        let cols = columns_of([&r]);
        assert_eq!(
            cols,
            vec!["bytes_per_sec[eth0]", "cpu_percent", "state[eth0]"]
        );
        let mut out = Vec::new();
        write_csv(&mut out, &[r], &cols, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "time,time_ms,agent,task,target,bytes_per_sec[eth0],cpu_percent,state[eth0]\nx,5,r1,t,,10.0,2.5,up\n"
        );
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
