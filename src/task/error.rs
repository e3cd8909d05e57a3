//! Errors from reading, validating and splitting task files. Every error about the file's content
//! names the file, the JSON path of the offending value and its line:column, so that a user can go
//! straight to it: `configs/bad.json: [0].devices[0].alertflow_conditions.cpu_usage at 12:27:
//! threshold 120 is not a percentage (0..=100)`.

use std::fmt;
use std::io;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TaskError {
    /// The task file could not be read.
    #[error("{file}: cannot read the task file: {reason}")]
    Read {
        file: String,
        // Not a `source`: the message already includes it, and `{:#}` would print it twice.
        reason: io::Error,
    },
    /// The file's content is malformed JSON, has a wrong type, an unknown or missing field, or
    /// fails validation.
    #[error("{file}: {path} at {line}:{column}: {message}")]
    Invalid {
        file: String,
        path: JsonPath,
        line: usize,
        column: usize,
        message: String,
    },
    /// An iperf client's server is another device of the task whose address is not known (its
    /// agent has not registered), or is not a usable host.
    #[error("task {task_id}: device {client} is the iperf client of device {server}, {problem}")]
    ServerAddress {
        task_id: String,
        client: String,
        server: String,
        problem: String,
    },
}

/// Where a value sits inside a JSON document: object keys and array indices from the top, shown
/// as `[0].devices[1].link_metrics.latency.packet_count` (`top level` for the document itself).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct JsonPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Key(String),
    Index(usize),
}

impl JsonPath {
    /// The document itself.
    pub fn root() -> Self {
        JsonPath(Vec::new())
    }

    /// The value under `key` of the object at this path.
    pub fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        JsonPath(segments)
    }

    /// The element `index` of the array at this path.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        JsonPath(segments)
    }

    /// The path of the enclosing value, `None` at the top level.
    pub fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_last()?;
        Some(JsonPath(rest.to_vec()))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path `serde_path_to_error` recorded while deserializing.
    pub(crate) fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        let segments = path
            .iter()
            .filter_map(|segment| match segment {
                S::Seq { index } => Some(Segment::Index(*index)),
                S::Map { key } | S::Enum { variant: key } => Some(Segment::Key(key.clone())),
                S::Unknown => None,
            })
            .collect();
        JsonPath(segments)
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("top level");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
            }
        }
        Ok(())
    }
}
