//! One line per notable event, on standard error: time, level, a fixed-width kind, the text.
//!
//! [`init`] sets how lines look, once, from the command line: the lowest level shown (`-v`
//! shows debug lines, `-q` only warnings and errors, `-qq` only errors), the format (`text`,
//! or `json`: one object per line with `time`, `level`, `kind` and `message`) and colour
//! (`--color`: the level and kind coloured only on a terminal, with `NO_COLOR` unset, unless
//! `always`). When standard error is the systemd journal (`JOURNAL_STREAM` names it) a text
//! line starts with the syslog priority, `<3>` to `<7>`, and leaves the time to the journal, so
//! `journalctl -p warning` finds the warnings.
//!
//! The text often carries what arrived over the network (agent names, alert messages, task
//! ids): every control character in it is escaped (`\n`, `\u{1b}`), so nothing received can
//! start a fake log line or send escape sequences to an operator's terminal. [`Throttle`] and
//! [`Throttles`] keep a flood of one kind of line down to one per interval, with a count.

use owo_colors::OwoColorize;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// How serious an event is. The order is the order of importance: a filter keeps a level and
/// everything after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Detail for `-v`: every stored report, every raised alert.
    Debug,
    /// Routine events.
    Info,
    /// Something recovered or succeeded that is worth noticing (an agent back, a registration).
    Good,
    Warn,
    /// Something failed or is down.
    Bad,
}

impl Level {
    /// The syslog priority journald files the line under: err (3), warning (4), notice (5),
    /// info (6), debug (7).
    pub fn priority(self) -> u8 {
        match self {
            Level::Bad => 3,
            Level::Warn => 4,
            Level::Good => 5,
            Level::Info => 6,
            Level::Debug => 7,
        }
    }

    /// The level's name in a line: `error`, `warning`, `notice`, `info`, `debug`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Bad => "error",
            Level::Warn => "warning",
            Level::Good => "notice",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `TIME LEVEL KIND text`.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// When log lines are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Color {
    /// On a terminal, with `NO_COLOR` unset or empty.
    #[default]
    Auto,
    Always,
    Never,
}

/// How the process logs: set once by [`init`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// Lines below this level are not written.
    pub min_level: Level,
    pub format: Format,
    pub color: Color,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            min_level: Level::Info,
            format: Format::Text,
            color: Color::Auto,
        }
    }
}

impl LogOptions {
    /// The lowest level shown for `-v` (given `verbose` times) and `-q` (`quiet` times):
    /// debug with `-v`, warnings with `-q`, errors only with `-qq`.
    pub fn level_for(verbose: u8, quiet: u8) -> Level {
        match (verbose, quiet) {
            (v, 0) if v > 0 => Level::Debug,
            (_, 0) => Level::Info,
            (_, 1) => Level::Warn,
            _ => Level::Bad,
        }
    }
}

/// What [`init`] settled, with what the environment says.
#[derive(Debug, Clone, Copy)]
struct Settled {
    options: LogOptions,
    color: bool,
    journal: bool,
}

static SETTLED: OnceLock<Settled> = OnceLock::new();

/// Sets how this process logs; the first call wins (later ones, and lines logged before it,
/// use what was set first, or the defaults).
pub fn init(options: LogOptions) {
    let _ = SETTLED.set(settle(options));
}

fn settle(options: LogOptions) -> Settled {
    let journal = stderr_is_journal();
    let color = match options.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            !journal
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal()
        }
    };
    Settled {
        options,
        color: color && options.format == Format::Text,
        journal,
    }
}

fn settled() -> &'static Settled {
    SETTLED.get_or_init(|| settle(LogOptions::default()))
}

/// Whether a line of `level` would be written (to skip building text nobody sees).
pub fn enabled(level: Level) -> bool {
    level >= settled().options.min_level
}

/// Whether standard error is the journal: systemd sets `JOURNAL_STREAM` to the device and
/// inode of the stream it connected, `DEV:INODE` (a child that inherited the variable but
/// writes elsewhere does not match).
fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The first millisecond of the year 10000, which RFC 3339 cannot write.
const YEAR_10000_MS: u64 = 253_402_300_800_000;

/// How [`time_text`] writes a time (always UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeText {
    /// `2025-11-27T09:40:00.000Z`: logs, JSON, the API.
    Rfc3339Millis,
    /// `2025-11-27 09:40:00`: the status page.
    Seconds,
    /// `2025-11-27 09:40:00.000`: `decode`.
    Millis,
}

/// The one time formatter: Unix milliseconds as UTC text in `style`; times from the year
/// 10000 on, which RFC 3339 cannot write, are written as the last millisecond of 9999.
pub fn time_text(ms: u64, style: TimeText) -> String {
    let at = UNIX_EPOCH + std::time::Duration::from_millis(ms.min(YEAR_10000_MS - 1));
    let text = match style {
        TimeText::Seconds => humantime::format_rfc3339_seconds(at).to_string(),
        TimeText::Rfc3339Millis | TimeText::Millis => {
            humantime::format_rfc3339_millis(at).to_string()
        }
    };
    match style {
        TimeText::Rfc3339Millis => text,
        TimeText::Seconds | TimeText::Millis => text.trim_end_matches('Z').replacen('T', " ", 1),
    }
}

/// RFC 3339 text (UTC, milliseconds) of Unix milliseconds ([`time_text`]).
pub fn rfc3339(ms: u64) -> String {
    time_text(ms, TimeText::Rfc3339Millis)
}

/// Whether `ms` is before the year 10000, the last [`time_text`] can write.
pub fn writable_time(ms: u64) -> bool {
    ms < YEAR_10000_MS
}

/// Parses a time given as Unix milliseconds or RFC 3339 text.
pub fn parse_time(text: &str) -> Option<u64> {
    if let Ok(ms) = text.parse::<u64>() {
        return Some(ms);
    }
    humantime::parse_rfc3339_weak(text)
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as u64)
}

/// `text` with every control character escaped as Rust writes it in a string literal.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// At most one line per interval: [`Throttle::allow`] says whether to print now, and how many
/// were held back since the last printed one.
#[derive(Debug, Clone)]
pub struct Throttle {
    interval_ms: u64,
    last_ms: Option<u64>,
    held_back: u64,
}

impl Throttle {
    pub fn new(interval: std::time::Duration) -> Self {
        Throttle {
            interval_ms: interval.as_millis() as u64,
            last_ms: None,
            held_back: 0,
        }
    }

    /// `Some(held back since the last line)` when a line may be printed at `now_ms`.
    pub fn allow(&mut self, now_ms: u64) -> Option<u64> {
        let due = self
            .last_ms
            .is_none_or(|last| now_ms.saturating_sub(last) >= self.interval_ms);
        if !due {
            self.held_back += 1;
            return None;
        }
        self.last_ms = Some(now_ms);
        Some(std::mem::take(&mut self.held_back))
    }
}

/// A [`Throttle`] per key (an agent name, an address), for at most `max_keys` keys (past that
/// they start over, so a flood of new keys costs bounded memory).
#[derive(Debug, Clone)]
pub struct Throttles<K> {
    interval: std::time::Duration,
    max_keys: usize,
    by_key: std::collections::HashMap<K, Throttle>,
}

impl<K: std::hash::Hash + Eq> Throttles<K> {
    pub fn new(interval: std::time::Duration, max_keys: usize) -> Self {
        Throttles {
            interval,
            max_keys,
            by_key: std::collections::HashMap::new(),
        }
    }

    pub fn allow(&mut self, key: K, now_ms: u64) -> Option<u64> {
        if self.by_key.len() >= self.max_keys && !self.by_key.contains_key(&key) {
            self.by_key.clear();
        }
        let interval = self.interval;
        self.by_key
            .entry(key)
            .or_insert_with(|| Throttle::new(interval))
            .allow(now_ms)
    }
}

/// "" or " (N more since the last such line)".
pub fn held_back_note(held_back: u64) -> String {
    if held_back == 0 {
        String::new()
    } else {
        format!(" ({held_back} more since the last such line)")
    }
}

/// Writes one event line, if its level is shown; control characters in `text` are escaped.
pub fn event(level: Level, kind: &str, text: impl std::fmt::Display) {
    let settled = settled();
    if level < settled.options.min_level {
        return;
    }
    let text = text.to_string();
    let line = format_line(settled, level, kind, &escape_controls(&text), now_ms());
    // One write per line, so lines from several threads do not interleave.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The line for an event at `time_ms`, newline included.
fn format_line(settled: &Settled, level: Level, kind: &str, text: &str, time_ms: u64) -> String {
    let time = rfc3339(time_ms);
    if settled.options.format == Format::Json {
        let quoted = |v: &str| serde_json::Value::from(v).to_string();
        let mut line = format!(
            "{{\"time\":{},\"level\":{},\"kind\":{},\"message\":{}}}",
            quoted(&time),
            quoted(level.name()),
            quoted(kind),
            quoted(text)
        );
        if settled.journal {
            line.insert_str(0, &format!("<{}>", level.priority()));
        }
        line.push('\n');
        return line;
    }
    let shown_level = format!("{:<7}", level.name());
    let kind = format!("{kind:<10}");
    if settled.journal {
        // The journal keeps its own time stamp.
        return format!("<{}>{shown_level} {kind} {text}\n", level.priority());
    }
    if settled.color {
        let (shown_level, kind) = match level {
            Level::Debug => (shown_level.dimmed().to_string(), kind.dimmed().to_string()),
            Level::Info => (shown_level.to_string(), kind.cyan().to_string()),
            Level::Good => (shown_level.green().to_string(), kind.green().to_string()),
            Level::Warn => (shown_level.yellow().to_string(), kind.yellow().to_string()),
            Level::Bad => (
                shown_level.red().bold().to_string(),
                kind.red().bold().to_string(),
            ),
        };
        format!("{} {shown_level} {kind} {text}\n", time.dimmed())
    } else {
        format!("{time} {shown_level} {kind} {text}\n")
    }
}

/// An error and its sources, `outer: inner: ...`, as the binary prints errors.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled(format: Format, color: bool, journal: bool) -> Settled {
        Settled {
            options: LogOptions {
                format,
                ..LogOptions::default()
            },
            color,
            journal,
        }
    }

    #[test]
    fn every_line_has_a_level_and_the_journal_gets_its_priority() {
        let t = 1_764_236_400_000;
        let text = settled(Format::Text, false, false);
        assert_eq!(
            format_line(&text, Level::Warn, "DOWN", "edge-1 silent", t),
            "2025-11-27T09:40:00.000Z warning DOWN       edge-1 silent\n"
        );
        let journal = settled(Format::Text, false, true);
        assert_eq!(
            format_line(&journal, Level::Bad, "STORE", "not stored", t),
            "<3>error   STORE      not stored\n"
        );
        assert_eq!(
            format_line(&journal, Level::Info, "TASK", "x", t),
            "<6>info    TASK       x\n"
        );
        let json = settled(Format::Json, false, false);
        let line = format_line(&json, Level::Good, "UP", "back \"now\"", t);
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"time": "2025-11-27T09:40:00.000Z", "level": "notice",
                "kind": "UP", "message": "back \"now\""})
        );
        let journal_json = settled(Format::Json, false, true);
        assert!(format_line(&journal_json, Level::Debug, "M", "x", t).starts_with("<7>{"));
    }

    #[test]
    fn colour_only_when_settled_and_never_in_plain_lines() {
        let plain = settled(Format::Text, false, false);
        assert!(!format_line(&plain, Level::Bad, "X", "y", 0).contains('\u{1b}'));
        let coloured = settled(Format::Text, true, false);
        assert!(format_line(&coloured, Level::Bad, "X", "y", 0).contains('\u{1b}'));
    }

    #[test]
    fn verbosity_flags_pick_the_lowest_level_shown() {
        assert_eq!(LogOptions::level_for(0, 0), Level::Info);
        assert_eq!(LogOptions::level_for(1, 0), Level::Debug);
        assert_eq!(LogOptions::level_for(0, 1), Level::Warn);
        assert_eq!(LogOptions::level_for(0, 2), Level::Bad);
        assert!(
            Level::Bad > Level::Warn && Level::Warn > Level::Good && Level::Info > Level::Debug
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("plain name"), "plain name");
        assert_eq!(
            escape_controls("evil\n2026-01-01T00:00:00.000Z REGISTER  x\u{1b}[31m"),
            "evil\\n2026-01-01T00:00:00.000Z REGISTER  x\\u{1b}[31m"
        );
    }

    #[test]
    fn a_throttle_lets_one_line_through_per_interval_and_counts_the_rest() {
        let mut t = Throttle::new(std::time::Duration::from_secs(10));
        assert_eq!(t.allow(0), Some(0));
        assert_eq!(t.allow(1), None);
        assert_eq!(t.allow(9_999), None);
        assert_eq!(t.allow(10_000), Some(2));
        let mut per = Throttles::new(std::time::Duration::from_secs(10), 2);
        assert_eq!(per.allow("a", 0), Some(0));
        assert_eq!(per.allow("b", 0), Some(0));
        assert_eq!(per.allow("a", 1), None);
        assert_eq!(
            per.allow("c", 1),
            Some(0),
            "a third key starts the table over"
        );
    }
}
