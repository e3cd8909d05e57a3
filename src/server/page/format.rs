//! How the status page writes times and numbers: UTC clock times, "3 s ago", and short decimal
//! values for tick labels and table cells.

const MS_PER_MINUTE: u64 = 60_000;
const MINUTES_PER_DAY: u64 = 24 * 60;

/// The UTC time of day as `HH:MM`.
pub fn clock(ms: u64) -> String {
    let minutes = (ms / MS_PER_MINUTE) % MINUTES_PER_DAY;
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// The UTC date as `MM-DD` (tick labels of ranges over days).
pub fn day(ms: u64) -> String {
    let text = crate::log::rfc3339(ms);
    text.get(5..10).unwrap_or("").to_string()
}

/// The UTC date and time as `YYYY-MM-DD HH:MM:SS`.
pub fn date_time(ms: u64) -> String {
    crate::log::time_text(ms, crate::log::TimeText::Seconds)
}

/// How long ago `then_ms` was, seen at `now_ms`: "now", "12 s ago", "4 min ago", "3 h ago",
/// "2 d ago"; "never" for time zero (an agent not heard from since the server started).
pub fn ago(now_ms: u64, then_ms: u64) -> String {
    if then_ms == 0 {
        return "never".into();
    }
    let seconds = now_ms.saturating_sub(then_ms) / 1000;
    match seconds {
        0 => "now".into(),
        1..=119 => format!("{seconds} s ago"),
        120..=7199 => format!("{} min ago", seconds / 60),
        7200..=172_799 => format!("{} h ago", seconds / 3600),
        _ => format!("{} d ago", seconds / 86_400),
    }
}

/// A value in its shortest form with at most `decimals` decimals: `2`, `0.5`, `12.25`.
pub fn number(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    if text == "-0" { "0".into() } else { text }
}

/// A measured value for reading: two significant decimals for small values, fewer for large.
pub fn measured(v: f64) -> String {
    let decimals = match v.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        a if a >= 0.1 => 2,
        _ => 3,
    };
    number(v, decimals)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-11-27 09:40:05 UTC.
    const T: u64 = 1_764_236_405_000;

    #[test]
    fn times_are_utc() {
        assert_eq!(clock(T), "09:40");
        assert_eq!(clock(0), "00:00");
        assert_eq!(clock(T + 14 * 3_600_000 + 19 * 60_000), "23:59");
        assert_eq!(date_time(T + 999), "2025-11-27 09:40:05");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(T, T), "now");
        assert_eq!(ago(T, T + 5000), "now", "a clock ahead is not negative");
        assert_eq!(ago(T, T - 3400), "3 s ago");
        assert_eq!(ago(T, T - 300_000), "5 min ago");
        assert_eq!(ago(T, T - 3 * 3_600_000), "3 h ago");
        assert_eq!(ago(T, T - 4 * 86_400_000), "4 d ago");
        assert_eq!(ago(T, 0), "never");
    }

    #[test]
    fn numbers_lose_trailing_zeros() {
        assert_eq!(number(2.0, 2), "2");
        assert_eq!(number(0.5, 2), "0.5");
        assert_eq!(number(0.30000000000000004, 2), "0.3");
        assert_eq!(number(-0.0001, 2), "0");
        assert_eq!(number(1500.0, 0), "1500");
        assert_eq!(number(f64::NAN, 2), "–");
        assert_eq!(measured(0.0412), "0.041");
        assert_eq!(measured(12.345), "12.3");
        assert_eq!(measured(940.4), "940");
    }
}
