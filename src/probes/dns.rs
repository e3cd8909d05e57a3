//! DNS lookup: how long the system resolver takes to resolve a name, how many addresses it
//! returns, and (with `expect`) whether a given address is among them — a name that stops
//! resolving, a slow resolver, or an answer that changed (a hijacked or moved record).
//!
//! It asks the host's own resolver (`getaddrinfo`, on a blocking thread), as every program on
//! the host does, so it measures what they see: `/etc/hosts`, the configured servers, caches.
//! A name that does not exist is a measurement (0 answers), not an error; a resolver that does
//! not answer within `timeout_ms` is a TIMEOUT alert.
//!
//! Task files: `"dns": {"query": "example.com", "expect": "93.184.215.14", "frequency": 30}`
//! under `link_metrics` (assignment dialect), or `"dns_parameters": {"enabled": true, "query":
//! ...}` (original dialect). Rules see `dns.time_ms`, `dns.answers` and `dns.expected`.

use super::error::ProbeError;
use super::probe::{self, Measurement, ParamDef, ParamKind, ProbeDef};
use crate::wire::ProbeItem;
use futures_lite::FutureExt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Its number on the wire and in the schema.
pub const NUMBER: u8 = crate::schema::DNS_PROBE;

pub static PROBE: ProbeDef = ProbeDef {
    number: NUMBER,
    name: "dns",
    summary: "DNS lookup through the system resolver",
    params: &[
        ParamDef {
            name: "query",
            kind: ParamKind::Host,
            doc: "the name to resolve",
        },
        ParamDef {
            name: "expect",
            kind: ParamKind::Address,
            doc: "an address the answer must contain",
        },
        ParamDef {
            name: "timeout_ms",
            kind: ParamKind::Integer {
                min: 1,
                max: 60_000,
                default: 5_000,
            },
            doc: "how long to wait for the resolver, milliseconds",
        },
    ],
    run,
};

fn run(item: &ProbeItem) -> Measurement<'_> {
    Box::pin(async move {
        let query = probe::text(item, "query").unwrap_or_default().to_owned();
        let expect = probe::text(item, "expect").and_then(|t| t.parse::<IpAddr>().ok());
        let timeout = Duration::from_millis(probe::integer(&PROBE, item, "timeout_ms"));
        let started = Instant::now();
        let lookup = async {
            let host = query.clone();
            Some(smol::unblock(move || lookup(&host)).await)
        };
        let deadline = async {
            async_io::Timer::after(timeout).await;
            None
        };
        match lookup.or(deadline).await {
            None => Err(ProbeError::Timeout {
                tool: "dns lookup",
                after: timeout,
            }),
            Some(answers) => Ok(values(started.elapsed(), &answers, expect)),
        }
    })
}

/// The addresses `name` resolves to; none when it does not resolve.
fn lookup(name: &str) -> Vec<IpAddr> {
    use std::net::ToSocketAddrs;
    let mut addresses: Vec<IpAddr> = (name, 0)
        .to_socket_addrs()
        .map(|a| a.map(|s| s.ip()).collect())
        .unwrap_or_default();
    // getaddrinfo gives one entry per socket type: count each address once.
    addresses.sort();
    addresses.dedup();
    addresses
}

/// The sample's values in schema order: time, answers, expected (NaN when nothing expected).
fn values(took: Duration, answers: &[IpAddr], expect: Option<IpAddr>) -> Vec<f32> {
    let expected = expect.map_or(f32::NAN, |e| f32::from(u8::from(answers.contains(&e))));
    vec![
        (took.as_secs_f64() * 1000.0) as f32,
        answers.len() as f32,
        expected,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Field, probe_fields};
    use crate::wire::{ParamValue, ProbeParam, ProbeSample, Sample, WorkItem};

    fn item(params: &[(&str, ParamValue)]) -> ProbeItem {
        ProbeItem {
            probe: "dns".into(),
            params: params
                .iter()
                .map(|(n, v)| ProbeParam {
                    name: (*n).into(),
                    value: v.clone(),
                })
                .collect(),
            frequency_s: 10,
        }
    }

    #[test]
    fn its_values_are_its_schema_fields_in_order() {
        let fields: Vec<Field> = probe_fields(NUMBER).map(|d| d.field).collect();
        assert_eq!(
            fields,
            [Field::DnsTimeMs, Field::DnsAnswers, Field::DnsExpected]
        );
        let v = values(
            Duration::from_millis(12),
            &["10.0.0.1".parse().unwrap()],
            None,
        );
        let sample = Sample::Probe(ProbeSample {
            probe: NUMBER,
            values: v,
        });
        let (_, _, readings) = crate::schema::sample_values(&sample);
        assert_eq!(readings[0], (Field::DnsTimeMs, 12.0));
        assert_eq!(readings[1], (Field::DnsAnswers, 1.0));
        assert!(readings[2].1.is_nan());
    }

    #[test]
    fn localhost_resolves_and_the_expected_address_is_checked() {
        let text = |t: &str| ParamValue::Text(t.into());
        for (expect, want) in [("127.0.0.1", 1.0), ("192.0.2.9", 0.0)] {
            let it = item(&[("query", text("localhost")), ("expect", text(expect))]);
            PROBE.check(&it).unwrap();
            let v = smol::block_on((PROBE.run)(&it)).unwrap();
            assert!(v[0] >= 0.0 && v[1] >= 1.0, "{v:?}");
            assert_eq!(v[2], want, "expect {expect}: {v:?}");
        }
    }

    #[test]
    fn a_name_that_does_not_exist_has_no_answers() {
        // `.invalid` never resolves (RFC 6761).
        let it = item(&[("query", ParamValue::Text("no-such-name.invalid".into()))]);
        let v = smol::block_on((PROBE.run)(&it)).unwrap();
        assert_eq!(v[1], 0.0);
    }

    #[test]
    fn items_an_agent_cannot_run_are_refused() {
        let cases = [
            (item(&[]), "needs query"),
            (
                item(&[("query", ParamValue::Integer(3))]),
                "dns.query: not text",
            ),
            (
                item(&[
                    ("query", ParamValue::Text("a.example".into())),
                    ("expect", ParamValue::Text("not-an-ip".into())),
                ]),
                "not an IP address",
            ),
            (
                item(&[
                    ("query", ParamValue::Text("a.example".into())),
                    ("timeout_ms", ParamValue::Integer(0)),
                ]),
                "not within 1..=60000",
            ),
            (
                item(&[("server", ParamValue::Text("x".into()))]),
                "no parameter \"server\"",
            ),
        ];
        for (it, want) in cases {
            let e = PROBE.check(&it).unwrap_err();
            assert!(e.contains(want), "{e} / {want}");
        }
    }

    #[test]
    fn both_dialects_read_a_dns_entry() {
        let assignment = r#"{"task_id": "t", "frequency": 20, "devices": [{"device_id": "r1",
            "link_metrics": {"dns": {"tool": "dns", "query": "example.com",
                                     "expect": "192.0.2.1", "frequency": 30}}}]}"#;
        let original = r#"{"task_id": "t", "frequency": 20, "devices": [{"device_id": "r1",
            "device_metrics": {"cpu_usage": true},
            "link_metrics": {"dns_parameters": {"enabled": true, "query": "example.com",
                                                "expect": "192.0.2.1"}}}]}"#;
        for (text, frequency_s) in [(assignment, 30), (original, 20)] {
            let tasks = crate::task::parse("t.json", text, std::path::Path::new(".")).unwrap();
            let work = tasks[0].assignments(1, |_| None).unwrap();
            let dns = work[0]
                .1
                .items
                .iter()
                .find_map(|i| match i {
                    WorkItem::Probe(p) => Some(p),
                    _ => None,
                })
                .expect("a dns item");
            assert_eq!(dns.frequency_s, frequency_s);
            assert_eq!(probe::text(dns, "query"), Some("example.com"));
            assert_eq!(probe::integer(&PROBE, dns, "timeout_ms"), 5_000);
            PROBE.check(dns).unwrap();
        }
    }

    #[test]
    fn task_file_mistakes_name_the_field() {
        let file = |entry: &str| {
            format!(
                r#"{{"task_id": "t", "frequency": 20, "devices": [{{"device_id": "r1",
                "link_metrics": {{"dns": {entry}}}}}]}}"#
            )
        };
        for (entry, want) in [
            (r#"{"expect": "192.0.2.1"}"#, "dns needs query"),
            (r#"{"query": "a b"}"#, "is not a host name"),
            (
                r#"{"query": "a.example", "timeout_ms": 0}"#,
                "timeout_ms 0 must be at least 1",
            ),
            (
                r#"{"query": "a.example", "server": "x"}"#,
                "unknown field `server` of dns",
            ),
            (
                r#"{"query": "a.example", "timeout_ms": "5"}"#,
                "must be a whole number",
            ),
            (
                r#"{"query": "a.example", "tool": "ping"}"#,
                "the \"tool\" of dns is \"dns\"",
            ),
        ] {
            let e = crate::task::parse("t.json", &file(entry), std::path::Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{entry}: {e}");
        }
    }

    #[test]
    fn the_shipped_rule_fires_on_what_an_operator_watches() {
        use crate::rules::{RuleSet, SampleInput};
        use crate::wire::{AlertType, MetricsReport, Severity};
        let source = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/dns_lookup.rhai"),
        )
        .unwrap();
        let rule = [crate::wire::RuleSource {
            name: "rules/dns_lookup.rhai".into(),
            source,
        }];
        let cases = [
            (vec![3.0, 2.0, f32::NAN], None),
            (
                vec![3.0, 0.0, f32::NAN],
                Some((AlertType::Custom, Severity::Critical)),
            ),
            (
                vec![3.0, 2.0, 0.0],
                Some((AlertType::Custom, Severity::Critical)),
            ),
            (
                vec![900.0, 2.0, 1.0],
                Some((AlertType::Latency, Severity::Warning)),
            ),
        ];
        for (i, (values, want)) in cases.into_iter().enumerate() {
            // A fresh rule set each time: a firing alert is not raised again.
            let mut rules = RuleSet::compile(&rule).unwrap();
            let report = MetricsReport {
                task_number: 1,
                time_ms: 1_700_000_000_000 + i as u64 * 1000,
                samples: vec![Sample::Probe(ProbeSample {
                    probe: NUMBER,
                    values: values.clone(),
                })],
            };
            let raised = rules.evaluate(&SampleInput::new("a", "t", &report)).raised;
            let got = raised.first().map(|a| (a.kind, a.severity));
            assert_eq!(got, want, "{values:?}: {raised:?}");
        }
    }
}
