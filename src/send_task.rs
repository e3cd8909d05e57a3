//! `nms send-task`: validate a task file and its rule files here, where the user can fix them,
//! then post them to a running server (`POST /api/tasks`), which installs the task and dispatches
//! it, and show which agent received what.
//!
//! [`build_upload`] and [`render_answer`] are the pure pieces; [`run`] strings them together with
//! the HTTP client.

use crate::client::{self, ClientError};
use crate::rules::{self, RuleError};
use crate::task::{self, Task, TaskError};
use crate::wire::codec::MAX_RULE_SOURCE_LEN;
use owo_colors::Style;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Where the server takes task uploads.
pub const TASKS_PATH: &str = "/api/tasks";

/// How the server's answer is shown: a line per task and per device, or the server's JSON
/// answer, pretty-printed.
pub use crate::output::Output;

/// Everything `nms send-task` needs, validated from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub file: PathBuf,
    /// The server's HTTP API, e.g. `http://127.0.0.1:9470`.
    pub server: String,
    /// The API token writes need.
    pub token: Option<String>,
    pub output: Output,
}

/// Why `nms send-task` failed.
#[derive(Debug, Error)]
pub enum SendTaskError {
    /// The task file is unreadable or invalid (names the file, JSON path and line:column).
    #[error(transparent)]
    Task(#[from] TaskError),
    /// A rule file the task names cannot be read.
    #[error("{}: cannot read the rule file", path.display())]
    RuleFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A rule file is larger than a task can carry to an agent.
    #[error("{}: the rule file is larger than the {} KiB a task can carry", path.display(), MAX_RULE_SOURCE_LEN / 1024)]
    RuleTooLarge { path: PathBuf },
    /// A rule file does not compile or fails its trial run (names the file and line:column).
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The server answered, but not with the expected `{"tasks": [...]}`.
    #[error("the server's answer has no \"tasks\" list: {0}")]
    UnexpectedAnswer(String),
    #[error("cannot write the output")]
    Write(#[source] io::Error),
}

/// Reads a rule file, refusing one larger than a task can carry.
pub fn read_rule_file(path: &Path) -> Result<String, SendTaskError> {
    let read_error = |source| SendTaskError::RuleFile {
        path: path.to_path_buf(),
        source,
    };
    let mut source = String::new();
    std::fs::File::open(path)
        .map_err(read_error)?
        .take(MAX_RULE_SOURCE_LEN as u64 + 1)
        .read_to_string(&mut source)
        .map_err(read_error)?;
    if source.len() > MAX_RULE_SOURCE_LEN {
        return Err(SendTaskError::RuleTooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(source)
}

/// Reads and validates the task file at `path` and every rule file it names, and builds the
/// upload the server takes: `{origin, base_dir, content, rule_files: {resolved path: source}}`.
/// Rule paths are resolved against `base_dir` exactly as the server resolves them, so the keys
/// of `rule_files` are the names it looks up.
pub fn build_upload(path: &Path) -> Result<(Vec<Task>, Value), SendTaskError> {
    let origin = path.display().to_string();
    let read_error = |reason| TaskError::Read {
        file: origin.clone(),
        reason,
    };
    let mut content = String::new();
    std::fs::File::open(path)
        .map_err(read_error)?
        .take(task::MAX_FILE_BYTES as u64 + 1)
        .read_to_string(&mut content)
        .map_err(read_error)?;
    let base_dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.display().to_string(),
        _ => ".".to_string(),
    };
    let tasks = task::parse(&origin, &content, Path::new(&base_dir))?;
    let mut rule_files = BTreeMap::new();
    for device in tasks.iter().flat_map(|t| &t.devices) {
        for rule in &device.rule_files {
            let shown = rule.display().to_string();
            if rule_files.contains_key(&shown) {
                continue;
            }
            let source = read_rule_file(rule)?;
            rules::check(&shown, &source)?;
            rule_files.insert(shown, source);
        }
    }
    let upload = json!({
        "origin": origin,
        "base_dir": base_dir,
        "content": content,
        "rule_files": rule_files,
    });
    Ok((tasks, upload))
}

/// The server's answer as text: per task `task-id (#number)`, then per device its status and
/// what it was given, the agents the task was cancelled on, and the iperf tests that could not
/// be scheduled with the server's other tasks.
pub fn render_answer(answer: &Value, color: bool) -> Result<String, SendTaskError> {
    let tasks = answer
        .get("tasks")
        .and_then(Value::as_array)
        .ok_or_else(|| SendTaskError::UnexpectedAnswer(compact(answer)))?;
    let paint = |text: &str, style: Style| crate::output::paint(text, style, color);
    let mut out = String::new();
    for t in tasks {
        let _ = writeln!(
            out,
            "{} (#{})",
            paint(text(t, "task_id"), Style::new().bold()),
            t.get("number").map_or_else(|| "?".to_string(), compact)
        );
        render_devices(&mut out, &paint, t);
        let cancelled: Vec<&str> = strings(t, "cancelled").collect();
        if !cancelled.is_empty() {
            let _ = writeln!(
                out,
                "  {} on {} (no longer named by the task)",
                paint("cancelled", Style::new().yellow()),
                cancelled.join(", ")
            );
        }
        for reason in strings(t, "unscheduled") {
            let _ = writeln!(out, "  {} {reason}", paint("not run:", Style::new().red()));
        }
    }
    Ok(out)
}

/// A task's devices, one under the other: the name and status in aligned columns, then what
/// the device was given (or why not), one detail a line.
fn render_devices(out: &mut String, paint: &impl Fn(&str, Style) -> String, task: &Value) {
    let devices = task
        .get("devices")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let width = devices
        .iter()
        .map(|d| text(d, "device").chars().count())
        .max()
        .unwrap_or(0);
    for d in devices {
        let status = text(d, "status");
        let style = match status {
            "sent" => Style::new().green(),
            "waiting" => Style::new().yellow(),
            _ => Style::new().red(),
        };
        let device = format!("{:<width$}", text(d, "device"));
        let status = paint(&format!("{status:<7}"), style);
        let indent = " ".repeat(2 + width + 2 + 7 + 2);
        for (i, detail) in device_details(d).iter().enumerate() {
            if i == 0 {
                let _ = writeln!(out, "  {device}  {status}  {detail}");
            } else {
                let _ = writeln!(out, "{indent}{detail}");
            }
        }
    }
}

/// What a device's line says after its status: `(reason)`, then its items; `-` when neither.
fn device_details(device: &Value) -> Vec<String> {
    let mut details: Vec<String> = Vec::new();
    if let Some(reason) = device.get("reason").and_then(Value::as_str) {
        details.push(format!("({reason})"));
    }
    details.extend(
        device
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|i| i.as_str().map_or_else(|| compact(i), str::to_string)),
    );
    if details.is_empty() {
        details.push("-".to_string());
    }
    details
}

/// The strings of an array field; nothing when it is absent.
fn strings<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// A string field, or `""`.
fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

fn compact(value: &Value) -> String {
    let s = value.to_string();
    if s.chars().count() > 300 {
        s.chars().take(300).chain("...".chars()).collect()
    } else {
        s
    }
}

/// The whole subcommand: validate, post, print the answer to `out`.
pub async fn run(options: &Options, out: &mut impl Write) -> Result<(), SendTaskError> {
    let (_, upload) = build_upload(&options.file)?;
    let answer = client::post_json(
        &options.server,
        options.token.as_deref(),
        TASKS_PATH,
        &upload,
    )
    .await?;
    let shown = match options.output {
        Output::Json => {
            let mut s = serde_json::to_string_pretty(&answer).unwrap_or_else(|_| compact(&answer));
            s.push('\n');
            s
        }
        Output::Text { color } => render_answer(&answer, color)?,
    };
    out.write_all(shown.as_bytes())
        .and_then(|()| out.flush())
        .map_err(SendTaskError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_aligned_with_their_items_and_reasons() {
        let answer = json!({"tasks": [{
        "task_id": "task-1", "number": 3, "cancelled": ["old"],
        "unscheduled": ["task task-1: r3 -> r2 port 5201 (tcp, 12 s every 25 s) is not scheduled: no 13 s slot"],
        "devices": [
            {"device": "r1", "status": "sent", "agent_id": 1,
             "items": ["ping 127.0.0.1 x3 every 5s", "cpu+ram every 5s"]},
            {"device": "router-3", "status": "waiting", "agent_id": null,
             "items": ["cpu every 5s"],
             "reason": "the agent is not connected; it gets the task when it registers"},
        ]}]});
        let shown = render_answer(&answer, false).unwrap();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[0], "task-1 (#3)");
        assert_eq!(lines[1], "  r1        sent     ping 127.0.0.1 x3 every 5s");
        assert_eq!(lines[2], format!("{}cpu+ram every 5s", " ".repeat(21)));
        assert!(lines[3].starts_with("  router-3  waiting  (the agent is not connected"));
        assert_eq!(lines[4].trim(), "cpu every 5s");
        assert!(lines[5].contains("cancelled on old"));
        assert!(
            lines[6].starts_with("  not run: task task-1: r3 -> r2"),
            "{}",
            lines[6]
        );
        assert!(!shown.contains('\x1b'));
        assert!(render_answer(&answer, true).unwrap().contains('\x1b'));
    }

    #[test]
    fn an_answer_without_tasks_is_an_error() {
        let e = render_answer(&json!({"ok": true}), false).unwrap_err();
        assert!(e.to_string().contains("no \"tasks\" list"), "{e}");
    }
}
