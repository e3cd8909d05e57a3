//! Aligned text tables for `nms inspect`: columns sized to their widest cell (counted in
//! characters, so sparklines align), numbers right-aligned, colours applied after padding so
//! that escape codes never shift a column, and no trailing spaces.

use owo_colors::{OwoColorize, Style};

/// One cell: its text and, when colour is on, its style.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub text: String,
    pub style: Option<Style>,
}

impl Cell {
    pub fn plain(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            style: None,
        }
    }

    pub fn styled(text: impl Into<String>, style: Style) -> Cell {
        Cell {
            text: text.into(),
            style: Some(style),
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell::plain(text)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::plain(text)
    }
}

/// A column's heading and alignment.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub heading: &'static str,
    pub right: bool,
}

/// A left-aligned column.
pub const fn left(heading: &'static str) -> Column {
    Column {
        heading,
        right: false,
    }
}

/// A right-aligned (numeric) column.
pub const fn right(heading: &'static str) -> Column {
    Column {
        heading,
        right: true,
    }
}

/// Renders the table, each line indented by `indent` spaces.
pub fn render(columns: &[Column], rows: &[Vec<Cell>], color: bool, indent: usize) -> String {
    let width = |i: usize| {
        rows.iter()
            .filter_map(|r| r.get(i))
            .map(|c| c.text.chars().count())
            .chain([columns[i].heading.chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns.len()).map(width).collect();
    let heading: Vec<Cell> = columns
        .iter()
        .map(|c| Cell::styled(c.heading, Style::new().dimmed()))
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&heading).chain(rows) {
        let mut line = " ".repeat(indent);
        for (i, column) in columns.iter().enumerate() {
            let cell = row.get(i).cloned().unwrap_or_default();
            let pad = widths[i].saturating_sub(cell.text.chars().count());
            let last = i + 1 == columns.len();
            let shown = match cell.style {
                Some(style) if color && !cell.text.is_empty() => cell.text.style(style).to_string(),
                _ => cell.text.clone(),
            };
            if column.right {
                line.push_str(&" ".repeat(pad));
                line.push_str(&shown);
            } else {
                line.push_str(&shown);
                if !last {
                    line.push_str(&" ".repeat(pad));
                }
            }
            if !last {
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_numbers_align_right() {
        let rows = vec![
            vec![Cell::from("alpha"), Cell::from("1.5"), Cell::from("x")],
            vec![Cell::from("b"), Cell::from("100.25"), Cell::from("")],
        ];
        let shown = render(
            &[left("NAME"), right("VALUE"), left("NOTE")],
            &rows,
            false,
            2,
        );
        assert_eq!(
            shown,
            "  NAME    VALUE  NOTE\n  alpha     1.5  x\n  b      100.25\n"
        );
    }

    #[test]
    fn colour_does_not_move_columns() {
        let rows = vec![vec![
            Cell::styled("up", Style::new().green()),
            Cell::from("z"),
        ]];
        let plain = render(&[left("STATUS"), left("N")], &rows, false, 0);
        let colored = render(&[left("STATUS"), left("N")], &rows, true, 0);
        assert_ne!(plain, colored);
        let strip = |s: &str| {
            let mut out = String::new();
            let mut escape = false;
            for c in s.chars() {
                match (escape, c) {
                    (_, '\x1b') => escape = true,
                    (true, 'm') => escape = false,
                    (true, _) => {}
                    (false, c) => out.push(c),
                }
            }
            out
        };
        assert_eq!(strip(&colored), plain);
    }
}
