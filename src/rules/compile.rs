//! A task's `alertflow_conditions` as rhai rules: one readable rule per threshold, named
//! `condition:<field>`, using the same rule API as hand-written rule files.

use crate::wire::{AlertConditions, RuleSource};

/// One rule per threshold that is set, in the order cpu, ram, interface, packet loss, jitter.
///
/// - `cpu_usage`, `ram_usage`: percent in use above the threshold.
/// - `interface_stats`: an interface's packets per second above the threshold; fires per
///   interface.
/// - `packet_loss`: ping or iperf loss percent above the threshold (each on its own).
/// - `jitter`: ping or iperf jitter, milliseconds, above the threshold (each on its own).
///
/// A threshold that is not a finite number compiles to a rule that fails with that message, so
/// that the mistake is reported (as an `error` alert) rather than silently ignored.
pub fn compile_conditions(conditions: &AlertConditions) -> Vec<RuleSource> {
    let mut rules = Vec::new();
    let mut add = |field: &str, threshold: Option<f32>, body: fn(&str) -> String| {
        if let Some(threshold) = threshold {
            let source = match literal(threshold) {
                Some(limit) => body(&limit),
                None => format!(
                    "// alertflow_conditions.{field}\nthrow \"the {field} threshold {threshold} is not a finite number\";\n"
                ),
            };
            rules.push(RuleSource {
                name: format!("condition:{field}"),
                source,
            });
        }
    };
    add("cpu_usage", conditions.cpu_usage, cpu);
    add("ram_usage", conditions.ram_usage, ram);
    add("interface_stats", conditions.interface_stats, interface);
    add("packet_loss", conditions.packet_loss, packet_loss);
    add("jitter", conditions.jitter, jitter);
    rules
}

fn cpu(limit: &str) -> String {
    format!(
        r#"// alertflow_conditions.cpu_usage: CPU usage above {limit}%
if cpu_percent > {limit} {{
    alert("cpu", {limit}, cpu_percent,
        `CPU usage ${{cpu_percent.to_fixed(1)}}% is above {limit}%`);
}}
"#
    )
}

fn ram(limit: &str) -> String {
    format!(
        r#"// alertflow_conditions.ram_usage: RAM usage above {limit}%
if ram_percent > {limit} {{
    alert("ram", {limit}, ram_percent,
        `RAM usage ${{ram_percent.to_fixed(1)}}% is above {limit}%`);
}}
"#
    )
}

fn interface(limit: &str) -> String {
    format!(
        r#"// alertflow_conditions.interface_stats: an interface above {limit} packets/s
for iface in interfaces {{
    if iface.packets_per_sec > {limit} {{
        alert_for(iface.name, "interface_stats", {limit}, iface.packets_per_sec,
            `interface ${{iface.name}} at ${{iface.packets_per_sec.to_fixed(0)}} packets/s, above {limit}`);
    }}
}}
"#
    )
}

fn packet_loss(limit: &str) -> String {
    format!(
        r#"// alertflow_conditions.packet_loss: ping or iperf loss above {limit}%
if ping?.loss_percent > {limit} {{
    alert_for("ping", "packet_loss", {limit}, ping.loss_percent,
        `ping loss ${{ping.loss_percent.to_fixed(1)}}% is above {limit}%`);
}}
if iperf?.loss_percent > {limit} {{
    alert_for("iperf", "packet_loss", {limit}, iperf.loss_percent,
        `iperf loss ${{iperf.loss_percent.to_fixed(1)}}% is above {limit}%`);
}}
"#
    )
}

fn jitter(limit: &str) -> String {
    format!(
        r#"// alertflow_conditions.jitter: ping or iperf jitter above {limit} ms
if ping?.jitter_ms > {limit} {{
    alert_for("ping", "jitter", {limit}, ping.jitter_ms,
        `ping jitter ${{ping.jitter_ms.to_fixed(2)}} ms is above {limit} ms`);
}}
if iperf?.jitter_ms > {limit} {{
    alert_for("iperf", "jitter", {limit}, iperf.jitter_ms,
        `iperf jitter ${{iperf.jitter_ms.to_fixed(2)}} ms is above {limit} ms`);
}}
"#
    )
}

/// The threshold as a rhai float literal in its shortest decimal form (`80.0`, `2.5`), or
/// `None` when it is not finite.
fn literal(threshold: f32) -> Option<String> {
    if !threshold.is_finite() {
        return None;
    }
    let mut text = threshold.to_string();
    if !text.contains('.') {
        text.push_str(".0");
    }
    Some(text)
}
