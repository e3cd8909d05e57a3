//! The Prometheus remote-write 1.0 request: `prometheus.WriteRequest` (protobuf, from
//! Prometheus' `prompb/remote.proto` and `types.proto`) compressed with snappy's block format.
//!
//! The message types are written out for prost (no build step): what the receiver decodes.
//! Requests are encoded by [`RequestBuilder`] into the same bytes without building them: the
//! labels of each series are encoded once and kept ([`SeriesLabels`]), and a request is the
//! kept label bytes and the samples of each series, so that a sample costs a few byte copies.
//! A test decodes what the builder wrote with the prost types.

use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: labels sorted by name (`__name__` first), samples in time order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`: a value at a time in Unix milliseconds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// A series' labels, encoded once as the `labels` fields of a `TimeSeries`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesLabels(Vec<u8>);

impl SeriesLabels {
    /// Encodes `labels` (sorted here by name, as the protocol requires).
    pub fn new(labels: &[(&str, &str)]) -> SeriesLabels {
        let mut sorted: Vec<&(&str, &str)> = labels.iter().collect();
        sorted.sort_by_key(|(name, _)| *name);
        let mut out = Vec::new();
        for (name, value) in sorted {
            let len = string_field_len(name) + string_field_len(value);
            encode_key(1, WireType::LengthDelimited, &mut out);
            encode_varint(len as u64, &mut out);
            put_string_field(1, name, &mut out);
            put_string_field(2, value, &mut out);
        }
        SeriesLabels(out)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn string_field_len(s: &str) -> usize {
    1 + encoded_len_varint(s.len() as u64) + s.len()
}

fn put_string_field(tag: u32, s: &str, out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

fn sample_len(timestamp_ms: i64) -> usize {
    1 + 8 + 1 + encoded_len_varint(timestamp_ms as u64)
}

/// Builds one `WriteRequest`: series after series, each with its samples.
#[derive(Debug, Default)]
pub struct RequestBuilder {
    out: Vec<u8>,
    series: usize,
    samples: usize,
}

impl RequestBuilder {
    /// Adds a series with its samples, (time in Unix ms, value), in time order.
    pub fn series(&mut self, labels: &SeriesLabels, samples: &[(i64, f64)]) {
        let samples_len: usize = samples
            .iter()
            .map(|(t, _)| {
                let n = sample_len(*t);
                1 + encoded_len_varint(n as u64) + n
            })
            .sum();
        let len = labels.len() + samples_len;
        encode_key(1, WireType::LengthDelimited, &mut self.out);
        encode_varint(len as u64, &mut self.out);
        self.out.extend_from_slice(&labels.0);
        for (t, v) in samples.iter() {
            encode_key(2, WireType::LengthDelimited, &mut self.out);
            encode_varint(sample_len(*t) as u64, &mut self.out);
            encode_key(1, WireType::SixtyFourBit, &mut self.out);
            self.out.extend_from_slice(&v.to_le_bytes());
            encode_key(2, WireType::Varint, &mut self.out);
            encode_varint(*t as u64, &mut self.out);
        }
        self.series += 1;
        self.samples += samples.len();
    }

    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The request as it is posted: snappy's block format of the protobuf bytes.
    pub fn finish(self) -> Vec<u8> {
        // The encoder fails only for inputs beyond snappy's limit (about 4 GiB); requests
        // are bounded far below that by the samples per send.
        snap::raw::Encoder::new()
            .compress_vec(&self.out)
            .unwrap_or_default()
    }

    /// The uncompressed protobuf bytes (for tests).
    pub fn bytes(&self) -> &[u8] {
        &self.out
    }
}

/// Decodes a posted body (snappy, then protobuf), as a receiver does.
pub fn decode(body: &[u8]) -> Result<WriteRequest, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("not snappy: {e}"))?;
    <WriteRequest as prost::Message>::decode(raw.as_slice())
        .map_err(|e| format!("not a WriteRequest: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_builder_writes_decodes_as_a_write_request() {
        let cpu = SeriesLabels::new(&[("agent", "r1"), ("__name__", "nms_cpu_usage_ratio")]);
        let rtt = SeriesLabels::new(&[
            ("__name__", "nms_ping_rtt_avg_seconds"),
            ("task", "t\u{e9}"),
            ("destination", "10.0.0.1"),
            ("agent", "r1"),
        ]);
        let mut b = RequestBuilder::default();
        b.series(&cpu, &[(1_795_000_000_000, 0.0), (1_795_000_001_000, 0.25)]);
        b.series(&rtt, &[(1_795_000_000_500, 0.000029)]);
        assert_eq!(b.samples(), 3);
        let request = decode(&b.finish()).unwrap();
        let label = |n: &str, v: &str| Label {
            name: n.into(),
            value: v.into(),
        };
        assert_eq!(
            request,
            WriteRequest {
                timeseries: vec![
                    TimeSeries {
                        labels: vec![
                            label("__name__", "nms_cpu_usage_ratio"),
                            label("agent", "r1")
                        ],
                        samples: vec![
                            Sample {
                                value: 0.0,
                                timestamp: 1_795_000_000_000
                            },
                            Sample {
                                value: 0.25,
                                timestamp: 1_795_000_001_000
                            },
                        ],
                    },
                    TimeSeries {
                        labels: vec![
                            label("__name__", "nms_ping_rtt_avg_seconds"),
                            label("agent", "r1"),
                            label("destination", "10.0.0.1"),
                            label("task", "t\u{e9}"),
                        ],
                        samples: vec![Sample {
                            value: 0.000029,
                            timestamp: 1_795_000_000_500
                        }],
                    },
                ],
            }
        );
        // The same bytes as prost's own encoding of that message.
        let mut b2 = RequestBuilder::default();
        b2.series(&rtt, &[(1_795_000_000_500, 0.000029)]);
        let ours = b2.bytes().to_vec();
        let theirs = prost::Message::encode_to_vec(&WriteRequest {
            timeseries: vec![request.timeseries[1].clone()],
        });
        assert_eq!(ours, theirs);
    }

    #[test]
    fn a_body_that_is_not_snappy_or_protobuf_is_refused() {
        assert!(decode(b"plain text").is_err());
        let junk = snap::raw::Encoder::new().compress_vec(&[0xff; 9]).unwrap();
        assert!(decode(&junk).is_err());
    }
}
