//! What a rule sees: one metrics report turned into rhai variables (`cpu_percent`, `ping`,
//! `interfaces`, ...). A value the probe could not measure (NaN on the wire) becomes `()`.

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

/// One sample as an object map, with a `kind` field (`cpu`, `ram`, `interface`, `ping`, `iperf`,
/// or a probe's name).
fn sample_map(sample: &Sample) -> Map {
    let mut map = Map::new();
    let mut put = |key: &str, value: Dynamic| {
        map.insert(key.into(), value);
    };
    match sample {
        Sample::Cpu { percent } => {
            put("kind", "cpu".into());
            put("percent", number(*percent));
        }
        Sample::Ram { percent } => {
            put("kind", "ram".into());
            put("percent", number(*percent));
        }
        Sample::Interface { .. } => interface_entries(sample, &mut put),
        Sample::Ping { .. } => ping_entries(sample, &mut put),
        Sample::Iperf { .. } => iperf_entries(sample, &mut put),
        // A probe's values under their schema keys (`dns.time_ms`).
        Sample::Probe(p) => {
            let name = crate::probes::by_number(p.probe).map_or("probe", |d| d.name);
            put("kind", name.into());
            for (def, v) in crate::schema::probe_fields(p.probe).zip(&p.values) {
                put(def.key, number(*v));
            }
        }
    }
    map
}

/// An interface sample's entries: its name, state (and `up`, unknown as `()`), rates, and the
/// raw counters (receive and transmit apart) that the host tells.
fn interface_entries(sample: &Sample, put: &mut impl FnMut(&str, Dynamic)) {
    let Sample::Interface {
        name,
        state,
        packets_per_sec,
        bytes_per_sec,
        errors_per_sec,
        counters,
    } = sample
    else {
        return;
    };
    put("kind", "interface".into());
    put("name", name.clone().into());
    put("state", state.name().into());
    put(
        "up",
        match state {
            LinkState::Unknown => Dynamic::UNIT,
            known => Dynamic::from_bool(!known.is_down()),
        },
    );
    put("packets_per_sec", number(*packets_per_sec));
    put("bytes_per_sec", number(*bytes_per_sec));
    put("errors_per_sec", number(*errors_per_sec));
    for (key, v) in [
        ("rx_bytes", counters.rx_bytes),
        ("tx_bytes", counters.tx_bytes),
        ("rx_packets", counters.rx_packets),
        ("tx_packets", counters.tx_packets),
        ("rx_errors", counters.rx_errors),
        ("tx_errors", counters.tx_errors),
        ("rx_dropped", counters.rx_dropped),
        ("tx_dropped", counters.tx_dropped),
    ] {
        if let Some(v) = v {
            put(key, Dynamic::from_float(v as f64));
        }
    }
}

/// A ping sample's entries: counts, round-trip times, jitter and loss.
fn ping_entries(sample: &Sample, put: &mut impl FnMut(&str, Dynamic)) {
    let Sample::Ping {
        rtt_min_ms,
        rtt_avg_ms,
        rtt_max_ms,
        jitter_ms,
        loss_percent,
        sent,
        received,
    } = sample
    else {
        return;
    };
    put("sent", Dynamic::from_float(*sent as f64));
    put("received", Dynamic::from_float(*received as f64));
    put("kind", "ping".into());
    put("rtt_min_ms", number(*rtt_min_ms));
    put("rtt_avg_ms", number(*rtt_avg_ms));
    put("rtt_max_ms", number(*rtt_max_ms));
    put("jitter_ms", number(*jitter_ms));
    put("loss_percent", number(*loss_percent));
}

/// An iperf sample's entries: its transport, bandwidth, offered rate, jitter and loss.
fn iperf_entries(sample: &Sample, put: &mut impl FnMut(&str, Dynamic)) {
    let Sample::Iperf {
        transport,
        bandwidth_bps,
        offered_bps,
        jitter_ms,
        loss_percent,
    } = sample
    else {
        return;
    };
    put("kind", "iperf".into());
    put(
        "transport",
        crate::schema::transport_name(*transport).into(),
    );
    put("bandwidth_bps", number(*bandwidth_bps));
    put("offered_bps", number(*offered_bps));
    put("jitter_ms", number(*jitter_ms));
    put("loss_percent", number(*loss_percent));
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
