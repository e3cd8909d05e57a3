//! What can be wrong with the configuration an operator gives: a file that cannot be read, a
//! key, token or settings file that does not parse, a value out of its range. Each error names
//! the file (and line) or the flag it is about.

use crate::wire::tag::KeyError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `what` is the kind of file: "key file", "settings file", ...
    #[error("cannot read {what} {}", path.display())]
    Unreadable {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `action` is "write" or "create".
    #[error("cannot {action} {}", path.display())]
    Unwritable {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {}", path.display())]
    KeyFile {
        path: PathBuf,
        #[source]
        source: KeyError,
    },
    /// A line of the per-agent keys file that is not `NAME HEXKEY` or repeats a name.
    #[error("{}:{line}: {problem}", path.display())]
    KeysLine {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("{}:{line}: not an agent name", path.display())]
    KeysLineName {
        path: PathBuf,
        line: usize,
        #[source]
        source: Box<ConfigError>,
    },
    #[error("{}:{line}: key of {name}", path.display())]
    KeysLineKey {
        path: PathBuf,
        line: usize,
        name: String,
        #[source]
        source: KeyError,
    },
    #[error(
        "API token file {path}: the token must be at least {min} printable ASCII characters \
         without spaces (e.g. `openssl rand -hex 32 > {path}`)",
        path = path.display(),
        min = super::MIN_TOKEN_LEN
    )]
    Token { path: PathBuf },
    #[error("no random bytes: {0}")]
    NoRandom(String),
    #[error("cannot find a home directory for the data directory; pass --data-dir")]
    NoHomeDirectory,
    #[error("cannot read the host name; pass --id NAME")]
    NoHostName,
    /// `problem` completes "agent name NAME must ...".
    #[error("agent name {name:?} must {problem}")]
    AgentName { name: String, problem: &'static str },
    #[error("server list {list:?}: {problem}")]
    ServerList { list: String, problem: String },
    #[error("no server given")]
    NoServer,
    #[error("{what} {text:?}: not a duration (e.g. 15d, 6w, 2y)")]
    Duration {
        what: String,
        text: String,
        #[source]
        source: humantime::DurationError,
    },
    #[error("{what} {text:?}: not a size (e.g. 50GB, 512MiB)")]
    Size {
        what: String,
        text: String,
        #[source]
        source: std::num::ParseFloatError,
    },
    /// A value that reads but is out of range; `problem` says what it must be.
    #[error("{what} {text:?}: {problem}")]
    Value {
        what: String,
        text: String,
        problem: String,
    },
    /// A settings file that does not parse; `at` is `:LINE:COLUMN` when known.
    #[error("{}{at}: {message}", path.display())]
    Settings {
        path: PathBuf,
        at: String,
        message: String,
    },
}
