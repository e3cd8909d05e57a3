//! The wire form of a pluggable probe (see `crate::probes::probe`): the work item that asks an
//! agent to run it and the sample it reports. Both are self-describing, so that the wire layer
//! needs no table of probes: a work item names its probe and each parameter as text, a sample
//! carries its probe's number and its values in the order the metric schema lists the probe's
//! fields. Which probes and parameters exist is checked above this layer, by the task file
//! reader and by the agent that receives the item.

use super::codec::{DecodeError, MAX_STRING_LEN, Reader, Writer, invalid};
use super::task::bounded_count;
use serde::{Deserialize, Serialize};

/// Most parameters one probe item carries.
pub const MAX_PROBE_PARAMS: usize = 16;
/// Most values one probe sample carries.
pub const MAX_PROBE_VALUES: usize = 16;
/// Longest probe or parameter name.
pub const MAX_PROBE_NAME: usize = 32;
/// The first number a probe may take; below it are the built-in sample kinds.
pub const FIRST_PROBE_NUMBER: u8 = 16;

/// A run of a pluggable probe: its name (`dns`), its parameters and how often it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeItem {
    pub probe: String,
    pub params: Vec<ProbeParam>,
    pub frequency_s: u32,
}

/// One named parameter of a probe item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeParam {
    pub name: String,
    pub value: ParamValue,
}

/// A parameter's value: text (a host name, an address) or a whole number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Text(String),
    Integer(u64),
}

/// What a probe measured once: its number and its values (NaN when not measured).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeSample {
    pub probe: u8,
    pub values: Vec<f32>,
}

const PARAM_TEXT: u8 = 0;
const PARAM_INTEGER: u8 = 1;

impl ProbeItem {
    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&ParamValue> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .map(|p| &p.value)
    }

    /// `dns query=example.com every 30s`.
    pub fn describe(&self) -> String {
        let mut text = self.probe.clone();
        for p in &self.params {
            text.push_str(&format!(" {}={}", p.name, p.value));
        }
        format!("{text} every {}s", self.frequency_s)
    }

    /// The item after its kind byte: name, parameter count, each parameter, frequency.
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.put_string(&self.probe);
        out.put_u8(self.params.len() as u8);
        for p in &self.params {
            out.put_string(&p.name);
            match &p.value {
                ParamValue::Text(text) => {
                    out.put_u8(PARAM_TEXT);
                    out.put_string(text);
                }
                ParamValue::Integer(n) => {
                    out.put_u8(PARAM_INTEGER);
                    out.put_varint(*n);
                }
            }
        }
        out.put_varint(self.frequency_s.into());
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let probe = name(r, "probe name")?;
        let count = bounded_count(r, "probe parameter count", MAX_PROBE_PARAMS)?;
        let mut params: Vec<ProbeParam> = Vec::with_capacity(count);
        for _ in 0..count {
            let at = r.offset();
            let name = name(r, "probe parameter name")?;
            if params.iter().any(|p| p.name == name) {
                return Err(invalid(
                    "probe parameter name",
                    at,
                    format!("{name:?} is given twice"),
                ));
            }
            let kind_at = r.offset();
            let value = match r.u8("probe parameter type")? {
                PARAM_TEXT => ParamValue::Text(r.string("probe parameter", MAX_STRING_LEN)?),
                PARAM_INTEGER => ParamValue::Integer(r.varint("probe parameter")?),
                v => {
                    return Err(DecodeError::Unknown {
                        what: "probe parameter type",
                        value: v.into(),
                        offset: kind_at,
                    });
                }
            };
            params.push(ProbeParam { name, value });
        }
        let at = r.offset();
        let frequency_s = r.varint_u32("frequency")?;
        if frequency_s == 0 {
            return Err(invalid("frequency", at, "must be at least 1 second"));
        }
        Ok(ProbeItem {
            probe,
            params,
            frequency_s,
        })
    }
}

/// A probe or parameter name: 1 to 32 lowercase letters, digits and `_`.
fn name(r: &mut Reader<'_>, what: &'static str) -> Result<String, DecodeError> {
    let at = r.offset();
    let text = r.string(what, MAX_PROBE_NAME)?;
    if text.is_empty()
        || !text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(invalid(
            what,
            at,
            format!("{text:?} is not a name of lowercase letters, digits and _"),
        ));
    }
    Ok(text)
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Text(text) => f.write_str(text),
            ParamValue::Integer(n) => write!(f, "{n}"),
        }
    }
}

impl ProbeSample {
    /// The sample after its kind byte: probe number, value count, each value as `f32`.
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.probe);
        out.put_u8(self.values.len() as u8);
        for v in &self.values {
            out.put_f32(*v);
        }
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        let probe = r.u8("probe number")?;
        if probe < FIRST_PROBE_NUMBER {
            return Err(invalid(
                "probe number",
                at,
                format!("{probe} is below {FIRST_PROBE_NUMBER}, the first probe number"),
            ));
        }
        let count = bounded_count(r, "probe value count", MAX_PROBE_VALUES)?;
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            values.push(super::metrics::value(r, "probe value")?);
        }
        Ok(ProbeSample { probe, values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{MetricsReport, Sample, TaskAssignment, WorkItem};

    fn item() -> ProbeItem {
        ProbeItem {
            probe: "dns".into(),
            params: vec![
                ProbeParam {
                    name: "query".into(),
                    value: ParamValue::Text("example.com".into()),
                },
                ProbeParam {
                    name: "timeout_ms".into(),
                    value: ParamValue::Integer(2000),
                },
            ],
            frequency_s: 30,
        }
    }

    #[test]
    fn a_probe_item_and_sample_round_trip() {
        let task = TaskAssignment {
            task_number: 7,
            task_id: "t".into(),
            items: vec![WorkItem::Probe(item())],
            conditions: Default::default(),
            rules: vec![],
        };
        let mut bytes = Vec::new();
        task.encode(&mut bytes);
        assert_eq!(
            TaskAssignment::decode(&mut Reader::new(&bytes)).unwrap(),
            task
        );
        let report = MetricsReport {
            task_number: 7,
            time_ms: 1,
            samples: vec![Sample::Probe(ProbeSample {
                probe: 16,
                values: vec![1.5, f32::NAN, 3.0],
            })],
        };
        let mut bytes = Vec::new();
        report.encode(&mut bytes);
        let back = MetricsReport::decode(&mut Reader::new(&bytes)).unwrap();
        let Sample::Probe(s) = &back.samples[0] else {
            panic!("{back:?}")
        };
        assert_eq!((s.probe, s.values[0], s.values[2]), (16, 1.5, 3.0));
        assert!(s.values[1].is_nan());
    }

    #[test]
    fn every_truncation_of_a_probe_item_is_refused() {
        let mut bytes = Vec::new();
        item().encode(&mut bytes);
        for n in 0..bytes.len() {
            assert!(
                ProbeItem::decode(&mut Reader::new(&bytes[..n])).is_err(),
                "{n}"
            );
        }
    }

    #[test]
    fn bad_names_and_repeated_parameters_are_refused() {
        let mut twice = item();
        twice.params[1].name = "query".into();
        let mut bad = item();
        bad.probe = "DNS probe".into();
        for (it, what) in [(twice, "given twice"), (bad, "not a name")] {
            let mut bytes = Vec::new();
            it.encode(&mut bytes);
            let e = ProbeItem::decode(&mut Reader::new(&bytes)).unwrap_err();
            assert!(e.to_string().contains(what), "{e}");
        }
    }
}
