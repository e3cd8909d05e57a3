//! Alert rules: rhai scripts evaluated against every metrics report an agent produces.
//!
//! Rules come from two places: the thresholds of a task's `alertflow_conditions`, which
//! [`compile_conditions`] turns into readable rhai, and hand-written rule files (see
//! `rules/README.md` for the rule API). A [`RuleSet`] compiles them once and evaluates them
//! report by report under hard limits; [`check`] is what the server runs on a rule when it
//! loads a task.
//!
//! ```
//! use nms::rules::{RuleSet, SampleInput};
//! use nms::wire::{MetricsReport, RuleSource, Sample};
//!
//! let rule = RuleSource {
//!     name: "hot.rhai".into(),
//!     source: r#"if cpu_percent > 90.0 { alert("cpu", 90.0, cpu_percent, "hot") }"#.into(),
//! };
//! let mut rules = RuleSet::compile(&[rule]).unwrap();
//! let report = MetricsReport { task_number: 1, time_ms: 0, samples: vec![Sample::Cpu { percent: 95.0 }] };
//! let evaluation = rules.evaluate(&SampleInput::new("agent-1", "task-1", &report));
//! assert_eq!(evaluation.raised.len(), 1);
//! // Still above 90%: already firing, not raised again.
//! assert!(rules.evaluate(&SampleInput::new("agent-1", "task-1", &report)).raised.is_empty());
//! ```

mod api;
mod compile;
mod engine;
mod error;
mod input;

pub use api::{MAX_MESSAGE_CHARS, is_rule_kind};
pub use compile::{
    CONDITIONS, Condition, LINK_STATE_RULE, Needs, Scale, builtin_rules, compile_conditions,
};
pub use engine::{
    Evaluation, MAX_ARRAY_SIZE, MAX_CALL_LEVELS, MAX_EXPR_DEPTH, MAX_FUNCTION_EXPR_DEPTH,
    MAX_FUNCTIONS, MAX_MAP_SIZE, MAX_OPERATIONS, MAX_STRING_SIZE, MAX_VARIABLES, RaisedAlert,
    ResolvedAlert, RuleSet, check,
};
pub use error::{Location, RuleError};
pub use input::{SampleInput, VARIABLES};
