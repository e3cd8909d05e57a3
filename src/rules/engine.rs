//! The rule engine: a [`RuleSet`] compiles its rules once, then evaluates every rule against
//! each metrics report under hard limits, keeps each rule's `state` map between reports, and
//! de-duplicates alerts: an alert is raised when its condition starts to hold and resolved
//! when it stops, not repeated on every report in between.

use super::api::{self, Firing, FiringSink};
use super::error::{Location, RuleError};
use super::input::{SampleInput, declaration_scope};
use crate::wire::{Alert, AlertType, LinkState, Sample, Severity, Transport};
use rhai::module_resolvers::DummyModuleResolver;
use rhai::{AST, Dynamic, Engine, Map, Position};
use std::collections::{BTreeMap, BTreeSet};

/// Most rhai operations one rule may run per evaluation before it is stopped.
pub const MAX_OPERATIONS: u64 = 100_000;
/// Deepest nesting of function calls.
pub const MAX_CALL_LEVELS: usize = 16;
/// Deepest nesting of expressions (at the top level, and inside functions).
pub const MAX_EXPR_DEPTH: usize = 64;
pub const MAX_FUNCTION_EXPR_DEPTH: usize = 32;
/// Longest string a rule may build, in bytes.
pub const MAX_STRING_SIZE: usize = 4096;
/// Most elements in one array, and entries in one object map (the `state` map included).
pub const MAX_ARRAY_SIZE: usize = 1024;
pub const MAX_MAP_SIZE: usize = 256;
/// Most variables alive at once, and functions a rule may define.
pub const MAX_VARIABLES: usize = 256;
pub const MAX_FUNCTIONS: usize = 64;

/// An alert a rule raised on this report (and had not raised already).
#[derive(Debug, Clone, PartialEq)]
pub struct RaisedAlert {
    /// The rule's name: the rule file's path, or `condition:<name>`.
    pub rule: String,
    pub agent: String,
    pub task: String,
    pub kind: AlertType,
    pub severity: Severity,
    /// What the alert is about within the rule: an interface name, `ping`, `iperf`, or empty.
    pub subject: String,
    pub threshold: f64,
    pub value: f64,
    pub message: String,
    /// The report's time, Unix milliseconds.
    pub time_ms: u64,
}

impl RaisedAlert {
    fn new(rule: &str, input: &SampleInput<'_>, firing: Firing) -> RaisedAlert {
        RaisedAlert {
            rule: rule.to_string(),
            agent: input.agent.to_string(),
            task: input.task.to_string(),
            kind: firing.kind,
            severity: firing.severity,
            subject: firing.subject,
            threshold: firing.threshold,
            value: firing.value,
            message: firing.message,
            time_ms: input.time_ms,
        }
    }

    /// The AlertFlow alert to send; `alert_id` is the caller's random id.
    pub fn to_alert(&self, alert_id: u64) -> Alert {
        Alert {
            alert_id,
            resolves: 0,
            agent: self.agent.clone(),
            task: self.task.clone(),
            alert_type: self.kind,
            severity: self.severity,
            value: self.value,
            threshold: self.threshold,
            time_ms: self.time_ms,
            rule: self.rule.clone(),
            message: self.message.clone(),
            subject: crate::wire::alertflow::clip_subject(&self.subject),
        }
    }
}

/// An alert that was firing and no longer is.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedAlert {
    /// The alert as it was raised.
    pub alert: RaisedAlert,
    /// The time of the report on which it no longer held, Unix milliseconds.
    pub time_ms: u64,
}

/// What one report did to the alerts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Alerts that started firing (or escalated to a higher severity) on this report. A rule
    /// that fails raises one `error` alert here (kind [`AlertType::Error`], naming the rule and
    /// the error), once until it runs cleanly again.
    pub raised: Vec<RaisedAlert>,
    /// Alerts that stopped firing on this report.
    pub resolved: Vec<ResolvedAlert>,
    /// Every rule failure on this report, for logs; each rule's first failure is also in
    /// `raised` as an `error` alert.
    pub errors: Vec<RuleError>,
}

struct CompiledRule {
    name: String,
    ast: AST,
    state: Map,
    /// Alerts firing now, by (kind, subject).
    active: BTreeMap<(u8, String), RaisedAlert>,
    /// The `error` alert raised when the rule failed, until it runs cleanly again.
    failing: Option<RaisedAlert>,
}

/// Compiled rules and the state each keeps between reports. Build one per task.
pub struct RuleSet {
    engine: Engine,
    sink: FiringSink,
    rules: Vec<CompiledRule>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.names().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The rhai engine every rule runs in: the standard library, the rule API, hard limits, no
/// `eval`, no `import`, and `print`/`debug` output discarded.
fn rule_engine(sink: &FiringSink) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FUNCTION_EXPR_DEPTH)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_MAP_SIZE)
        .set_max_variables(MAX_VARIABLES)
        .set_max_functions(MAX_FUNCTIONS)
        .set_max_modules(0)
        .set_strict_variables(true)
        .set_module_resolver(DummyModuleResolver::new())
        .disable_symbol("eval")
        .disable_symbol("import")
        .on_print(|_| {})
        .on_debug(|_, _, _| {});
    api::register(&mut engine, sink);
    engine
}

impl RuleSet {
    /// Compiles every rule; the first that does not compile (or a repeated name) is the error.
    pub fn compile(rules: &[crate::wire::RuleSource]) -> Result<RuleSet, RuleError> {
        let sink = FiringSink::default();
        let engine = rule_engine(&sink);
        let declared = declaration_scope();
        let mut names = BTreeSet::new();
        let mut compiled = Vec::with_capacity(rules.len());
        for rule in rules {
            if !names.insert(rule.name.as_str()) {
                return Err(RuleError::DuplicateName {
                    name: rule.name.clone(),
                });
            }
            let ast = engine
                .compile_with_scope(&declared, &rule.source)
                .map_err(|e| RuleError::from_parse(&rule.name, &e))?;
            compiled.push(CompiledRule {
                name: rule.name.clone(),
                ast,
                state: Map::new(),
                active: BTreeMap::new(),
                failing: None,
            });
        }
        Ok(RuleSet {
            engine,
            sink,
            rules: compiled,
        })
    }

    /// The rules of a task: the built-in rules (a watched interface going down), its compiled
    /// `alertflow_conditions`, then its rule files.
    pub fn for_assignment(task: &crate::wire::TaskAssignment) -> Result<RuleSet, RuleError> {
        let interfaces = task.items.iter().any(|item| {
            matches!(item, crate::wire::WorkItem::MetricsGathering { interfaces, .. } if !interfaces.is_empty())
        });
        let mut rules = super::builtin_rules(interfaces);
        rules.extend(super::compile_conditions(&task.conditions));
        rules.extend(task.rules.iter().cloned());
        RuleSet::compile(&rules)
    }

    /// The rules' names, in evaluation order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The alerts firing now (raised and not yet resolved), rule by rule.
    pub fn firing(&self) -> impl Iterator<Item = &RaisedAlert> {
        self.rules
            .iter()
            .flat_map(|r| r.failing.iter().chain(r.active.values()))
    }

    /// Runs every rule on one report. A rule that fails or hits a limit keeps its previous
    /// state and alerts, is reported in `errors` (and once as an `error` alert), and the
    /// other rules still run.
    pub fn evaluate(&mut self, input: &SampleInput<'_>) -> Evaluation {
        let inputs = input.scope();
        let mut evaluation = Evaluation::default();
        for rule in &mut self.rules {
            let mut scope = inputs.clone();
            scope.push("state", rule.state.clone());
            self.sink.take();
            let outcome = self
                .engine
                .eval_ast_with_scope::<Dynamic>(&mut scope, &rule.ast)
                .map_err(|e| RuleError::from_eval(&rule.name, *e))
                .and_then(|_| {
                    scope
                        .get_value::<Map>("state")
                        .ok_or_else(|| RuleError::Runtime {
                            at: Location::new(&rule.name, Position::NONE),
                            message: "`state` must stay an object map".to_string(),
                        })
                });
            let firings = self.sink.take();
            match outcome {
                Ok(state) => {
                    rule.state = state;
                    if let Some(alert) = rule.failing.take() {
                        evaluation.resolved.push(ResolvedAlert {
                            alert,
                            time_ms: input.time_ms,
                        });
                    }
                    rule.update(input, firings, &mut evaluation);
                }
                Err(error) => {
                    if rule.failing.is_none() {
                        let failure = Firing {
                            kind: AlertType::Error,
                            severity: Severity::Warning,
                            subject: String::new(),
                            threshold: 0.0,
                            value: 0.0,
                            message: format!("rule failed: {error}"),
                        };
                        let alert = RaisedAlert::new(&rule.name, input, failure);
                        evaluation.raised.push(alert.clone());
                        rule.failing = Some(alert);
                    }
                    evaluation.errors.push(error);
                }
            }
        }
        evaluation
    }
}

impl CompiledRule {
    /// De-duplicates this run's alerts against those already firing.
    fn update(&mut self, input: &SampleInput<'_>, firings: Vec<Firing>, out: &mut Evaluation) {
        let mut seen = BTreeSet::new();
        for firing in firings {
            let key = (firing.kind as u8, firing.subject.clone());
            if !seen.insert(key.clone()) {
                continue;
            }
            let alert = RaisedAlert::new(&self.name, input, firing);
            match self.active.get(&key) {
                Some(active) if active.severity >= alert.severity => {}
                _ => {
                    if let Some(lower) = self.active.insert(key, alert.clone()) {
                        out.resolved.push(ResolvedAlert {
                            alert: lower,
                            time_ms: input.time_ms,
                        });
                    }
                    out.raised.push(alert);
                }
            }
        }
        let ended: Vec<(u8, String)> = self
            .active
            .iter()
            .filter(|(key, alert)| !seen.contains(*key) && covers(input, alert))
            .map(|(key, _)| key.clone())
            .collect();
        for key in ended {
            if let Some(alert) = self.active.remove(&key) {
                out.resolved.push(ResolvedAlert {
                    alert,
                    time_ms: input.time_ms,
                });
            }
        }
    }
}

/// Whether the report carries the measurement a firing alert is about, so that the rule not
/// raising it again means it cleared (a ping-only report does not clear a CPU alert).
fn covers(input: &SampleInput<'_>, alert: &RaisedAlert) -> bool {
    match alert.kind {
        AlertType::Cpu => input.has_cpu(),
        AlertType::Ram => input.has_ram(),
        AlertType::InterfaceStats => input.has_interface(&alert.subject),
        AlertType::Bandwidth => input.has_iperf(),
        AlertType::Jitter | AlertType::PacketLoss | AlertType::Latency | AlertType::Timeout => {
            match alert.subject.as_str() {
                "ping" => input.has_ping(),
                "iperf" => input.has_iperf(),
                _ => input.has_ping() || input.has_iperf(),
            }
        }
        _ => true,
    }
}

/// Checks one rule as the server does when it loads a task: it must compile, and run without
/// error or hitting a limit on a few made-up reports, in this order and sharing state as real
/// reports do: every value high; every value low; every value unmeasured (NaN, seen as `()`);
/// no samples at all (a report from another work item of the task); every value high again.
/// A rule that fails on the unmeasured or empty report would fail in service on a ping whose
/// packets were all lost, or on a report that carries no ping at all.
pub fn check(name_or_path: &str, source: &str) -> Result<(), RuleError> {
    let mut set = RuleSet::compile(&[crate::wire::RuleSource {
        name: name_or_path.to_string(),
        source: source.to_string(),
    }])?;
    let busy = trial_samples(|busy, _| busy);
    let calm = trial_samples(|_, calm| calm);
    let unmeasured = trial_samples(|_, _| f32::NAN);
    for samples in [&busy, &calm, &unmeasured, &Vec::new(), &busy] {
        let input = SampleInput {
            agent: "check",
            task: "check",
            time_ms: 0,
            samples,
        };
        if let Some(error) = set.evaluate(&input).errors.into_iter().next() {
            return Err(error);
        }
    }
    Ok(())
}

/// One sample of each kind; `value(busy, calm)` picks each figure.
fn trial_samples(value: impl Fn(f32, f32) -> f32) -> Vec<Sample> {
    vec![
        Sample::Cpu {
            percent: value(100.0, 1.0),
        },
        Sample::Ram {
            percent: value(99.0, 1.0),
        },
        Sample::Interface {
            name: "eth0".to_string(),
            state: match value(2.0, 1.0) {
                v if v.is_nan() => LinkState::Unknown,
                v if v > 1.5 => LinkState::Down,
                _ => LinkState::Up,
            },
            packets_per_sec: value(1.0e6, 10.0),
            bytes_per_sec: value(1.0e9, 1000.0),
            errors_per_sec: value(100.0, 0.0),
            counters: Default::default(),
        },
        Sample::Ping {
            rtt_min_ms: value(500.0, 0.5),
            rtt_avg_ms: value(1000.0, 1.0),
            rtt_max_ms: value(2000.0, 1.5),
            jitter_ms: value(500.0, 0.1),
            loss_percent: value(100.0, 0.0),
            received: 0,
            sent: 0,
        },
        Sample::Iperf {
            transport: Transport::Udp,
            bandwidth_bps: value(1.0e3, 1.0e9),
            offered_bps: value(1.0e8, 1.0e9),
            jitter_ms: value(500.0, 0.1),
            loss_percent: value(100.0, 0.0),
        },
    ]
}
