//! One coloured line per notable event, on standard error: time, a fixed-width kind, the text.
//! Colour only when standard error is a terminal and `NO_COLOR` is not set.

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

/// Prints one event line.
pub fn event(level: Level, kind: &str, text: impl std::fmt::Display) {
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
