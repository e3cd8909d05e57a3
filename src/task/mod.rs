//! Task files: the JSON files that say what each agent measures. Both accepted layouts (the
//! assignment dialect and the original implementation's) are read into one model ([`Task`]),
//! validated with errors that name the file, the JSON path and the line:column, their iperf runs
//! placed in time slots ([`IperfPlan`]), and split into the
//! [`TaskAssignment`](crate::wire::TaskAssignment) each agent receives. A file whose own iperf
//! runs cannot all be placed is refused.
//!
//! ```
//! use std::path::Path;
//! let text = r#"{"task_id": "t1", "frequency": 5, "devices": [{"device_id": "r1",
//!     "link_metrics": {"latency": {"tool": "ping", "destination": "127.0.0.1",
//!                                  "packet_count": 3}}}]}"#;
//! let tasks = nms::task::parse("example.json", text, Path::new(".")).unwrap();
//! let work = tasks[0].assignments(1, |_| None).unwrap();
//! assert_eq!(work[0].0, "r1");
//! ```

mod assignment;
mod dialect;
mod error;
mod model;
mod original;
pub mod plan;
mod position;
mod probe_entry;
mod split;
mod validate;

pub use error::{JsonPath, TaskError};
pub use model::{Device, Dialect, IperfMetrics, IperfTarget, PlannedItem, Task};
pub use plan::IperfPlan;
pub use position::{Position, PositionIndex};
pub use validate::{
    DEFAULT_IPERF_PORT, DEFAULT_PING_INTERVAL_MS, DEFAULT_UDP_RATE_BPS, MAX_DEVICES,
    MAX_RULE_FILES, MAX_SECONDS, MAX_TASKS, MIN_PING_INTERVAL_MS,
    ORIGINAL_DEFAULT_PING_INTERVAL_MS, is_host,
};

use dialect::{AssignmentTask, OriginalTask};
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::error::Category;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use validate::Checker;

/// Largest task file read: 1 MiB.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// Reads, validates and normalizes the task file at `path`. Errors name the file as `path`
/// is written; rule files are resolved against the file's folder.
pub fn load(path: &Path) -> Result<Vec<Task>, TaskError> {
    let origin = path.display().to_string();
    let read_error = |reason| TaskError::Read {
        file: origin.clone(),
        reason,
    };
    let file = File::open(path).map_err(read_error)?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    parse(&origin, &text, path.parent().unwrap_or(Path::new(".")))
}

/// Validates and normalizes the task file `text`. `origin` names it in errors; `base_dir` is the
/// folder rule files are resolved against.
pub fn parse(origin: &str, text: &str, base_dir: &Path) -> Result<Vec<Task>, TaskError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(TaskError::Invalid {
            file: origin.to_owned(),
            path: JsonPath::root(),
            line: 1,
            column: 1,
            message: format!(
                "the file is {} bytes, more than the {MAX_FILE_BYTES} allowed",
                text.len()
            ),
        });
    }
    let index = PositionIndex::build(text);
    let c = Checker {
        origin,
        index: &index,
        base_dir,
    };
    let document: Value = deserialize(origin, text, &index)?;
    let dialect = dialect::detect(&document).map_err(|(path, message)| c.error(&path, message))?;
    let tasks = read_tasks(&c, text, &document, dialect)?;
    let in_array = matches!(document, Value::Array(_));
    check_task_ids_unique(&c, &tasks, in_array)?;
    check_iperf_plan(&c, &tasks, in_array)?;
    Ok(tasks)
}

/// The file's task object, or each task of its array, read in its dialect and validated.
fn read_tasks(
    c: &Checker<'_>,
    text: &str,
    document: &Value,
    dialect: Dialect,
) -> Result<Vec<Task>, TaskError> {
    let (origin, index) = (c.origin, c.index);
    let root = JsonPath::root();
    Ok(match document {
        Value::Array(tasks) if tasks.is_empty() => {
            return Err(c.error(&root, "the file holds no tasks"));
        }
        Value::Array(tasks) if tasks.len() > MAX_TASKS => {
            return Err(c.error(
                &root,
                format!(
                    "{} tasks, more than the {MAX_TASKS} allowed in one file",
                    tasks.len()
                ),
            ));
        }
        Value::Array(_) => match dialect {
            Dialect::Assignment => deserialize::<Vec<AssignmentTask>>(origin, text, index)?
                .iter()
                .enumerate()
                .map(|(i, task)| assignment::task(c, &root.index(i), task))
                .collect::<Result<Vec<_>, _>>()?,
            Dialect::Original => deserialize::<Vec<OriginalTask>>(origin, text, index)?
                .iter()
                .enumerate()
                .map(|(i, task)| original::task(c, &root.index(i), task))
                .collect::<Result<Vec<_>, _>>()?,
        },
        Value::Object(_) => vec![match dialect {
            Dialect::Assignment => assignment::task(
                c,
                &root,
                &deserialize::<AssignmentTask>(origin, text, index)?,
            )?,
            Dialect::Original => {
                original::task(c, &root, &deserialize::<OriginalTask>(origin, text, index)?)?
            }
        }],
        _ => {
            return Err(c.error(
                &root,
                "a task file holds a task object or an array of task objects",
            ));
        }
    })
}

/// The path of the `i`th task: an index into the file's array, or the file's one object.
fn task_path(in_array: bool, i: usize) -> JsonPath {
    if in_array {
        JsonPath::root().index(i)
    } else {
        JsonPath::root()
    }
}

/// No two tasks of a file share a `task_id`.
fn check_task_ids_unique(c: &Checker<'_>, tasks: &[Task], in_array: bool) -> Result<(), TaskError> {
    for (i, task) in tasks.iter().enumerate() {
        if tasks[..i].iter().any(|t| t.task_id == task.task_id) {
            return Err(c.error(
                &task_path(in_array, i).key("task_id"),
                format!(
                    "task_id {:?} is used by an earlier task of this file",
                    task.task_id
                ),
            ));
        }
    }
    Ok(())
}

/// Every iperf run of the file has a time slot; the first that has none is refused at its
/// client's `link_metrics`.
fn check_iperf_plan(c: &Checker<'_>, tasks: &[Task], in_array: bool) -> Result<(), TaskError> {
    let plan = IperfPlan::build(tasks);
    let Some(unplaced) = plan.unplaced.first() else {
        return Ok(());
    };
    let run = &unplaced.run;
    let (t, d) = tasks
        .iter()
        .enumerate()
        .find_map(|(t, task)| {
            let d = task
                .devices
                .iter()
                .position(|d| task.task_id == run.task_id && d.device_id == run.client)?;
            Some((t, d))
        })
        .unwrap_or((0, 0));
    Err(c.error(
        &task_path(in_array, t)
            .key("devices")
            .index(d)
            .key("link_metrics"),
        format!(
            "the iperf test {run} cannot be scheduled: {}",
            unplaced.reason
        ),
    ))
}

/// Deserializes the whole of `text`, turning a syntax or type error into a [`TaskError`] with
/// the path serde reached.
///
/// A syntax error is placed where serde_json stopped. A type error, unknown field or missing
/// field is placed like validation errors, at the start of the value the path names (at the key,
/// for an unknown field), since the text is then well-formed and indexed.
fn deserialize<T: DeserializeOwned>(
    origin: &str,
    text: &str,
    index: &PositionIndex,
) -> Result<T, TaskError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        json_error(
            origin,
            text,
            JsonPath::from_serde(e.path()),
            e.inner(),
            index,
        )
    })?;
    deserializer
        .end()
        .map_err(|e| json_error(origin, text, JsonPath::root(), &e, index))?;
    Ok(value)
}

/// A syntax error in plain words: text that is not JSON at all is called that, with how it
/// begins; a JSON document with a mistake says what serde_json expected.
fn not_json(text: &str, detail: &str) -> String {
    let start = text.trim_start();
    match start.chars().next() {
        None => "the text is empty, not JSON: a task file is a JSON object or array of task \
                 objects"
            .to_owned(),
        Some('{' | '[') => format!("not valid JSON: {detail}"),
        Some(_) => {
            let begins: String = start.chars().take(24).take_while(|c| *c != '\n').collect();
            format!(
                "this is not JSON (it begins {begins:?}): a task file is a JSON object or array \
                 of task objects"
            )
        }
    }
}

fn json_error(
    origin: &str,
    text: &str,
    path: JsonPath,
    error: &serde_json::Error,
    index: &PositionIndex,
) -> TaskError {
    let full = error.to_string();
    let message = full
        .strip_suffix(&format!(
            " at line {} column {}",
            error.line(),
            error.column()
        ))
        .unwrap_or(&full)
        .to_owned();
    let indexed = match error.classify() {
        Category::Data if message.starts_with("unknown field") => index.key_start(&path),
        Category::Data => index.value_start(&path),
        Category::Io | Category::Syntax | Category::Eof => None,
    };
    let message = match error.classify() {
        Category::Syntax | Category::Eof => not_json(text, &message),
        Category::Data | Category::Io => message,
    };
    // Text that is not JSON at all is placed where it begins, not where serde_json gave up.
    let indexed = indexed.or_else(|| {
        let begins = text.find(|c: char| !c.is_whitespace())?;
        let syntax = matches!(error.classify(), Category::Syntax | Category::Eof);
        (syntax && !text[begins..].starts_with(['{', '['])).then(|| {
            let before = &text[..begins];
            Position {
                line: before.matches('\n').count() + 1,
                column: before[before.rfind('\n').map_or(0, |n| n + 1)..]
                    .chars()
                    .count()
                    + 1,
            }
        })
    });
    // serde_json says column 0 for a position just after a newline.
    let (line, column) = indexed.map_or((error.line().max(1), error.column().max(1)), |at| {
        (at.line, at.column)
    });
    TaskError::Invalid {
        file: origin.to_owned(),
        path,
        line,
        column,
        message,
    }
}
