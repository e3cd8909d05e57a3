//! The text being built by the renderers: title, sections and `name  value` fields, aligned
//! and optionally coloured when finished.

use owo_colors::Style;
use std::fmt::Display;

/// A decimal (SI) rendering: 94300000 -> "94.3 M".
pub(super) fn si(v: f64) -> Option<String> {
    let (div, prefix) = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|(div, _)| v.abs() >= *div)?;
    let scaled = v / div;
    let text = format!("{scaled:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    Some(format!("{text} {prefix}"))
}

/// The text being built: lines of `name  value`, aligned when finished.
pub(super) struct Doc {
    color: bool,
    lines: Vec<Line>,
}

pub(super) enum Line {
    Title(String),
    Section(String),
    Field {
        depth: usize,
        name: String,
        value: String,
    },
}

impl Doc {
    pub(super) fn new(color: bool) -> Doc {
        Doc {
            color,
            lines: Vec::new(),
        }
    }

    pub(super) fn paint(&self, text: impl Display, style: Style) -> String {
        crate::output::paint(text, style, self.color)
    }

    pub(super) fn title(&mut self, text: String) {
        self.lines.push(Line::Title(text));
    }

    pub(super) fn section(&mut self, name: &str) {
        let name = self.paint(name, Style::new().bold());
        self.lines.push(Line::Section(name));
    }

    pub(super) fn field(&mut self, depth: usize, name: &str, value: impl Into<String>) {
        self.lines.push(Line::Field {
            depth,
            name: name.to_string(),
            value: value.into(),
        });
    }

    /// A measured value with its unit, or "not measured" for NaN.
    pub(super) fn measured(&self, v: impl Into<f64> + Display + Copy, unit: &str) -> String {
        if v.into().is_nan() {
            self.paint("not measured", Style::new().yellow())
        } else if unit.is_empty() {
            v.to_string()
        } else {
            format!("{v} {unit}")
        }
    }

    /// A rate with its unit, followed by the SI-scaled value when it is large.
    pub(super) fn rate(&self, v: f32, unit: &str) -> String {
        let plain = self.measured(v, unit);
        match si(v.into()) {
            Some(scaled) if !v.is_nan() => {
                let unit = if unit == "bps" { "bit/s" } else { unit };
                format!("{plain} ({scaled}{unit})")
            }
            _ => plain,
        }
    }

    pub(super) fn finish(self) -> String {
        let width = self
            .lines
            .iter()
            .filter_map(|l| match l {
                Line::Field { depth, name, .. } => Some(2 * depth + name.chars().count()),
                _ => None,
            })
            .max()
            .unwrap_or(0)
            + 2;
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Title(text) | Line::Section(text) => {
                    out.push_str(text);
                }
                Line::Field { depth, name, value } => {
                    let indent = 2 * depth;
                    let padded = format!("{:indent$}{name:<w$}", "", w = width - indent);
                    let padded = if name.is_empty() {
                        padded
                    } else {
                        self.paint(padded, Style::new().dimmed())
                    };
                    out.push_str(&padded);
                    out.push_str(value);
                }
            }
            let trimmed = out.trim_end_matches(' ').len();
            out.truncate(trimmed);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_rates_are_also_scaled() {
        let doc = Doc::new(false);
        assert_eq!(doc.rate(94_300_000.0, "bps"), "94300000 bps (94.3 Mbit/s)");
        assert_eq!(doc.rate(512.0, "B/s"), "512 B/s");
        assert_eq!(doc.rate(f32::NAN, "bps"), "not measured");
    }
}
