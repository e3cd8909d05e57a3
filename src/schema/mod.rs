//! The one metric schema: every field a metrics report can carry, with its name, unit,
//! Prometheus name, how it rolls up, and the resolution it is stored at. The store, the rule
//! inputs, `/metrics`, the status page, `inspect` and `decode` all read this table; a new
//! measured field is one entry in [`FIELDS`] plus the sample that carries it.
//!
//! A report's values travel as [`Sample`](crate::wire::Sample)s (typed, on the wire); [`readings`] turns samples into
//! [`Reading`]s: a [`Field`], the instance it was measured on (an interface name, or an iperf
//! transport) and the value. Nothing between the wire and the store is keyed by strings.

mod fields;
mod readings;

pub use fields::{DNS_PROBE, FIELDS};
pub use readings::{Reading, probe_fields, readings, sample_values, transport_name, widen};

/// How a field's values combine over an interval (a rollup, a graph step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollup {
    /// A level measured at one time (CPU, RTT): count, min, max and mean describe an interval.
    Gauge,
    /// A per-second rate measured over the report's interval (interface traffic): the mean is
    /// the interval's average rate, min and max its extremes.
    Rate,
    /// A counter that only grows, except when its source starts again (an interface's
    /// received bytes, the pings a work item sent): the newest value is what it counts now,
    /// and an interval's growth is max minus min while it did not start again. Exported as a
    /// Prometheus counter (`_total`).
    Counter,
}

/// The kind of sample a field belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SampleKind {
    Cpu,
    Ram,
    Interface,
    Ping,
    Iperf,
    /// A pluggable probe's sample (`crate::probes::probe`), by the probe's number.
    Probe(u8),
}

/// Every measured field. The numbers are stored in the store's files: never renumber one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Field {
    CpuPercent = 0,
    RamPercent = 1,
    RttMinMs = 2,
    RttAvgMs = 3,
    RttMaxMs = 4,
    JitterMs = 5,
    LossPercent = 6,
    BandwidthBps = 7,
    IperfJitterMs = 8,
    IperfLossPercent = 9,
    PacketsPerSec = 10,
    BytesPerSec = 11,
    ErrorsPerSec = 12,
    OfferedBps = 13,
    LinkState = 14,
    RxBytes = 15,
    TxBytes = 16,
    RxPackets = 17,
    TxPackets = 18,
    RxErrors = 19,
    TxErrors = 20,
    RxDropped = 21,
    TxDropped = 22,
    PingSent = 23,
    PingReceived = 24,
    DnsTimeMs = 25,
    DnsAnswers = 26,
    DnsExpected = 27,
}

/// What the schema says of one field.
#[derive(Debug, Clone, Copy)]
pub struct FieldDef {
    pub field: Field,
    pub sample: SampleKind,
    /// The field's name in the HTTP API, exports, `fields=` and rules (`cpu_percent`).
    pub name: &'static str,
    /// The name of the value inside its sample (rules' `ping.rtt_avg_ms`, decode's JSON).
    pub key: &'static str,
    /// A short label for tables and graphs.
    pub label: &'static str,
    pub unit: &'static str,
    /// The Prometheus metric that exposes it, in base units.
    pub prometheus: &'static str,
    /// Divides a value to get the Prometheus base unit (percent to ratio: 100).
    pub prometheus_divisor: f64,
    pub help: &'static str,
    pub rollup: Rollup,
    /// Decimal places kept by the store: values are stored as whole multiples of
    /// 10^-decimals of the unit, the precision the probe measures at (ping prints RTTs in
    /// microseconds: 3 decimals of a millisecond).
    pub decimals: u8,
    /// Whether rollups keep the distribution (p10, p50, p90) for SmokePing-style smoke.
    pub distribution: bool,
}

impl FieldDef {
    /// The stored integer for a value (`None` for a value not measured).
    pub fn quantize(&self, value: f64) -> Option<i64> {
        if !value.is_finite() {
            return None;
        }
        let scaled = (value * self.scale()).round();
        // Values beyond what an i64 holds are not measurements: refused as not measured.
        (scaled.abs() < 9.0e18).then_some(scaled as i64)
    }

    /// The value of a stored integer: the nearest `f64` to the decimal it stands for.
    pub fn value(&self, stored: i64) -> f64 {
        stored as f64 / self.scale()
    }

    /// A mean (or other non-integral statistic) of stored integers, in the field's unit.
    pub fn scaled(&self, stored: f64) -> f64 {
        stored / self.scale()
    }

    fn scale(&self) -> f64 {
        10f64.powi(i32::from(self.decimals))
    }
}
impl Field {
    pub fn def(self) -> &'static FieldDef {
        &FIELDS[self as usize]
    }

    pub fn from_u8(v: u8) -> Option<Field> {
        FIELDS.get(usize::from(v)).map(|d| d.field)
    }

    /// The field of this API name (`cpu_percent`).
    pub fn by_name(name: &str) -> Option<Field> {
        FIELDS.iter().find(|d| d.name == name).map(|d| d.field)
    }

    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// Whether its instance is an interface name.
    pub fn per_interface(self) -> bool {
        self.def().sample == SampleKind::Interface
    }
}

/// The key of a reading in the API's JSON records: the field's name, except that an iperf
/// test's readings are named as the tests read them: TCP `bandwidth_bps`; UDP
/// `udp_bandwidth_bps`, `udp_offered_bps`, and its `jitter_ms` and `loss_percent`.
pub fn api_name(field: Field, instance: Option<&str>) -> std::borrow::Cow<'static, str> {
    match (field, instance) {
        (Field::BandwidthBps | Field::OfferedBps, Some("udp")) => {
            format!("udp_{}", field.name()).into()
        }
        (Field::IperfJitterMs, _) => "jitter_ms".into(),
        (Field::IperfLossPercent, _) => "loss_percent".into(),
        (f, _) => f.name().into(),
    }
}

/// Every API field name, for error messages.
pub fn field_names() -> Vec<&'static str> {
    FIELDS.iter().map(|d| d.name).collect()
}

#[cfg(test)]
mod tests;
