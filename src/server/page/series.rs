//! The series the graphs show, taken from the store's steps of an agent's reports (the
//! statistics of each step: an RTT band from the smallest to the largest round trip around the
//! median, the mean of the other fields), and where they have gaps. A series is cut where consecutive samples are more than [`GAP_INTERVALS`] sampling
//! intervals apart (the interval being the median spacing of its samples), so a graph never
//! draws a line through a time without data.

use crate::schema::Field;
use crate::store::StepSeries;
use crate::store::query::StepRow;
use std::collections::BTreeMap;

/// Sampling intervals without a sample after which a series has a gap.
pub const GAP_INTERVALS: u64 = 3;

/// Something measured at a time.
pub trait Timed {
    fn time_ms(&self) -> u64;
}

/// One value at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub time_ms: u64,
    pub value: f64,
}

/// One report's round-trip times: the band from `min` to `max`, and `avg` in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub time_ms: u64,
    pub min: f64,
    pub avg: f64,
    pub max: f64,
}

impl Timed for Point {
    fn time_ms(&self) -> u64 {
        self.time_ms
    }
}

impl Timed for Band {
    fn time_ms(&self) -> u64 {
        self.time_ms
    }
}

/// The typical time between samples (sorted by time): the median of the spacings that are not
/// zero; `None` with fewer than two distinct times.
pub fn sampling_interval<T: Timed>(samples: &[T]) -> Option<u64> {
    let mut spacings: Vec<u64> = samples
        .windows(2)
        .map(|w| w[1].time_ms().saturating_sub(w[0].time_ms()))
        .filter(|d| *d > 0)
        .collect();
    if spacings.is_empty() {
        return None;
    }
    spacings.sort_unstable();
    Some(spacings[spacings.len() / 2])
}

/// The runs of samples (sorted by time) with no gap longer than [`GAP_INTERVALS`] sampling
/// intervals inside; no runs for no samples.
pub fn segments<T: Timed>(samples: &[T]) -> Vec<&[T]> {
    let Some(interval) = sampling_interval(samples) else {
        return if samples.is_empty() {
            Vec::new()
        } else {
            vec![samples]
        };
    };
    let longest = interval.saturating_mul(GAP_INTERVALS);
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..samples.len() {
        if samples[i]
            .time_ms()
            .saturating_sub(samples[i - 1].time_ms())
            > longest
        {
            out.push(&samples[start..i]);
            start = i;
        }
    }
    out.push(&samples[start..]);
    out
}

/// What a graph shows, in the order the page shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    Rtt,
    Jitter,
    Loss,
    /// TCP iperf3 tests: what the link carries when a test sends as fast as it can.
    Bandwidth,
    /// UDP iperf3 tests: what arrived, at the rate the test offered.
    UdpBandwidth,
    /// UDP iperf3 tests: the rate offered.
    UdpOffered,
    Cpu,
    Ram,
}

impl Metric {
    pub fn title(self) -> &'static str {
        match self {
            Metric::Rtt => "RTT",
            Metric::Jitter => "Jitter",
            Metric::Loss => "Loss",
            Metric::Bandwidth => "TCP bandwidth",
            Metric::UdpBandwidth => "UDP bandwidth",
            Metric::UdpOffered => "UDP offered",
            Metric::Cpu => "CPU",
            Metric::Ram => "RAM",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::Rtt | Metric::Jitter => "ms",
            Metric::Loss | Metric::Cpu | Metric::Ram => "%",
            Metric::Bandwidth | Metric::UdpBandwidth | Metric::UdpOffered => "Mbit/s",
        }
    }

    /// The fields a line graph shows (the first present), the instance they must be measured
    /// on (an iperf transport), and the factor to its unit.
    fn fields(self) -> (&'static [Field], Option<&'static str>, f64) {
        match self {
            Metric::Rtt => (&[Field::RttAvgMs], None, 1.0),
            Metric::Jitter => (&[Field::JitterMs, Field::IperfJitterMs], None, 1.0),
            Metric::Loss => (&[Field::LossPercent, Field::IperfLossPercent], None, 1.0),
            Metric::Bandwidth => (&[Field::BandwidthBps], Some("tcp"), 1e-6),
            Metric::UdpBandwidth => (&[Field::BandwidthBps], Some("udp"), 1e-6),
            Metric::UdpOffered => (&[Field::OfferedBps], Some("udp"), 1e-6),
            Metric::Cpu => (&[Field::CpuPercent], None, 1.0),
            Metric::Ram => (&[Field::RamPercent], None, 1.0),
        }
    }

    /// Link metrics are graphed per destination; host metrics are the agent's own.
    fn per_target(self) -> bool {
        !matches!(self, Metric::Cpu | Metric::Ram)
    }
}

/// The samples of one graph.
#[derive(Debug, Clone, PartialEq)]
pub enum Samples {
    Band(Vec<Band>),
    Line(Vec<Point>),
}

/// One graph of an agent: a metric, towards a target for link metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub metric: Metric,
    pub target: Option<String>,
    pub samples: Samples,
}

/// The statistics of a field in a step (measured on `instance`, when given).
fn stat<'a>(
    row: &'a StepRow,
    field: Field,
    instance: Option<&str>,
) -> Option<&'a crate::store::query::StepStat> {
    row.stats.iter().find(|s| {
        s.column.field == field
            && instance.is_none_or(|i| s.column.instance.as_deref() == Some(i))
            && s.count > 0
            && s.mean.is_finite()
    })
}

/// The graphs `series` have data for: RTT bands, then jitter, loss and bandwidth lines (one
/// graph per target of each; TCP bandwidth, UDP bandwidth and the UDP offered rate apart), then
/// CPU and RAM. Samples are sorted
/// by time.
pub fn graphs(series: &[StepSeries]) -> Vec<Graph> {
    let mut bands: BTreeMap<Option<String>, Vec<Band>> = BTreeMap::new();
    let mut lines: BTreeMap<(Metric, Option<String>), Vec<Point>> = BTreeMap::new();
    for s in series {
        for row in &s.steps {
            if let Some(avg) = stat(row, Field::RttAvgMs, None) {
                let middle = avg.quantiles.map_or(avg.mean, |q| q[1]);
                bands.entry(s.target.clone()).or_default().push(Band {
                    time_ms: row.start_ms,
                    min: stat(row, Field::RttMinMs, None).map_or(avg.min, |m| m.min.min(middle)),
                    avg: middle,
                    max: stat(row, Field::RttMaxMs, None).map_or(avg.max, |m| m.max.max(middle)),
                });
            }
            for metric in [
                Metric::Jitter,
                Metric::Loss,
                Metric::Bandwidth,
                Metric::UdpBandwidth,
                Metric::UdpOffered,
                Metric::Cpu,
                Metric::Ram,
            ] {
                let (fields, instance, factor) = metric.fields();
                let Some(v) = fields.iter().find_map(|f| stat(row, *f, instance)) else {
                    continue;
                };
                let target = s.target.clone().filter(|_| metric.per_target());
                lines.entry((metric, target)).or_default().push(Point {
                    time_ms: row.start_ms,
                    value: v.mean * factor,
                });
            }
        }
    }
    let mut out: Vec<Graph> = bands
        .into_iter()
        .map(|(target, mut samples)| {
            samples.sort_by_key(|s| s.time_ms);
            Graph {
                metric: Metric::Rtt,
                target,
                samples: Samples::Band(samples),
            }
        })
        .collect();
    out.extend(lines.into_iter().map(|((metric, target), mut samples)| {
        samples.sort_by_key(|s| s.time_ms);
        Graph {
            metric,
            target,
            samples: Samples::Line(samples),
        }
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(times: &[u64]) -> Vec<Point> {
        times
            .iter()
            .map(|&time_ms| Point {
                time_ms,
                value: 1.0,
            })
            .collect()
    }

    /// A series of steps, each one report (count 1) of the given field values.
    fn series(target: Option<&str>, rows: &[(u64, &[(&str, f64)])]) -> StepSeries {
        use crate::store::chunk::Column;
        use crate::store::query::StepStat;
        StepSeries {
            agent: "r1".into(),
            task: "t1".into(),
            target: target.map(str::to_string),
            tier: "raw",
            steps: rows
                .iter()
                .map(|(t, values)| StepRow {
                    start_ms: *t,
                    stats: values
                        .iter()
                        .map(|(name, v)| {
                            // iperf fields by transport: `bandwidth_bps` is TCP here.
                            let (field, instance) = match *name {
                                "udp_bandwidth_bps" => (Field::BandwidthBps, Some("udp")),
                                "udp_offered_bps" => (Field::OfferedBps, Some("udp")),
                                "bandwidth_bps" => (Field::BandwidthBps, Some("tcp")),
                                other => (Field::by_name(other).unwrap(), None),
                            };
                            StepStat {
                                column: Column {
                                    field,
                                    instance: instance.map(str::to_string),
                                },
                                count: 1,
                                min: *v,
                                max: *v,
                                mean: *v,
                                quantiles: field.def().distribution.then_some([*v; 3]),
                            }
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_sampling_interval_is_the_median_spacing() {
        assert_eq!(sampling_interval(&points(&[0, 5, 10, 15, 100])), Some(5));
        assert_eq!(sampling_interval(&points(&[0, 0, 5, 5, 10])), Some(5));
        assert_eq!(sampling_interval(&points(&[7])), None);
        assert_eq!(sampling_interval(&points(&[7, 7])), None);
        assert_eq!(sampling_interval::<Point>(&[]), None);
    }

    #[test]
    fn series_are_cut_where_more_than_three_intervals_lack_data() {
        let samples = points(&[0, 5, 10, 15, 30, 35, 40, 56, 61]);
        let runs: Vec<Vec<u64>> = segments(&samples)
            .iter()
            .map(|run| run.iter().map(|p| p.time_ms).collect())
            .collect();
        // 15 -> 30 is exactly three intervals: no gap; 40 -> 56 is more: a gap.
        assert_eq!(runs, vec![vec![0, 5, 10, 15, 30, 35, 40], vec![56, 61]]);
    }

    #[test]
    fn short_series_are_one_run_or_none() {
        assert!(segments::<Point>(&[]).is_empty());
        assert_eq!(segments(&points(&[9])).len(), 1);
        assert_eq!(
            segments(&points(&[9, 1000])).len(),
            1,
            "one spacing is the interval"
        );
    }

    /// The records of one host (CPU, RAM, a NaN) and of three destinations: a full ping, a
    /// ping with only an average and a loss, and TCP and UDP iperf.
    fn host_and_three_destinations() -> [StepSeries; 4] {
        [
            series(
                None,
                &[
                    (1000, &[("cpu_percent", 12.0), ("ram_percent", 40.0)]),
                    (5000, &[("cpu_percent", f64::NAN)]),
                ],
            ),
            series(
                Some("10.0.0.1"),
                &[(
                    1000,
                    &[
                        ("rtt_min_ms", 1.0),
                        ("rtt_avg_ms", 2.0),
                        ("rtt_max_ms", 4.0),
                        ("jitter_ms", 0.5),
                        ("loss_percent", 0.0),
                    ],
                )],
            ),
            series(
                Some("10.0.0.2"),
                &[
                    (2000, &[("rtt_avg_ms", 3.0), ("loss_percent", 0.0)]),
                    (3000, &[("loss_percent", 100.0)]),
                ],
            ),
            series(
                Some("10.0.0.3"),
                &[
                    (4000, &[("bandwidth_bps", 94_500_000.0)]),
                    (
                        4500,
                        &[
                            ("udp_bandwidth_bps", 99_000_000.0),
                            ("udp_offered_bps", 100_000_000.0),
                        ],
                    ),
                ],
            ),
        ]
    }

    #[test]
    fn graphs_follow_what_the_records_hold() {
        let records = host_and_three_destinations();
        let graphs = graphs(&records);
        let names: Vec<(Metric, Option<&str>)> = graphs
            .iter()
            .map(|g| (g.metric, g.target.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                (Metric::Rtt, Some("10.0.0.1")),
                (Metric::Rtt, Some("10.0.0.2")),
                (Metric::Jitter, Some("10.0.0.1")),
                (Metric::Loss, Some("10.0.0.1")),
                (Metric::Loss, Some("10.0.0.2")),
                (Metric::Bandwidth, Some("10.0.0.3")),
                (Metric::UdpBandwidth, Some("10.0.0.3")),
                (Metric::UdpOffered, Some("10.0.0.3")),
                (Metric::Cpu, None),
                (Metric::Ram, None),
            ]
        );
        assert_eq!(
            graphs[1].samples,
            Samples::Band(vec![Band {
                time_ms: 2000,
                min: 3.0,
                avg: 3.0,
                max: 3.0
            }]),
            "a report with only an average is a band of no width"
        );
        assert_eq!(
            graphs[4].samples,
            Samples::Line(points_with(&[(2000, 0.0), (3000, 100.0)]))
        );
        assert_eq!(
            graphs[5].samples,
            Samples::Line(points_with(&[(4000, 94.5)])),
            "bandwidth in Mbit/s"
        );
        assert_eq!(
            graphs[6].samples,
            Samples::Line(points_with(&[(4500, 99.0)])),
            "TCP and UDP bandwidth are graphed apart"
        );
        assert_eq!(
            graphs[8].samples,
            Samples::Line(points_with(&[(1000, 12.0)])),
            "NaN left out"
        );
        assert!(super::graphs(&[]).is_empty());
    }

    fn points_with(pairs: &[(u64, f64)]) -> Vec<Point> {
        pairs
            .iter()
            .map(|&(time_ms, value)| Point { time_ms, value })
            .collect()
    }
}
