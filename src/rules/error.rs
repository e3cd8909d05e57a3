//! Rule errors: every one names the rule (its file path for rule files) and, where rhai knows
//! it, the line and column, in the `file:line:column: ...` form editors and terminals link to.

use rhai::{EvalAltResult, ParseError, Position};
use std::fmt;

/// Where in a rule something went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The rule's name: a rule file's path, or `condition:<name>` for a compiled condition.
    pub rule: String,
    /// 1-based line and column, when known.
    pub line_column: Option<(usize, usize)>,
}

impl Location {
    pub(crate) fn new(rule: &str, position: Position) -> Location {
        let line_column = position
            .line()
            .map(|line| (line, position.position().unwrap_or(1)));
        Location {
            rule: rule.to_string(),
            line_column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line_column {
            Some((line, column)) => write!(f, "{}:{line}:{column}", self.rule),
            None => f.write_str(&self.rule),
        }
    }
}

/// What can go wrong when compiling or evaluating a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The source does not parse (or uses a forbidden keyword such as `eval` or `import`, or
    /// a variable that is neither an input nor declared).
    #[error("{at}: syntax error: {message}")]
    Syntax { at: Location, message: String },
    /// The rule failed while running (wrong types, a bad `alert` call, `throw`, ...).
    #[error("{at}: runtime error: {message}")]
    Runtime { at: Location, message: String },
    /// The rule hit one of the hard limits (operations, call depth, data size) and was stopped.
    #[error("{at}: stopped: {message}")]
    Limit { at: Location, message: String },
    /// Two rules in one set share a name, so their alerts could not be told apart.
    #[error("{name}: two rules have this name")]
    DuplicateName { name: String },
}

impl RuleError {
    /// The name of the rule the error is about.
    pub fn rule(&self) -> &str {
        match self {
            RuleError::Syntax { at, .. }
            | RuleError::Runtime { at, .. }
            | RuleError::Limit { at, .. } => &at.rule,
            RuleError::DuplicateName { name } => name,
        }
    }

    /// The position in the rule's source, when known.
    pub fn line_column(&self) -> Option<(usize, usize)> {
        match self {
            RuleError::Syntax { at, .. }
            | RuleError::Runtime { at, .. }
            | RuleError::Limit { at, .. } => at.line_column,
            RuleError::DuplicateName { .. } => None,
        }
    }

    pub(crate) fn from_parse(rule: &str, error: &ParseError) -> RuleError {
        RuleError::Syntax {
            at: Location::new(rule, error.position()),
            message: lowercase_first(&error.err_type().to_string()),
        }
    }

    /// Converts a rhai evaluation error, pointing at the innermost failing position (inside a
    /// script-defined function rather than at its call) and naming the functions it was in.
    pub(crate) fn from_eval(rule: &str, error: EvalAltResult) -> RuleError {
        let mut error = error;
        let mut calls = Vec::new();
        while let EvalAltResult::ErrorInFunctionCall(name, _, inner, _) = error {
            calls.push(name);
            error = *inner;
        }
        let position = error.take_position();
        let at = Location::new(rule, position);
        let limit = matches!(
            error,
            EvalAltResult::ErrorTooManyOperations(_)
                | EvalAltResult::ErrorTooManyVariables(_)
                | EvalAltResult::ErrorTooManyModules(_)
                | EvalAltResult::ErrorStackOverflow(_)
                | EvalAltResult::ErrorDataTooLarge(..)
        );
        let mut message = match &error {
            EvalAltResult::ErrorTooManyOperations(_) => format!(
                "too many operations (more than {} in one evaluation; an endless loop?)",
                super::engine::MAX_OPERATIONS
            ),
            EvalAltResult::ErrorStackOverflow(_) => format!(
                "too many nested function calls (more than {}; endless recursion?)",
                super::engine::MAX_CALL_LEVELS
            ),
            EvalAltResult::ErrorRuntime(value, _) if value.is_string() => value.to_string(),
            EvalAltResult::ErrorFunctionNotFound(signature, _) if signature.contains("()") => {
                format!(
                    "function not found: {signature}; a value is () (not measured or not in \
                     this report): check it with measured(x), or use ?. or ??"
                )
            }
            other => lowercase_first(&other.to_string()),
        };
        for name in calls.iter().rev() {
            message.push_str(&format!(" (in function '{name}')"));
        }
        if limit {
            RuleError::Limit { at, message }
        } else {
            RuleError::Runtime { at, message }
        }
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
