//! `nms inspect --task FILE`: what a task file means, without a server. The file is validated
//! as the server would (`nms::task::load`); each device's measurements and thresholds are listed,
//! with the rhai each threshold compiles to and whether each hand-written rule file reads and
//! checks (`nms::rules::check`), and the iperf plan (when each iperf test runs), so a task can be
//! debugged before it is sent.

use crate::rules::{self, RuleSet};
use crate::send_task::read_rule_file;
use crate::task::{
    self, Device, IperfMetrics, IperfPlan, IperfTarget, PlannedItem, Task, TaskError,
};
use crate::wire::{RuleSource, Transport};
use owo_colors::{OwoColorize, Style};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where a rule of a device comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOrigin {
    /// A rule every agent runs without being asked (a watched interface going down).
    Builtin,
    /// A threshold of `alertflow_conditions`, compiled to rhai.
    Condition,
    /// A hand-written rule file.
    File(PathBuf),
}

/// One rule of a device and how it checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCheck {
    /// The name agents know the rule by: `condition:<field>`, or the rule file's name.
    pub name: String,
    pub origin: RuleOrigin,
    /// The rhai source, when it could be read.
    pub source: Option<String>,
    /// Why it cannot be used (unreadable, syntax error, fails its trial run), if so.
    pub problem: Option<String>,
}

/// One device's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceCheck {
    pub device_id: String,
    pub rules: Vec<RuleCheck>,
    /// Why the rules cannot run together (two share a name), if so.
    pub problem: Option<String>,
}

/// One task of the file and the check of each of its devices.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskCheck {
    pub task: Task,
    pub devices: Vec<DeviceCheck>,
}

/// The result of inspecting a task file.
#[derive(Debug)]
pub struct FileCheck {
    pub file: String,
    pub result: Result<Vec<TaskCheck>, TaskError>,
    /// When each iperf test of the file runs (empty when the file is invalid).
    pub plan: IperfPlan,
}

/// Loads and validates `path` and checks every rule of every device.
pub fn check_file(path: &Path) -> FileCheck {
    let loaded = task::load(path);
    let plan = match &loaded {
        Ok(tasks) => IperfPlan::build(tasks),
        Err(_) => IperfPlan::default(),
    };
    FileCheck {
        file: path.display().to_string(),
        result: loaded.map(|tasks| {
            tasks
                .into_iter()
                .map(|task| TaskCheck {
                    devices: task.devices.iter().map(check_device).collect(),
                    task,
                })
                .collect()
        }),
        plan,
    }
}

fn check_device(device: &Device) -> DeviceCheck {
    let interfaces = device.items.iter().any(
        |item| matches!(item, PlannedItem::MetricsGathering { interfaces, .. } if !interfaces.is_empty()),
    );
    let builtin = rules::builtin_rules(interfaces)
        .into_iter()
        .map(|rule| (rule, RuleOrigin::Builtin));
    let conditions = rules::compile_conditions(&device.conditions)
        .into_iter()
        .map(|rule| (rule, RuleOrigin::Condition));
    let mut checks: Vec<RuleCheck> = builtin
        .chain(conditions)
        .map(|(rule, origin)| RuleCheck {
            problem: rules::check(&rule.name, &rule.source)
                .err()
                .map(|e| e.to_string()),
            name: rule.name,
            origin,
            source: Some(rule.source),
        })
        .collect();
    for path in &device.rule_files {
        let shown = path.display().to_string();
        let (source, problem) = match read_rule_file(path) {
            Ok(source) => {
                let problem = rules::check(&shown, &source).err().map(|e| e.to_string());
                (Some(source), problem)
            }
            Err(e) => (None, Some(crate::log::error_chain(&e))),
        };
        checks.push(RuleCheck {
            // The server names a rule file's rule by its file name.
            name: path
                .file_name()
                .map_or(shown.clone(), |n| n.to_string_lossy().into_owned()),
            origin: RuleOrigin::File(path.clone()),
            source,
            problem,
        });
    }
    // Rules that check one by one must also load together, as the agent loads them.
    let problem = if checks.iter().all(|c| c.problem.is_none()) {
        let all: Vec<RuleSource> = checks
            .iter()
            .map(|c| RuleSource {
                name: c.name.clone(),
                source: c.source.clone().unwrap_or_default(),
            })
            .collect();
        RuleSet::compile(&all)
            .err()
            .map(|e| format!("device {}: {e}", device.device_id))
    } else {
        None
    };
    DeviceCheck {
        device_id: device.device_id.clone(),
        rules: checks,
        problem,
    }
}

impl FileCheck {
    /// Every reason the file cannot be sent, in order.
    pub fn problems(&self) -> Vec<String> {
        match &self.result {
            Err(e) => vec![e.to_string()],
            Ok(tasks) => tasks
                .iter()
                .flat_map(|t| &t.devices)
                .flat_map(|d| {
                    d.rules
                        .iter()
                        .filter_map(|r| r.problem.clone())
                        .chain(d.problem.clone())
                })
                .collect(),
        }
    }

    /// `{valid, error?, file, tasks: [task with, per device, its rules]}`.
    pub fn to_json(&self) -> Value {
        let problems = self.problems();
        let tasks: Vec<Value> = match &self.result {
            Err(_) => Vec::new(),
            Ok(tasks) => tasks.iter().map(task_json).collect(),
        };
        let mut out = json!({
            "valid": problems.is_empty(),
            "file": self.file,
            "tasks": tasks,
            "iperf_plan": self.plan,
        });
        if let Some(first) = problems.first() {
            out["error"] = json!(first);
        }
        out
    }
}

fn task_json(check: &TaskCheck) -> Value {
    let mut value = serde_json::to_value(&check.task).unwrap_or(Value::Null);
    if let Some(devices) = value.get_mut("devices").and_then(Value::as_array_mut) {
        for (device, device_check) in devices.iter_mut().zip(&check.devices) {
            let rules: Vec<Value> = device_check
                .rules
                .iter()
                .map(|r| {
                    let mut rule = json!({
                        "name": r.name,
                        "kind": match r.origin {
                            RuleOrigin::Builtin => "builtin",
                            RuleOrigin::Condition => "condition",
                            RuleOrigin::File(_) => "file",
                        },
                        "ok": r.problem.is_none(),
                        "source": r.source,
                    });
                    if let RuleOrigin::File(path) = &r.origin {
                        rule["path"] = json!(path.display().to_string());
                    }
                    if let Some(problem) = &r.problem {
                        rule["error"] = json!(problem);
                    }
                    rule
                })
                .collect();
            device["rules"] = json!(rules);
            if let Some(problem) = &device_check.problem {
                device["error"] = json!(problem);
            }
        }
    }
    value
}

/// A planned measurement in a few words: `ping 10.0.0.1 x5 every 20s`.
pub fn describe(item: &PlannedItem) -> String {
    match item {
        PlannedItem::Probe(p) => p.describe(),
        PlannedItem::MetricsGathering {
            cpu,
            ram,
            interfaces,
            frequency_s,
        } => crate::wire::WorkItem::MetricsGathering {
            cpu: *cpu,
            ram: *ram,
            interfaces: interfaces.clone(),
            frequency_s: *frequency_s,
        }
        .describe(),
        PlannedItem::Ping {
            destination,
            packet_count,
            interval_ms,
            frequency_s,
        } => crate::wire::WorkItem::Ping {
            destination: destination.clone(),
            packet_count: *packet_count,
            interval_ms: *interval_ms,
            frequency_s: *frequency_s,
        }
        .describe(),
        PlannedItem::IperfClient {
            server,
            port,
            duration_s,
            transport,
            rate_bps,
            frequency_s,
            measures,
        } => {
            let server = match server {
                IperfTarget::Address(a) => a.clone(),
                IperfTarget::Device(d) => format!("device {d}"),
            };
            let rate = if *rate_bps > 0 {
                format!(" at {}", crate::wire::task::rate_text(*rate_bps))
            } else {
                String::new()
            };
            format!(
                "iperf3 client to {server} port {port} ({}{rate}, {duration_s} s) every \
                 {frequency_s} s: {}",
                transport_word(*transport),
                watched(measures).join(", ")
            )
        }
        PlannedItem::IperfServer {
            port,
            duration_s,
            transport,
            frequency_s,
            address,
            ..
        } => {
            let at = address
                .as_ref()
                .map_or(String::new(), |a| format!(", reached at {a}"));
            format!(
                "iperf3 server on port {port}{at} for a {} test of {duration_s} s every \
                 {frequency_s} s",
                transport_word(*transport)
            )
        }
    }
}

fn transport_word(transport: Transport) -> &'static str {
    match transport {
        Transport::Tcp => "tcp",
        Transport::Udp => "udp",
    }
}

/// The figures an iperf client watches, by name.
fn watched(measures: &IperfMetrics) -> Vec<&'static str> {
    [
        (measures.bandwidth, "bandwidth"),
        (measures.jitter, "jitter"),
        (measures.packet_loss, "packet loss"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// The thresholds that are set: `cpu_usage > 90 %`.
fn thresholds(device: &Device) -> Vec<String> {
    let c = &device.conditions;
    [
        ("cpu_usage", c.cpu_usage, "%"),
        ("ram_usage", c.ram_usage, "%"),
        ("interface_stats", c.interface_stats, "packets/s"),
        ("packet_loss", c.packet_loss, "%"),
        ("jitter", c.jitter, "ms"),
    ]
    .into_iter()
    .filter_map(|(name, value, unit)| value.map(|v| format!("{name} > {v} {unit}")))
    .collect()
}

/// Paints text with a style when the output is in colour, and leaves it plain when not.
#[derive(Clone, Copy)]
struct Painter {
    color: bool,
}

impl Painter {
    fn paint(self, text: &str, style: Style) -> String {
        if self.color {
            text.style(style).to_string()
        } else {
            text.to_string()
        }
    }
}

/// The check as text: a verdict line, then per task and device its measurements, thresholds and
/// rules (each with `ok` or its error; with `show_rhai`, the rhai each threshold compiles to).
pub fn render(check: &FileCheck, color: bool, show_rhai: bool) -> String {
    let p = Painter { color };
    let mut out = String::new();
    let tasks = match &check.result {
        Err(e) => {
            let _ = writeln!(
                out,
                "{}: {}",
                check.file,
                p.paint("invalid", Style::new().red().bold())
            );
            let _ = writeln!(out, "  {e}");
            return out;
        }
        Ok(tasks) => tasks,
    };
    let verdict = if check.problems().is_empty() {
        p.paint("valid", Style::new().green().bold())
    } else {
        p.paint("invalid", Style::new().red().bold())
    };
    let count = match tasks.len() {
        1 => "1 task".to_string(),
        n => format!("{n} tasks"),
    };
    let _ = writeln!(out, "{}: {verdict} ({count})", check.file);
    for t in tasks {
        render_task(&mut out, p, t, show_rhai);
    }
    render_plan(&mut out, p, &check.plan);
    out
}

/// A task's heading, then each of its devices.
fn render_task(out: &mut String, p: Painter, t: &TaskCheck, show_rhai: bool) {
    let task = &t.task;
    let _ = writeln!(
        out,
        "\n{} {}  ({} dialect, every {} s)",
        p.paint("task", Style::new().bold()),
        p.paint(&task.task_id, Style::new().bold()),
        task.dialect,
        task.frequency_s
    );
    for (device, device_check) in task.devices.iter().zip(&t.devices) {
        render_device(out, p, device, device_check, show_rhai);
    }
}

/// A device's measurements, thresholds, notes and rules, and why its rules cannot run together.
fn render_device(
    out: &mut String,
    p: Painter,
    device: &Device,
    device_check: &DeviceCheck,
    show_rhai: bool,
) {
    let _ = writeln!(
        out,
        "  device {}",
        p.paint(&device.device_id, Style::new().bold())
    );
    for (i, item) in device.items.iter().enumerate() {
        let label = if i == 0 { "measures" } else { "" };
        let _ = writeln!(out, "    {label:<10}  {}", describe(item));
    }
    let set = thresholds(device);
    let shown = if set.is_empty() {
        "none".to_string()
    } else {
        set.join(", ")
    };
    let _ = writeln!(out, "    {:<10}  {shown}", "thresholds");
    for note in &device.notes {
        let _ = writeln!(
            out,
            "    {:<10}  {}",
            "note",
            p.paint(note, Style::new().yellow())
        );
    }
    for rule in &device_check.rules {
        render_rule(out, p, rule, show_rhai);
    }
    if let Some(problem) = &device_check.problem {
        let _ = writeln!(
            out,
            "    {}",
            p.paint(&format!("error: {problem}"), Style::new().red())
        );
    }
}

/// A rule and its status; a built-in or condition rule shows its rhai when it fails or when
/// `show_rhai` asks.
fn render_rule(out: &mut String, p: Painter, rule: &RuleCheck, show_rhai: bool) {
    let status = match &rule.problem {
        None => p.paint("ok", Style::new().green()),
        Some(problem) => p.paint(&format!("error: {problem}"), Style::new().red()),
    };
    match &rule.origin {
        RuleOrigin::Builtin | RuleOrigin::Condition => {
            let _ = writeln!(out, "    rule {}  {status}", rule.name);
            if !show_rhai && rule.problem.is_none() {
                return;
            }
            for line in rule.source.iter().flat_map(|s| s.lines()) {
                let _ = writeln!(out, "      {} {line}", p.paint("|", Style::new().dimmed()));
            }
        }
        RuleOrigin::File(path) => {
            let _ = writeln!(out, "    rule file {}  {status}", path.display());
        }
    }
}

/// When each iperf test of the file runs, if the file has any.
fn render_plan(out: &mut String, p: Painter, plan: &IperfPlan) {
    let lines = plan.lines();
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{}  (each test starts at its offset in every period of its frequency, on the \
         server's clock; an agent takes part in one test at a time)",
        p.paint("iperf plan", Style::new().bold())
    );
    for line in lines {
        let _ = writeln!(out, "  {line}");
    }
}
