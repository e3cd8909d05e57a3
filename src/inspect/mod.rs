//! `nms inspect`: what a running server knows, as aligned tables (agents, the latest metrics of
//! each agent with sparklines of recent RTT and CPU, recent alerts) or as one JSON object; and,
//! with `--task FILE`, what a task file means without any server (see [`task_file`]).
//!
//! [`fetch`] asks the HTTP API for a [`Snapshot`]; [`render`] is a pure function of a snapshot
//! and the current time, so everything shown is testable without a server.

mod table;
pub mod task_file;

use crate::client::{self, ClientError};
use owo_colors::Style;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use table::{Cell, left, right};
use thiserror::Error;

/// Metrics records fetched per agent.
pub const METRICS_PER_AGENT: usize = 60;
/// Alerts fetched per agent.
pub const ALERTS_PER_AGENT: usize = 20;
/// Alerts shown in the text view (the newest); `--json` has every one fetched.
pub const ALERTS_SHOWN: usize = 20;
/// Points in a sparkline (the newest).
pub const SPARKLINE_POINTS: usize = 20;
/// How often `--watch` redraws.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// What `nms inspect` shows: the server's answers, as it gave them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// `GET /api/agents`.
    pub agents: Vec<Value>,
    /// `GET /api/metrics?agent=NAME&limit=60` per agent, oldest first.
    pub metrics: BTreeMap<String, Vec<Value>>,
    /// `GET /api/alerts?agent=NAME&limit=20` of every agent, oldest first.
    pub alerts: Vec<Value>,
}

/// How the snapshot is shown: tables, or one JSON object (one line per refresh with
/// `--watch`).
pub use crate::output::Output;

/// Everything `nms inspect` (of a server) needs, validated from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub server: String,
    /// The API token, for a server whose reads are not public.
    pub token: Option<String>,
    pub output: Output,
    /// Redraw every [`WATCH_INTERVAL`] until interrupted.
    pub watch: bool,
    /// With `watch`: clear the screen before each redraw (a terminal); otherwise each
    /// snapshot follows the previous one under a heading line, without escape codes.
    pub clear_screen: bool,
}

#[derive(Debug, Error)]
pub enum InspectError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the server's answer to {path} is not a list: {answer}")]
    NotAList { path: String, answer: String },
    #[error("cannot write the output")]
    Write(#[source] io::Error),
}

fn list(path: &str, value: Value) -> Result<Vec<Value>, InspectError> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(InspectError::NotAList {
            path: path.to_string(),
            answer: other.to_string().chars().take(200).collect(),
        }),
    }
}

/// Asks the server to forget agent `name` (`DELETE /api/agents/NAME`); returns its answer.
pub async fn forget(server: &str, token: Option<&str>, name: &str) -> Result<Value, ClientError> {
    let encoded: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
    client::delete_json(server, token, &format!("/api/agents/{encoded}")).await
}

/// Asks the server for its agents and each agent's recent metrics and alerts.
pub async fn fetch(server: &str, token: Option<&str>) -> Result<Snapshot, InspectError> {
    let get = |path: String| async move {
        let value = client::get_json_as(server, token, &path).await?;
        list(&path, value)
    };
    let agents = get("/api/agents".to_string()).await?;
    let mut snapshot = Snapshot {
        agents,
        ..Snapshot::default()
    };
    for agent in &snapshot.agents {
        let Some(name) = agent.get("name").and_then(Value::as_str) else {
            continue;
        };
        let encoded: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
        let metrics = get(format!(
            "/api/metrics?agent={encoded}&limit={METRICS_PER_AGENT}"
        ))
        .await?;
        snapshot.metrics.insert(name.to_string(), metrics);
        let alerts = get(format!(
            "/api/alerts?agent={encoded}&limit={ALERTS_PER_AGENT}"
        ))
        .await?;
        snapshot.alerts.extend(alerts);
    }
    snapshot
        .alerts
        .sort_by_key(|a| number(a, "time_ms").unwrap_or(0.0) as u64);
    Ok(snapshot)
}

/// A numeric field (absent, `null` or not a number: `None`).
fn number(value: &Value, key: &str) -> Option<f64> {
    value
        .get(key)
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite())
}

fn string<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// A sparkline of `values` on the scale `low..=high`; a missing value (a lost ping) is `·`.
/// With `high <= low` every present value is the lowest bar.
pub fn sparkline(values: &[Option<f64>], low: f64, high: f64) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    values
        .iter()
        .map(|v| match v {
            None => '·',
            Some(_) if high <= low => BARS[0],
            Some(v) => {
                let level = ((v - low) / (high - low) * 7.0).round().clamp(0.0, 7.0);
                BARS[level as usize]
            }
        })
        .collect()
}

/// Bits per second in the largest unit that keeps the number at 1 or more: `94.3 Mbit/s`.
pub fn human_bandwidth(bps: f64) -> String {
    const UNITS: [&str; 5] = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"];
    let mut value = bps.max(0.0);
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[0])
    } else if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// How long ago `then_ms` was: `3 s ago`, `4 min ago`, `2 h ago`, `5 d ago`; `never` for 0.
pub fn age(then_ms: u64, now_ms: u64) -> String {
    if then_ms == 0 {
        return "never".to_string();
    }
    let s = now_ms.saturating_sub(then_ms) / 1000;
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86400),
    }
}

/// A number with at most `decimals` decimals and no trailing zeros: `97.5`, `80`.
fn short(value: f64, decimals: usize) -> String {
    let s = format!("{value:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// UTC date and time to the second: `2025-11-27 09:40:40Z`.
fn utc_time(ms: u64) -> String {
    crate::log::time_text(ms, crate::log::TimeText::Seconds) + "Z"
}

fn dash() -> Cell {
    Cell::plain("-")
}

/// The snapshot as text: AGENTS, LATEST METRICS and RECENT ALERTS.
pub fn render(snapshot: &Snapshot, color: bool, now_ms: u64) -> String {
    let bold = |title: String| {
        if color {
            format!("{}", owo_colors::OwoColorize::bold(&title))
        } else {
            title
        }
    };
    let mut out = String::new();
    out.push_str(&bold(format!("AGENTS ({})", snapshot.agents.len())));
    out.push('\n');
    if snapshot.agents.is_empty() {
        out.push_str("  no agent has registered yet\n");
    } else {
        out.push_str(&agents_table(&snapshot.agents, color, now_ms));
    }
    out.push('\n');
    out.push_str(&bold("LATEST METRICS".to_string()));
    out.push('\n');
    let names = metric_agents(snapshot);
    if names.is_empty() {
        out.push_str("  no metrics yet\n");
    } else {
        out.push_str(&metrics_table(snapshot, &names, color, now_ms));
    }
    out.push('\n');
    let alerts = &snapshot.alerts;
    let shown = alerts.len().min(ALERTS_SHOWN);
    let title = if shown < alerts.len() {
        format!("RECENT ALERTS (the newest {shown} of {})", alerts.len())
    } else {
        format!("RECENT ALERTS ({})", alerts.len())
    };
    out.push_str(&bold(title));
    out.push('\n');
    if alerts.is_empty() {
        out.push_str("  none\n");
    } else {
        out.push_str(&alerts_table(&alerts[alerts.len() - shown..], color));
    }
    out
}

fn agents_table(agents: &[Value], color: bool, now_ms: u64) -> String {
    let rows: Vec<Vec<Cell>> = agents
        .iter()
        .map(|a| {
            let status = match string(a, "status") {
                Some("up") => Cell::styled("up", Style::new().green()),
                Some(other) => Cell::styled(other, Style::new().red()),
                None => dash(),
            };
            let tasks: Vec<&str> = a
                .get("tasks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            vec![
                Cell::plain(string(a, "name").unwrap_or("?")),
                a.get("id")
                    .filter(|v| !v.is_null())
                    .map_or_else(dash, |v| Cell::plain(v.to_string())),
                status,
                string(a, "address").map_or_else(dash, Cell::plain),
                Cell::plain(age(number(a, "last_seen_ms").unwrap_or(0.0) as u64, now_ms)),
                if tasks.is_empty() {
                    dash()
                } else {
                    Cell::plain(tasks.join(", "))
                },
            ]
        })
        .collect();
    let columns = [
        left("NAME"),
        right("ID"),
        left("STATUS"),
        left("ADDRESS"),
        left("LAST SEEN"),
        left("TASKS"),
    ];
    table::render(&columns, &rows, color, 2)
}

/// Registered agents first, in the server's order, then any other agent with metrics.
fn metric_agents(snapshot: &Snapshot) -> Vec<&str> {
    let mut names: Vec<&str> = snapshot
        .agents
        .iter()
        .filter_map(|a| string(a, "name"))
        .collect();
    for name in snapshot.metrics.keys() {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    names
}

fn metrics_table(snapshot: &Snapshot, names: &[&str], color: bool, now_ms: u64) -> String {
    let rows: Vec<Vec<Cell>> = names
        .iter()
        .map(|name| {
            let records = snapshot.metrics.get(*name).map_or(&[][..], Vec::as_slice);
            // The newest value of a field, from whichever record last measured it.
            let latest = |key: &str| records.iter().rev().find_map(|r| number(r, key));
            let shown = |key: &str, decimals: usize| {
                latest(key).map_or_else(dash, |v| Cell::plain(format!("{v:.decimals$}")))
            };
            // Records that measured the field, lost measurements (`null`) included.
            let series = |key: &str| -> Vec<Option<f64>> {
                let all: Vec<Option<f64>> = records
                    .iter()
                    .filter(|r| r.get(key).is_some())
                    .map(|r| number(r, key))
                    .collect();
                all[all.len().saturating_sub(SPARKLINE_POINTS)..].to_vec()
            };
            let rtt = series("rtt_avg_ms");
            let rtt_high = rtt.iter().flatten().fold(0.0_f64, |a, b| a.max(*b));
            let newest = records
                .iter()
                .filter_map(|r| number(r, "time_ms"))
                .fold(0.0_f64, f64::max);
            vec![
                Cell::plain(*name),
                shown("cpu_percent", 1),
                shown("ram_percent", 1),
                shown("rtt_avg_ms", 2),
                shown("jitter_ms", 2),
                shown("loss_percent", 1),
                latest("bandwidth_bps").map_or_else(dash, |v| Cell::plain(human_bandwidth(v))),
                latest("udp_bandwidth_bps").map_or_else(dash, |v| Cell::plain(human_bandwidth(v))),
                Cell::styled(sparkline(&rtt, 0.0, rtt_high), Style::new().cyan()),
                Cell::styled(
                    sparkline(&series("cpu_percent"), 0.0, 100.0),
                    Style::new().cyan(),
                ),
                Cell::plain(if records.is_empty() {
                    "no metrics yet".to_string()
                } else {
                    age(newest as u64, now_ms)
                }),
            ]
        })
        .collect();
    let columns = [
        left("AGENT"),
        right("CPU %"),
        right("RAM %"),
        right("RTT ms"),
        right("JITTER ms"),
        right("LOSS %"),
        right("TCP BW"),
        right("UDP BW"),
        left("RTT (recent)"),
        left("CPU (recent)"),
        left("UPDATED"),
    ];
    table::render(&columns, &rows, color, 2)
}

fn alerts_table(alerts: &[Value], color: bool) -> String {
    let rows: Vec<Vec<Cell>> = alerts
        .iter()
        .rev()
        .map(|a| {
            let severity = string(a, "severity").unwrap_or("-");
            let style = match severity {
                "critical" => Style::new().red().bold(),
                "warning" => Style::new().yellow(),
                _ => Style::new().cyan(),
            };
            let value = number(a, "value").map_or("-".to_string(), |v| short(v, 2));
            let threshold = number(a, "threshold").map_or("-".to_string(), |v| short(v, 2));
            vec![
                number(a, "time_ms").map_or_else(dash, |t| Cell::plain(utc_time(t as u64))),
                Cell::plain(string(a, "agent").unwrap_or("-")),
                Cell::plain(string(a, "task").filter(|t| !t.is_empty()).unwrap_or("-")),
                Cell::plain(string(a, "kind").unwrap_or("-")),
                Cell::styled(severity, style),
                Cell::plain(format!("{value}/{threshold}")),
                Cell::plain(string(a, "rule").unwrap_or("-")),
                Cell::plain(string(a, "message").unwrap_or("")),
            ]
        })
        .collect();
    let columns = [
        left("TIME (UTC)"),
        left("AGENT"),
        left("TASK"),
        left("KIND"),
        left("SEVERITY"),
        right("VALUE/THRESHOLD"),
        left("RULE"),
        left("MESSAGE"),
    ];
    table::render(&columns, &rows, color, 2)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn write(out: &mut impl Write, text: &str) -> Result<(), InspectError> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(InspectError::Write)
}

/// The whole subcommand: fetch and show once, or redraw every [`WATCH_INTERVAL`] with `watch`
/// (a failed fetch is shown and retried; only Ctrl-C or a closed output ends it).
pub async fn run(options: &Options, out: &mut impl Write) -> Result<(), InspectError> {
    loop {
        let fetched = match fetch(&options.server, options.token.as_deref()).await {
            Err(e) if !options.watch => return Err(e),
            other => other,
        };
        let text = match (&fetched, options.output) {
            (Ok(snapshot), Output::Json) => {
                let json = if options.watch {
                    serde_json::to_string(snapshot)
                } else {
                    serde_json::to_string_pretty(snapshot)
                };
                format!("{}\n", json.unwrap_or_default())
            }
            (Err(e), Output::Json) => {
                format!("{}\n", serde_json::json!({ "error": e.to_string() }))
            }
            (result, Output::Text { color }) => {
                let body = match result {
                    Ok(snapshot) => render(snapshot, color, now_ms()),
                    Err(e) => format!("cannot fetch: {e}\n"),
                };
                if options.watch {
                    format!(
                        "{}{} at {} (every {} s; Ctrl-C to stop)\n\n{body}",
                        if options.clear_screen {
                            "\x1b[2J\x1b[H"
                        } else {
                            "\n"
                        },
                        options.server,
                        utc_time(now_ms()),
                        WATCH_INTERVAL.as_secs()
                    )
                } else {
                    body
                }
            }
        };
        write(out, &text)?;
        if !options.watch {
            return Ok(());
        }
        async_io::Timer::after(WATCH_INTERVAL).await;
    }
}
