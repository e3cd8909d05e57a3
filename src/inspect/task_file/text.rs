//! The check of a task file as text: a verdict line, then per task and device what it measures
//! (each planned item in a few words), its thresholds, notes and rules, and the iperf plan.

use super::{DeviceCheck, FileCheck, RuleCheck, RuleOrigin, TaskCheck};
use crate::task::{Device, IperfMetrics, IperfPlan, IperfTarget, PlannedItem};
use crate::wire::Transport;
use owo_colors::Style;
use std::fmt::Write as _;

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
        crate::output::paint(text, style, self.color)
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
