//! One coloured line per notable event, on standard error: time, a fixed-width kind, the text.
//! Colour only when standard error is a terminal and `NO_COLOR` is not set.
//!
//! The text often carries what arrived over the network (agent names, alert messages, task
//! ids): every control character in it is escaped (`\n`, `\u{1b}`), so nothing received can
//! start a fake log line or send escape sequences to an operator's terminal. [`Throttle`] and
//! [`Throttles`] keep a flood of one kind of line down to one per interval, with a count.

use owo_colors::OwoColorize;
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// How an event line is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Good,
    Warn,
    Bad,
}

fn color_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
    })
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The first millisecond of the year 10000, which RFC 3339 cannot write.
const YEAR_10000_MS: u64 = 253_402_300_800_000;

/// RFC 3339 text (UTC, milliseconds) of Unix milliseconds; times from the year 10000 on, which
/// RFC 3339 cannot write, are written as the last millisecond of 9999.
pub fn rfc3339(ms: u64) -> String {
    let ms = ms.min(YEAR_10000_MS - 1);
    humantime::format_rfc3339_millis(UNIX_EPOCH + std::time::Duration::from_millis(ms)).to_string()
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

/// Prints one event line; control characters in `text` are escaped.
pub fn event(level: Level, kind: &str, text: impl std::fmt::Display) {
    let text = text.to_string();
    let text = escape_controls(&text);
    let time = rfc3339(now_ms());
    let kind = format!("{kind:<10}");
    if color_enabled() {
        let kind = match level {
            Level::Info => kind.cyan().to_string(),
            Level::Good => kind.green().to_string(),
            Level::Warn => kind.yellow().to_string(),
            Level::Bad => kind.red().bold().to_string(),
        };
        eprintln!("{} {kind} {text}", time.dimmed());
    } else {
        eprintln!("{time} {kind} {text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
