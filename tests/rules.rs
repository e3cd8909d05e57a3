//! Alert rules: compiled conditions, the shipped rule files, limits, errors, state and
//! de-duplication, driven through the public `nms::rules` API with made-up reports.

use nms::rules::{Evaluation, RuleError, RuleSet, SampleInput, check, compile_conditions};
use nms::wire::{
    AlertConditions, AlertType, LinkState, MetricsReport, RuleSource, Sample, Severity, Transport,
};
use std::path::Path;

const AGENT: &str = "agent-1";
const TASK: &str = "task-1";

fn cpu(percent: f32) -> Sample {
    Sample::Cpu { percent }
}

fn ram(percent: f32) -> Sample {
    Sample::Ram { percent }
}

fn ping(rtt_avg_ms: f32, jitter_ms: f32, loss_percent: f32) -> Sample {
    Sample::Ping {
        rtt_min_ms: rtt_avg_ms * 0.8,
        rtt_avg_ms,
        rtt_max_ms: rtt_avg_ms * 1.2,
        jitter_ms,
        loss_percent,
        received: 0,
        sent: 0,
    }
}

fn iperf(jitter_ms: f32, loss_percent: f32) -> Sample {
    Sample::Iperf {
        transport: Transport::Udp,
        bandwidth_bps: 1.0e8,
        offered_bps: 1.0e8,
        jitter_ms,
        loss_percent,
    }
}

fn interface(name: &str, packets_per_sec: f32, errors_per_sec: f32) -> Sample {
    link(name, LinkState::Up, packets_per_sec, errors_per_sec)
}

fn link(name: &str, state: LinkState, packets_per_sec: f32, errors_per_sec: f32) -> Sample {
    Sample::Interface {
        name: name.to_string(),
        state,
        packets_per_sec,
        bytes_per_sec: packets_per_sec * 500.0,
        errors_per_sec,
        counters: Default::default(),
    }
}

fn rule(name: &str, source: &str) -> RuleSource {
    RuleSource {
        name: name.to_string(),
        source: source.to_string(),
    }
}

fn shipped(file: &str) -> RuleSource {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("rules")
        .join(file);
    let source = std::fs::read_to_string(&path).expect("shipped rule file");
    rule(&format!("rules/{file}"), &source)
}

fn fixture(file: &str) -> RuleSource {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rules")
        .join(file);
    let source = std::fs::read_to_string(&path).expect("fixture rule file");
    rule(&format!("tests/fixtures/rules/{file}"), &source)
}

/// The value of `const NAME = value;` in a rule file, so tests follow the file's settings.
fn constant(source: &RuleSource, name: &str) -> f64 {
    let prefix = format!("const {name} = ");
    source
        .source
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split(';').next())
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("{} has no const {name}", source.name))
}

/// Feeds reports one at a time, with increasing times.
struct Feed {
    rules: RuleSet,
    time_ms: u64,
}

impl Feed {
    fn new(rules: &[RuleSource]) -> Feed {
        Feed {
            rules: RuleSet::compile(rules).expect("rules compile"),
            time_ms: 1_700_000_000_000,
        }
    }

    fn report(&mut self, samples: Vec<Sample>) -> Evaluation {
        self.time_ms += 1000;
        let report = MetricsReport {
            task_number: 1,
            time_ms: self.time_ms,
            samples,
        };
        self.rules.evaluate(&SampleInput::new(AGENT, TASK, &report))
    }
}

fn kinds(evaluation: &Evaluation) -> Vec<(AlertType, String)> {
    evaluation
        .raised
        .iter()
        .map(|a| (a.kind, a.subject.clone()))
        .collect()
}

// ---- compiled conditions ----

/// A reported `f32` as rules see it: the number its shortest decimal form names (80.1, not
/// 80.09999847).
fn as_written(value: f32) -> f64 {
    value.to_string().parse().expect("a number")
}

/// One compiled condition's case: the conditions (one threshold set), the samples of a report
/// with a given value, and the kind and subject of the alert it raises.
type ConditionCase = (
    AlertConditions,
    fn(f32) -> Vec<Sample>,
    AlertType,
    &'static str,
);

/// Every condition, with each of the sample kinds it reads.
fn condition_cases() -> [ConditionCase; 7] {
    [
        (
            AlertConditions {
                cpu_usage: Some(80.0),
                ..Default::default()
            },
            |v| vec![cpu(v)],
            AlertType::Cpu,
            "",
        ),
        (
            AlertConditions {
                ram_usage: Some(60.5),
                ..Default::default()
            },
            |v| vec![ram(v)],
            AlertType::Ram,
            "",
        ),
        (
            AlertConditions {
                interface_stats: Some(1000.0),
                ..Default::default()
            },
            |v| vec![interface("eth0", v, 0.0)],
            AlertType::InterfaceStats,
            "eth0",
        ),
        (
            AlertConditions {
                packet_loss: Some(5.0),
                ..Default::default()
            },
            |v| vec![ping(10.0, 1.0, v)],
            AlertType::PacketLoss,
            "ping",
        ),
        (
            AlertConditions {
                packet_loss: Some(5.0),
                ..Default::default()
            },
            |v| vec![iperf(1.0, v)],
            AlertType::PacketLoss,
            "iperf",
        ),
        (
            AlertConditions {
                jitter: Some(2.5),
                ..Default::default()
            },
            |v| vec![ping(10.0, v, 0.0)],
            AlertType::Jitter,
            "ping",
        ),
        (
            AlertConditions {
                jitter: Some(2.5),
                ..Default::default()
            },
            |v| vec![iperf(v, 0.0)],
            AlertType::Jitter,
            "iperf",
        ),
    ]
}

/// Each condition raises once above its threshold and stays quiet at or below it.
#[test]
fn each_condition_fires_above_its_threshold_and_not_below() {
    for (conditions, samples, kind, subject) in condition_cases() {
        check_condition(&conditions, samples, kind, subject);
    }
}

/// One condition raises once above its threshold and stays quiet at or below it.
fn check_condition(
    conditions: &AlertConditions,
    samples: fn(f32) -> Vec<Sample>,
    kind: AlertType,
    subject: &str,
) {
    let rules = compile_conditions(conditions);
    assert_eq!(rules.len(), 1, "{conditions:?}");
    let threshold = [
        conditions.cpu_usage,
        conditions.ram_usage,
        conditions.interface_stats,
        conditions.packet_loss,
        conditions.jitter,
    ]
    .into_iter()
    .flatten()
    .next()
    .expect("one threshold");

    let above = Feed::new(&rules).report(samples(threshold * 1.1 + 0.5));
    assert_eq!(
        kinds(&above),
        [(kind, subject.to_string())],
        "{}",
        rules[0].source
    );
    let alert = &above.raised[0];
    assert_eq!(alert.rule, rules[0].name);
    assert_eq!(alert.threshold, as_written(threshold));
    assert_eq!(alert.value, as_written(threshold * 1.1 + 0.5));
    assert_eq!(alert.severity, Severity::Warning);
    assert!(above.errors.is_empty(), "{above:?}");

    for value in [threshold, threshold * 0.5] {
        let quiet = Feed::new(&rules).report(samples(value));
        assert!(
            quiet.raised.is_empty() && quiet.errors.is_empty(),
            "{value}: {quiet:?}"
        );
    }
}

#[test]
fn conditions_are_named_readable_rules_that_pass_check() {
    let rules = compile_conditions(&AlertConditions {
        cpu_usage: Some(80.0),
        ram_usage: Some(90.0),
        interface_stats: Some(2000.0),
        packet_loss: Some(5.0),
        jitter: Some(3.0),
    });
    let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "condition:cpu_usage",
            "condition:ram_usage",
            "condition:interface_stats",
            "condition:packet_loss",
            "condition:jitter"
        ]
    );
    assert!(
        rules[0].source.contains("if cpu_percent > 80.0"),
        "{}",
        rules[0].source
    );
    for rule in &rules {
        check(&rule.name, &rule.source).unwrap_or_else(|e| panic!("{e}\n{}", rule.source));
    }
    assert!(compile_conditions(&AlertConditions::default()).is_empty());
}

#[test]
fn interface_condition_fires_per_interface() {
    let rules = compile_conditions(&AlertConditions {
        interface_stats: Some(1000.0),
        ..Default::default()
    });
    let mut feed = Feed::new(&rules);
    let first = feed.report(vec![
        interface("eth0", 5000.0, 0.0),
        interface("lo", 10.0, 0.0),
        interface("wlan0", 1500.0, 0.0),
    ]);
    assert_eq!(
        kinds(&first),
        [
            (AlertType::InterfaceStats, "eth0".to_string()),
            (AlertType::InterfaceStats, "wlan0".to_string())
        ]
    );
    assert!(
        first.raised[0].message.contains("eth0"),
        "{}",
        first.raised[0].message
    );
    // wlan0 calms down while eth0 stays busy: only wlan0 resolves.
    let second = feed.report(vec![
        interface("eth0", 5000.0, 0.0),
        interface("wlan0", 20.0, 0.0),
    ]);
    assert!(second.raised.is_empty());
    let resolved: Vec<&str> = second
        .resolved
        .iter()
        .map(|r| r.alert.subject.as_str())
        .collect();
    assert_eq!(resolved, ["wlan0"]);
}

#[test]
fn a_non_finite_threshold_is_reported_not_ignored() {
    let rules = compile_conditions(&AlertConditions {
        cpu_usage: Some(f32::NAN),
        ..Default::default()
    });
    assert_eq!(rules.len(), 1);
    let error = check(&rules[0].name, &rules[0].source).expect_err("NaN threshold");
    assert!(error.to_string().contains("cpu_usage"), "{error}");
}

// ---- shipped rule files ----

#[test]
fn every_shipped_rule_file_passes_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("rules/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "rhai") {
            let source = std::fs::read_to_string(&path).expect("read");
            check(&path.display().to_string(), &source).unwrap_or_else(|e| panic!("{e}"));
            checked.push(
                path.file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    checked.sort();
    for expected in [
        "interface_errors.rhai",
        "latency_spike.rhai",
        "link_flapping.rhai",
        "ram_in_use.rhai",
        "sustained_cpu.rhai",
    ] {
        assert!(
            checked.iter().any(|c| c == expected),
            "{expected} missing: {checked:?}"
        );
    }
}

#[test]
fn sustained_cpu_fires_only_after_its_run_of_busy_reports() {
    let file = shipped("sustained_cpu.rhai");
    let limit = constant(&file, "LIMIT") as f32;
    let samples = constant(&file, "SAMPLES") as usize;
    assert!(samples >= 2);
    let busy = limit + 5.0;
    let mut feed = Feed::new(&[file]);

    // A run one short, broken by a calm report, then a ping-only report (which neither
    // extends nor breaks a run).
    for _ in 1..samples {
        assert!(feed.report(vec![cpu(busy)]).raised.is_empty());
    }
    assert!(feed.report(vec![cpu(limit - 10.0)]).raised.is_empty());
    for _ in 1..samples {
        assert!(feed.report(vec![cpu(busy)]).raised.is_empty());
        assert!(feed.report(vec![ping(10.0, 1.0, 0.0)]).raised.is_empty());
    }
    let fired = feed.report(vec![cpu(busy)]);
    assert_eq!(kinds(&fired), [(AlertType::Cpu, String::new())]);
    assert_eq!(fired.raised[0].severity, Severity::Critical);
    assert_eq!(fired.raised[0].rule, "rules/sustained_cpu.rhai");
    assert!(
        fired.raised[0].message.contains(&samples.to_string()),
        "{}",
        fired.raised[0].message
    );

    // Still busy: already firing. Calm: resolved.
    assert!(feed.report(vec![cpu(busy)]).raised.is_empty());
    let calm = feed.report(vec![cpu(limit - 10.0)]);
    assert_eq!(calm.resolved.len(), 1);
    assert_eq!(calm.resolved[0].alert.kind, AlertType::Cpu);
}

#[test]
fn latency_spike_fires_on_a_spike_and_resolves_when_latency_settles() {
    let file = shipped("latency_spike.rhai");
    let factor = constant(&file, "FACTOR") as f32;
    let warmup = constant(&file, "WARMUP") as usize;
    let mut feed = Feed::new(&[file]);
    for i in 0..=warmup {
        let rtt = 20.0 + (i % 3) as f32;
        let quiet = feed.report(vec![ping(rtt, 1.0, 0.0)]);
        assert!(
            quiet.raised.is_empty() && quiet.errors.is_empty(),
            "{quiet:?}"
        );
    }
    // Reports without ping, or with every packet lost (RTT not measured), change nothing.
    assert!(feed.report(vec![cpu(50.0)]).raised.is_empty());
    assert!(
        feed.report(vec![ping(f32::NAN, f32::NAN, 100.0)])
            .errors
            .is_empty()
    );

    let spike = feed.report(vec![ping(21.0 * factor * 2.0, 5.0, 0.0)]);
    assert_eq!(kinds(&spike), [(AlertType::Latency, "ping".to_string())]);
    assert!(spike.raised[0].value > spike.raised[0].threshold);

    // A non-ping report does not clear it; a normal RTT does.
    assert!(feed.report(vec![cpu(50.0)]).resolved.is_empty());
    let settled = feed.report(vec![ping(21.0, 1.0, 0.0)]);
    assert_eq!(settled.resolved.len(), 1);
    assert!(settled.raised.is_empty());
}

#[test]
fn interface_errors_warns_escalates_when_rising_and_resolves() {
    let mut feed = Feed::new(&[shipped("interface_errors.rhai")]);
    assert!(
        feed.report(vec![interface("eth0", 100.0, 0.0)])
            .raised
            .is_empty()
    );

    let first = feed.report(vec![
        interface("eth0", 100.0, 2.0),
        interface("eth1", 100.0, 0.0),
    ]);
    assert_eq!(
        kinds(&first),
        [(AlertType::InterfaceStats, "eth0".to_string())]
    );
    assert_eq!(
        first.raised[0].severity,
        Severity::Critical,
        "rising from 0"
    );

    // Steady at 2/s: the critical alert stays, nothing new.
    let steady = feed.report(vec![interface("eth0", 100.0, 2.0)]);
    assert!(steady.raised.is_empty() && steady.resolved.is_empty());

    let cleared = feed.report(vec![interface("eth0", 100.0, 0.0)]);
    assert_eq!(cleared.resolved.len(), 1);

    // Errors on a first report for eth2 (no previous rate): a warning, then critical when rising.
    let warned = feed.report(vec![interface("eth2", 100.0, 1.0)]);
    assert_eq!(warned.raised[0].severity, Severity::Warning);
    let rising = feed.report(vec![interface("eth2", 100.0, 3.0)]);
    assert_eq!(rising.raised.len(), 1);
    assert_eq!(rising.raised[0].severity, Severity::Critical);
    assert_eq!(
        rising.resolved.len(),
        1,
        "the warning it replaces is resolved"
    );
    assert_eq!(rising.resolved[0].alert.severity, Severity::Warning);
}

#[test]
fn ram_in_use_fires_on_an_idle_machine_as_info() {
    let mut feed = Feed::new(&[shipped("ram_in_use.rhai")]);
    let evaluation = feed.report(vec![cpu(2.0), ram(23.4)]);
    assert_eq!(kinds(&evaluation), [(AlertType::Ram, String::new())]);
    assert_eq!(evaluation.raised[0].severity, Severity::Info);
    assert!(
        evaluation.raised[0].message.contains("23.4%"),
        "{}",
        evaluation.raised[0].message
    );
}

// ---- limits and errors ----

#[test]
fn an_endless_loop_is_stopped_and_the_other_rules_still_fire() {
    let conditions = compile_conditions(&AlertConditions {
        cpu_usage: Some(50.0),
        ..Default::default()
    });
    let mut rules = vec![fixture("endless_loop.rhai")];
    rules.extend(conditions);
    let mut feed = Feed::new(&rules);

    let first = feed.report(vec![cpu(90.0)]);
    assert_eq!(first.errors.len(), 1);
    let error = &first.errors[0];
    assert!(matches!(error, RuleError::Limit { .. }), "{error:?}");
    assert_eq!(error.rule(), "tests/fixtures/rules/endless_loop.rhai");
    assert!(error.line_column().is_some(), "{error}");
    assert!(error.to_string().contains("too many operations"), "{error}");
    let raised = kinds(&first);
    assert!(
        raised.contains(&(AlertType::Error, String::new())),
        "{raised:?}"
    );
    assert!(
        raised.contains(&(AlertType::Cpu, String::new())),
        "{raised:?}"
    );
    let error_alert = first
        .raised
        .iter()
        .find(|a| a.kind == AlertType::Error)
        .expect("error alert");
    assert_eq!(error_alert.rule, "tests/fixtures/rules/endless_loop.rhai");
    assert!(error_alert.message.contains("too many operations"));

    // Failing again: logged, but the error alert is not repeated.
    let second = feed.report(vec![cpu(90.0)]);
    assert_eq!(second.errors.len(), 1);
    assert!(second.raised.is_empty(), "{second:?}");

    // Check refuses it too.
    let loop_rule = fixture("endless_loop.rhai");
    assert!(matches!(
        check(&loop_rule.name, &loop_rule.source),
        Err(RuleError::Limit { .. })
    ));
}

#[test]
fn a_failing_rule_keeps_its_state_and_its_error_resolves_when_it_recovers() {
    // Counts reports, but loops forever (after counting) when CPU is above 50%.
    let counter = rule(
        "counter.rhai",
        r#"
        state.count = (state.count ?? 0) + 1;
        if cpu_percent > 50.0 { loop {} }
        alert_for(`report ${state.count}`, "custom", 0.0, state.count, "counted");
        "#,
    );
    let mut feed = Feed::new(&[counter]);
    let subjects =
        |e: &Evaluation| -> Vec<String> { e.raised.iter().map(|a| a.subject.clone()).collect() };
    assert_eq!(subjects(&feed.report(vec![cpu(10.0)])), ["report 1"]);
    let failed = feed.report(vec![cpu(90.0)]);
    assert_eq!(subjects(&failed), [""], "only the error alert");
    let recovered = feed.report(vec![cpu(10.0)]);
    // The failed run's increment was not kept: this is the second counted report.
    assert_eq!(subjects(&recovered), ["report 2"]);
    assert!(
        recovered
            .resolved
            .iter()
            .any(|r| r.alert.kind == AlertType::Error)
    );
}

#[test]
fn endless_recursion_and_huge_strings_hit_limits() {
    for (name, source) in [
        ("recursion.rhai", "fn down(n) { down(n + 1) } down(0);"),
        ("string.rhai", r#"let s = "x"; loop { s += s; }"#),
        ("array.rhai", "let a = []; loop { a.push(1); }"),
    ] {
        let error = check(name, source).expect_err(name);
        assert!(
            matches!(error, RuleError::Limit { .. }),
            "{name}: {error:?}"
        );
        assert!(error.to_string().starts_with(name), "{error}");
    }
}

#[test]
fn a_syntax_error_names_the_file_line_and_column() {
    let bad = fixture("bad_syntax.rhai");
    let error = check(&bad.name, &bad.source).expect_err("syntax error");
    assert!(matches!(error, RuleError::Syntax { .. }), "{error:?}");
    let (line, column) = error.line_column().expect("position");
    assert_eq!(line, 3, "{error}");
    let line_text = bad.source.lines().nth(line - 1).expect("line");
    assert!(
        column > line_text.find("\"CPU high\"").expect("message literal"),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "tests/fixtures/rules/bad_syntax.rhai:3:{column}: syntax error: "
        )),
        "{text}"
    );
    assert!(text.contains("expecting"), "{text}");
    // RuleSet::compile reports the same.
    assert_eq!(RuleSet::compile(&[bad]).expect_err("compile"), error);
}

#[test]
fn a_misspelt_variable_is_caught_when_compiling() {
    let typo = fixture("misspelt_variable.rhai");
    let error = check(&typo.name, &typo.source).expect_err("undefined variable");
    assert!(matches!(error, RuleError::Syntax { .. }), "{error:?}");
    assert_eq!(error.line_column().map(|(l, _)| l), Some(2), "{error}");
    assert!(error.to_string().contains("cpu_percnt"), "{error}");
}

#[test]
fn a_runtime_error_names_the_rule_and_position() {
    let bad = fixture("unknown_kind.rhai");
    let error = check(&bad.name, &bad.source).expect_err("unknown kind");
    assert!(matches!(error, RuleError::Runtime { .. }), "{error:?}");
    assert_eq!(error.line_column().map(|(l, _)| l), Some(2), "{error}");
    let text = error.to_string();
    assert!(
        text.starts_with("tests/fixtures/rules/unknown_kind.rhai:2:"),
        "{text}"
    );
    assert!(text.contains("unknown alert kind 'cpuu'"), "{text}");

    let bad_severity = r#"alert("cpu", 1.0, 2.0, "x", "urgent");"#;
    let error = check("severity.rhai", bad_severity).expect_err("bad severity");
    assert!(
        error.to_string().contains("unknown severity 'urgent'"),
        "{error}"
    );

    let server_kind = r#"alert("agent_down", 1.0, 2.0, "x");"#;
    assert!(
        check("server_kind.rhai", server_kind).is_err(),
        "agent_down is the server's"
    );
}

#[test]
fn scripts_cannot_eval_or_import() {
    for source in [r#"eval("1 + 1");"#, r#"import "os" as os;"#] {
        let error = check("sneaky.rhai", source).expect_err(source);
        assert!(
            matches!(error, RuleError::Syntax { .. }),
            "{source}: {error:?}"
        );
    }
}

#[test]
fn duplicate_rule_names_are_refused() {
    let a = rule("same.rhai", "");
    let error = RuleSet::compile(&[a.clone(), a]).expect_err("duplicate");
    assert_eq!(
        error,
        RuleError::DuplicateName {
            name: "same.rhai".into()
        }
    );
}

// ---- input, state, de-duplication ----

#[test]
fn unmeasured_values_appear_as_unit() {
    let probe = rule(
        "probe.rhai",
        r#"
        let missing = [];
        if cpu_percent == () { missing.push("cpu_percent"); }
        if ram_percent == () { missing.push("ram_percent"); }
        if type_of(ping.rtt_avg_ms) == "()" { missing.push("ping.rtt_avg_ms"); }
        if !measured(ping.jitter_ms) { missing.push("ping.jitter_ms"); }
        if measured(ping.loss_percent) { missing.push(`loss=${ping.loss_percent}`); }
        if iperf == () { missing.push("iperf"); }
        for i in interfaces { if i.errors_per_sec == () { missing.push(i.name + ".errors_per_sec"); } }
        // Comparing () with a number is simply false: threshold rules stay quiet.
        if cpu_percent > 0.0 || cpu_percent < 0.0 { missing.push("compared"); }
        missing.sort();
        let text = "";
        for m in missing { text += if text == "" { m } else { " " + m }; }
        alert("custom", 0.0, 0.0, text);
        "#,
    );
    let mut feed = Feed::new(&[probe]);
    let evaluation = feed.report(vec![
        cpu(f32::NAN),
        ping(f32::NAN, f32::NAN, 100.0),
        interface("eth0", 10.0, f32::NAN),
    ]);
    assert!(evaluation.errors.is_empty(), "{:?}", evaluation.errors);
    assert_eq!(
        evaluation.raised[0].message,
        "cpu_percent eth0.errors_per_sec iperf loss=100.0 ping.jitter_ms ping.rtt_avg_ms ram_percent"
    );
}

#[test]
fn rules_see_agent_task_time_and_samples() {
    let probe = rule(
        "who.rhai",
        r#"alert("custom", 0.0, time_ms, `${agent} ${task} ${samples.len()} ${samples[0].kind} ${ping.rtt_avg_ms}`);"#,
    );
    let mut feed = Feed::new(&[probe]);
    let evaluation = feed.report(vec![ping(12.5, 0.5, 0.0), cpu(3.0)]);
    let alert = &evaluation.raised[0];
    assert_eq!(alert.message, "agent-1 task-1 2 ping 12.5");
    assert_eq!(alert.value, feed.time_ms as f64);
    assert_eq!(alert.time_ms, feed.time_ms);
    let wire = alert.to_alert(42);
    assert_eq!(
        (wire.alert_id, wire.agent.as_str(), wire.task.as_str()),
        (42, AGENT, TASK)
    );
    assert_eq!(
        (wire.rule.as_str(), wire.alert_type),
        ("who.rhai", AlertType::Custom)
    );
}

#[test]
fn inputs_are_read_only_and_state_is_per_rule() {
    let writer = rule("writer.rhai", "cpu_percent = 0.0;");
    let error = check(&writer.name, &writer.source).expect_err("assigning an input");
    assert!(matches!(error, RuleError::Runtime { .. }), "{error:?}");

    let count = |name: &str| {
        rule(
            name,
            r#"state.n = (state.n ?? 0) + 1; alert_for(`${state.n}`, "custom", 0.0, state.n, "n");"#,
        )
    };
    let mut feed = Feed::new(&[count("a.rhai"), count("b.rhai")]);
    for expected in 1..=3 {
        let evaluation = feed.report(vec![]);
        let values: Vec<f64> = evaluation.raised.iter().map(|a| a.value).collect();
        assert_eq!(values, [f64::from(expected); 2]);
    }
}

#[test]
fn a_condition_that_stays_true_raises_once_and_resolves_once() {
    let rules = compile_conditions(&AlertConditions {
        cpu_usage: Some(80.0),
        ..Default::default()
    });
    let mut feed = Feed::new(&rules);
    assert_eq!(feed.report(vec![cpu(95.0)]).raised.len(), 1);
    for value in [96.0, 99.0, 85.0] {
        let again = feed.report(vec![cpu(value)]);
        assert!(
            again.raised.is_empty() && again.resolved.is_empty(),
            "{again:?}"
        );
    }
    // A report without CPU values says nothing about CPU: the alert stays.
    let other = feed.report(vec![ping(10.0, 1.0, 0.0)]);
    assert!(other.resolved.is_empty(), "{other:?}");
    assert_eq!(feed.rules.firing().count(), 1);

    let calm = feed.report(vec![cpu(40.0)]);
    assert_eq!(calm.resolved.len(), 1);
    assert_eq!(calm.resolved[0].alert.value, 95.0, "the alert as raised");
    assert_eq!(calm.resolved[0].time_ms, feed.time_ms);
    assert!(feed.report(vec![cpu(40.0)]).resolved.is_empty());
    assert_eq!(feed.rules.firing().count(), 0);

    // Firing again after it cleared raises a new alert.
    assert_eq!(feed.report(vec![cpu(97.0)]).raised.len(), 1);
}

#[test]
fn check_refuses_a_rule_that_breaks_on_missing_measurements() {
    // Fine while every report has a ping with a measured RTT, but a report without ping (or
    // with every packet lost) makes `ping.rtt_avg_ms` unusable.
    let careless =
        "if ping.rtt_avg_ms * 2.0 > 100.0 { alert(\"latency\", 50.0, ping.rtt_avg_ms, \"slow\"); }";
    let error = check("careless.rhai", careless).expect_err("unguarded ping access");
    assert!(matches!(error, RuleError::Runtime { .. }), "{error:?}");
    assert!(error.to_string().starts_with("careless.rhai:1:"), "{error}");
    assert!(error.to_string().contains("measured("), "a hint: {error}");
    let careful =
        "if ping?.rtt_avg_ms > 50.0 { alert(\"latency\", 50.0, ping.rtt_avg_ms, \"slow\"); }";
    check("careful.rhai", careful).expect("guarded with ?.");
}

#[test]
fn the_readme_examples_pass_check() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/README.md");
    let readme = std::fs::read_to_string(path).expect("rules/README.md");
    let mut blocks = 0;
    for (i, block) in readme.split("```rhai\n").skip(1).enumerate() {
        let source = block.split("```").next().expect("block");
        check(&format!("README example {}", i + 1), source)
            .unwrap_or_else(|e| panic!("{e}\n{source}"));
        blocks += 1;
    }
    assert!(blocks >= 3, "{blocks} examples");
}

#[test]
fn link_flapping_warns_when_a_link_keeps_changing_and_resolves_when_it_settles() {
    let mut feed = Feed::new(&[shipped("link_flapping.rhai")]);
    let report = |feed: &mut Feed, state| feed.report(vec![link("eth0", state, 10.0, 0.0)]);
    // Steady up: nothing.
    for _ in 0..5 {
        let quiet = report(&mut feed, LinkState::Up);
        assert!(
            quiet.raised.is_empty() && quiet.errors.is_empty(),
            "{quiet:?}"
        );
    }
    // Down, up, down: three changes, still quiet; the fourth warns, once.
    for state in [LinkState::Down, LinkState::Up, LinkState::NoCarrier] {
        assert!(report(&mut feed, state).raised.is_empty());
    }
    let flapping = report(&mut feed, LinkState::Up);
    assert_eq!(
        kinds(&flapping),
        [(AlertType::InterfaceStats, "eth0".to_string())]
    );
    assert_eq!(flapping.raised[0].severity, Severity::Warning);
    assert!(report(&mut feed, LinkState::Up).raised.is_empty());
    // Up for a whole window: resolved.
    let mut resolved = 0;
    for _ in 0..10 {
        resolved += report(&mut feed, LinkState::Up).resolved.len();
    }
    assert_eq!(resolved, 1);
}

#[test]
fn a_task_watching_interfaces_alerts_when_one_goes_down_without_being_asked() {
    let task = nms::wire::TaskAssignment {
        task_number: 1,
        task_id: TASK.into(),
        items: vec![nms::wire::WorkItem::MetricsGathering {
            cpu: false,
            ram: false,
            interfaces: vec!["eth0".into()],
            frequency_s: 5,
        }],
        conditions: AlertConditions::default(),
        rules: Vec::new(),
    };
    let mut rules = RuleSet::for_assignment(&task).expect("compiles");
    let mut time_ms = 0;
    let mut report = |state| {
        time_ms += 5000;
        let report = MetricsReport {
            task_number: 1,
            time_ms,
            samples: vec![link("eth0", state, 0.0, 0.0)],
        };
        rules.evaluate(&SampleInput::new(AGENT, TASK, &report))
    };
    assert!(report(LinkState::Up).raised.is_empty());
    let down = report(LinkState::Down);
    assert_eq!(
        kinds(&down),
        [(AlertType::InterfaceStats, "eth0".to_string())]
    );
    assert_eq!(down.raised[0].rule, "builtin:link_state");
    assert_eq!(down.raised[0].severity, Severity::Critical);
    assert_eq!(down.raised[0].message, "interface eth0 is down (set down)");
    // Still down (now without carrier): the same alert keeps firing.
    assert!(report(LinkState::NoCarrier).raised.is_empty());
    assert_eq!(report(LinkState::Up).resolved.len(), 1);
}
