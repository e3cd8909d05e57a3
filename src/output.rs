//! How a command that prints shows its answer: text for people or JSON for programs. One type
//! for `decode`, `inspect`, `send-task` and the commands that act on a server.

/// Text lines (ANSI colours when `color` is true and the command colours anything) or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text {
        color: bool,
    },
    /// JSON: one object per answer (a line, or pretty-printed where the command says so).
    Json,
}

impl Output {
    /// JSON when `json` is asked for, else text, coloured when `color`.
    pub fn chosen(json: bool, color: bool) -> Output {
        if json {
            Output::Json
        } else {
            Output::Text { color }
        }
    }
}

/// `text` in `style` (ANSI colours and weight) when `color`, plain when not.
pub fn paint(text: impl std::fmt::Display, style: owo_colors::Style, color: bool) -> String {
    use owo_colors::OwoColorize;
    if color {
        text.style(style).to_string()
    } else {
        text.to_string()
    }
}
