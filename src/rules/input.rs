//! What a rule sees: one metrics report turned into rhai variables (`cpu_percent`, `ping`,
//! `interfaces`, ...). A value the probe could not measure (NaN on the wire) becomes `()`.

use crate::schema::{Field, Rollup, SampleKind};
use crate::wire::{LinkState, MetricsReport, Sample};
use rhai::{Array, Dynamic, FLOAT, INT, Map, Scope};

/// The names of the variables every rule sees, in the order they are defined. `state` is the
/// rule's own map, kept between evaluations.
pub const VARIABLES: [&str; 10] = [
    "agent",
    "task",
    "time_ms",
    "cpu_percent",
    "ram_percent",
    "ping",
    "iperf",
    "interfaces",
    "samples",
    "state",
];

/// One metrics report, with the agent and task it belongs to, as the rules evaluate it.
#[derive(Debug, Clone, Copy)]
pub struct SampleInput<'a> {
    pub agent: &'a str,
    pub task: &'a str,
    /// When the measurement ended, Unix milliseconds (agent clock).
    pub time_ms: u64,
    pub samples: &'a [Sample],
}

impl<'a> SampleInput<'a> {
    pub fn new(agent: &'a str, task: &'a str, report: &'a MetricsReport) -> SampleInput<'a> {
        SampleInput {
            agent,
            task,
            time_ms: report.time_ms,
            samples: &report.samples,
        }
    }

    pub(crate) fn has_cpu(&self) -> bool {
        self.samples.iter().any(|s| matches!(s, Sample::Cpu { .. }))
    }

    pub(crate) fn has_ram(&self) -> bool {
        self.samples.iter().any(|s| matches!(s, Sample::Ram { .. }))
    }

    pub(crate) fn has_ping(&self) -> bool {
        self.samples
            .iter()
            .any(|s| matches!(s, Sample::Ping { .. }))
    }

    pub(crate) fn has_iperf(&self) -> bool {
        self.samples
            .iter()
            .any(|s| matches!(s, Sample::Iperf { .. }))
    }

    /// Whether the report carries counters for `name` (any interface when `name` is empty).
    pub(crate) fn has_interface(&self, name: &str) -> bool {
        self.samples.iter().any(|s| match s {
            Sample::Interface { name: n, .. } => name.is_empty() || n == name,
            _ => false,
        })
    }

    /// The input variables (all of [`VARIABLES`] but `state`), pushed as constants so that a
    /// rule cannot overwrite what the next rule sees.
    pub(crate) fn scope(&self) -> Scope<'static> {
        let mut cpu = Dynamic::UNIT;
        let mut ram = Dynamic::UNIT;
        let mut ping = Dynamic::UNIT;
        let mut iperf = Dynamic::UNIT;
        let mut interfaces = Array::new();
        let mut samples = Array::new();
        // Each probe's variable (`dns`): its first sample of the report, `()` without one.
        let mut probes: Vec<(&'static str, Dynamic)> = crate::probes::PROBES
            .iter()
            .map(|p| (p.name, Dynamic::UNIT))
            .collect();
        for sample in self.samples {
            let map = sample_map(sample);
            samples.push(map.clone().into());
            // The first sample of each kind wins; `samples` holds them all.
            match sample {
                Sample::Cpu { percent } if cpu.is_unit() => cpu = number(*percent),
                Sample::Ram { percent } if ram.is_unit() => ram = number(*percent),
                Sample::Ping { .. } if ping.is_unit() => ping = map.into(),
                Sample::Iperf { .. } if iperf.is_unit() => iperf = map.into(),
                Sample::Interface { .. } => interfaces.push(map.into()),
                Sample::Probe(p) => {
                    let name = crate::probes::by_number(p.probe).map(|d| d.name);
                    if let Some((_, v)) = probes.iter_mut().find(|(n, _)| Some(*n) == name)
                        && v.is_unit()
                    {
                        *v = map.into();
                    }
                }
                _ => {}
            }
        }
        let mut scope = Scope::new();
        scope.push_constant("agent", self.agent.to_string());
        scope.push_constant("task", self.task.to_string());
        scope.push_constant("time_ms", INT::try_from(self.time_ms).unwrap_or(INT::MAX));
        scope.push_constant_dynamic("cpu_percent", cpu);
        scope.push_constant_dynamic("ram_percent", ram);
        scope.push_constant_dynamic("ping", ping);
        scope.push_constant_dynamic("iperf", iperf);
        scope.push_constant("interfaces", interfaces);
        scope.push_constant("samples", samples);
        for (name, value) in probes {
            scope.push_constant_dynamic(name, value);
        }
        scope
    }
}

/// A scope with every input variable declared (all `()`), for compiling in strict-variables
/// mode: a misspelt variable is then a compile error with its position. Plain variables, not
/// constants, so that the optimizer does not fold the placeholder values into the rule.
pub(crate) fn declaration_scope() -> Scope<'static> {
    let mut scope = Scope::new();
    for name in VARIABLES
        .iter()
        .chain(crate::probes::PROBES.iter().map(|p| &p.name))
    {
        scope.push_dynamic(*name, Dynamic::UNIT);
    }
    scope
}

/// One sample as an object map: a `kind` field (`cpu`, `ram`, `interface`, `ping`, `iperf`, or a
/// probe's name), the instance it was measured on (an interface's `name`, an iperf test's
/// `transport`), and each of its values under its schema key (`rtt_avg_ms`, `dns.time_ms`).
/// Counters are exact floats, left out when the host does not tell them; an interface's
/// `state` is its name, with `up` beside it (`()` when unknown).
fn sample_map(sample: &Sample) -> Map {
    let (kind, instance, values) = crate::schema::sample_values(sample);
    let mut map = Map::new();
    let mut put = |key: &str, value: Dynamic| {
        map.insert(key.into(), value);
    };
    put("kind", kind_name(kind).into());
    match (kind, instance) {
        (SampleKind::Interface, Some(name)) => put("name", name.to_string().into()),
        (SampleKind::Iperf, Some(transport)) => put("transport", transport.into()),
        _ => {}
    }
    for (field, value) in values {
        let def = field.def();
        if field == Field::LinkState {
            let state = LinkState::from_u8(value as u8).unwrap_or(LinkState::Unknown);
            put(def.key, state.name().into());
            put(
                "up",
                match state {
                    LinkState::Unknown => Dynamic::UNIT,
                    known => Dynamic::from_bool(!known.is_down()),
                },
            );
        } else if def.rollup == Rollup::Counter {
            if value.is_finite() {
                put(def.key, Dynamic::from_float(value));
            }
        } else {
            // Every other value came from the wire as an `f32`: narrowing it back is exact.
            put(def.key, number(value as f32));
        }
    }
    map
}

/// The `kind` of a sample's map.
fn kind_name(kind: SampleKind) -> &'static str {
    match kind {
        SampleKind::Cpu => "cpu",
        SampleKind::Ram => "ram",
        SampleKind::Interface => "interface",
        SampleKind::Ping => "ping",
        SampleKind::Iperf => "iperf",
        SampleKind::Probe(number) => crate::probes::by_number(number).map_or("probe", |d| d.name),
    }
}

/// A measured value as rhai sees it: `()` when not measured (NaN or infinite), otherwise the
/// float whose decimal form is the `f32`'s shortest one, so that 80.1 reads 80.1 in messages
/// and compares equal to the literal `80.1` (a plain widening would give 80.09999847...).
pub(crate) fn number(value: f32) -> Dynamic {
    if !value.is_finite() {
        return Dynamic::UNIT;
    }
    let widened: FLOAT = value.to_string().parse().unwrap_or(FLOAT::from(value));
    Dynamic::from_float(widened)
}
