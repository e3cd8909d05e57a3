//! A task's `alertflow_conditions` as rhai rules: one readable rule per threshold, named
//! `condition:<field>`, using the same rule API as hand-written rule files; and the rules every
//! agent runs without being asked ([`builtin_rules`]): a watched interface that goes down.

use crate::wire::{AlertConditions, RuleSource};

/// What a condition needs the device to measure, for a threshold that could never fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Cpu,
    Ram,
    Interfaces,
    /// A figure only ping and UDP iperf measure (its name: `packet loss`, `jitter`).
    PingOrUdpIperf(&'static str),
}

/// The range a condition's threshold must be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Percent,
    NonNegative,
}

/// One condition of `alertflow_conditions`: everything about it is here. A new condition is
/// an entry of [`CONDITIONS`] (and its slot in the wire's `AlertConditions`).
pub struct Condition {
    pub name: &'static str,
    pub scale: Scale,
    pub needs: Needs,
    /// The rule's source for a threshold: its rhai literal and the form shown in messages.
    pub rule: fn(&str, &str) -> String,
}

/// Every condition, in wire order ([`crate::wire::task::CONDITION_NAMES`]).
///
/// - `cpu_usage`, `ram_usage`: percent in use above the threshold.
/// - `interface_stats`: an interface's packets per second above the threshold; fires per
///   interface.
/// - `packet_loss`: ping or iperf loss percent above the threshold (each on its own).
/// - `jitter`: ping or iperf jitter, milliseconds, above the threshold (each on its own).
pub const CONDITIONS: [Condition; 5] = [
    Condition {
        name: "cpu_usage",
        scale: Scale::Percent,
        needs: Needs::Cpu,
        rule: |limit, shown| usage(limit, shown, "cpu_percent", "cpu", "CPU"),
    },
    Condition {
        name: "ram_usage",
        scale: Scale::Percent,
        needs: Needs::Ram,
        rule: |limit, shown| usage(limit, shown, "ram_percent", "ram", "RAM"),
    },
    Condition {
        name: "interface_stats",
        scale: Scale::NonNegative,
        needs: Needs::Interfaces,
        rule: interface,
    },
    Condition {
        name: "packet_loss",
        scale: Scale::Percent,
        needs: Needs::PingOrUdpIperf("packet loss"),
        rule: |limit, shown| {
            ping_and_iperf(limit, shown, "loss_percent", "packet_loss", "loss", "%", 1)
        },
    },
    Condition {
        name: "jitter",
        scale: Scale::NonNegative,
        needs: Needs::PingOrUdpIperf("jitter"),
        rule: |limit, shown| {
            ping_and_iperf(limit, shown, "jitter_ms", "jitter", "jitter", " ms", 2)
        },
    },
];

/// One rule per threshold that is set, in [`CONDITIONS`] order, named `condition:<name>`.
///
/// A threshold that is not a finite number compiles to a rule that fails with that message, so
/// that the mistake is reported (as an `error` alert) rather than silently ignored.
pub fn compile_conditions(conditions: &AlertConditions) -> Vec<RuleSource> {
    CONDITIONS
        .iter()
        .zip(conditions.values())
        .filter_map(|(condition, threshold)| {
            let threshold = threshold?;
            let field = condition.name;
            let source = match literal(threshold) {
                Some(limit) => (condition.rule)(&limit, &threshold.to_string()),
                None => format!(
                    "// alertflow_conditions.{field}\nthrow \"the {field} threshold {threshold} is not a finite number\";\n"
                ),
            };
            Some(RuleSource {
                name: format!("condition:{field}"),
                source,
            })
        })
        .collect()
}

/// The name of the built-in rule that raises an INTERFACESTATS alert for a watched interface
/// that is down.
pub const LINK_STATE_RULE: &str = "builtin:link_state";

/// The rules an agent runs for a task without being asked: when the task watches interfaces
/// (`interfaces`), [`LINK_STATE_RULE`]: a critical INTERFACESTATS alert for each watched
/// interface that is set down or has no carrier, resolved when it is up again.
pub fn builtin_rules(interfaces: bool) -> Vec<RuleSource> {
    if !interfaces {
        return Vec::new();
    }
    vec![RuleSource {
        name: LINK_STATE_RULE.to_string(),
        source: r#"// builtin:link_state: a watched interface that is down
for iface in interfaces {
    if iface.state == "down" {
        alert_for(iface.name, "interface_stats", 0.0, 0.0,
            `interface ${iface.name} is down (set down)`, "critical");
    } else if iface.state == "no_carrier" {
        alert_for(iface.name, "interface_stats", 0.0, 0.0,
            `interface ${iface.name} is down (no carrier: the link beneath it is down)`,
            "critical");
    }
}
"#
        .to_string(),
    }]
}

/// CPU or RAM percent in use above the limit.
fn usage(limit: &str, shown: &str, variable: &str, kind: &str, label: &str) -> String {
    format!(
        r#"// alertflow_conditions.{kind}_usage: {label} usage above {shown}%
if {variable} > {limit} {{
    alert("{kind}", {limit}, {variable},
        `{label} usage ${{{variable}.to_fixed(1)}}% is above {shown}%`);
}}
"#
    )
}

/// Each interface's packets per second above the limit, one alert per interface.
fn interface(limit: &str, shown: &str) -> String {
    format!(
        r#"// alertflow_conditions.interface_stats: an interface above {shown} packets/s
for iface in interfaces {{
    if iface.packets_per_sec > {limit} {{
        alert_for(iface.name, "interface_stats", {limit}, iface.packets_per_sec,
            `interface ${{iface.name}} at ${{iface.packets_per_sec.to_fixed(0)}} packets/s, above {shown}`);
    }}
}}
"#
    )
}

/// A ping or iperf figure above the limit, one alert for each tool (subject `ping`/`iperf`).
fn ping_and_iperf(
    limit: &str,
    shown: &str,
    field: &str,
    kind: &str,
    label: &str,
    unit: &str,
    digits: u8,
) -> String {
    let mut source =
        format!("// alertflow_conditions.{kind}: ping or iperf {label} above {shown}{unit}\n");
    for tool in ["ping", "iperf"] {
        source.push_str(&format!(
            r#"if {tool}?.{field} > {limit} {{
    alert_for("{tool}", "{kind}", {limit}, {tool}.{field},
        `{tool} {label} ${{{tool}.{field}.to_fixed({digits})}}{unit} is above {shown}{unit}`);
}}
"#
        ));
    }
    source
}

/// The threshold as a rhai float literal (the rules also show it in messages in its plain
/// form, `80`) in its shortest decimal form (`80.0`, `2.5`), or
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_conditions_are_in_wire_order() {
        let names: Vec<&str> = super::CONDITIONS.iter().map(|c| c.name).collect();
        assert_eq!(names, crate::wire::task::CONDITION_NAMES);
    }
}
