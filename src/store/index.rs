//! The in-memory index of stored metrics: which report times each (agent, task) has stored (to
//! store each report once) and a ring of each agent's recent records (for queries and the
//! Prometheus exposition).
//!
//! It is built for many agents: names are interned (`Arc<str>`, one copy however many records
//! name them), a record is kept in a compact form (numbers as `f32`, as they travel on the
//! wire, unmeasured values as NaN), remembered report times are 32-bit offsets, and the rings
//! share one budget of records, so memory stays bounded whether 10 or 100,000 agents report.

use super::{InterfaceRates, MetricRecord, Query};
use crate::wire::LinkState;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// Most recent records one agent's ring keeps.
pub const RECENT_METRICS_PER_AGENT: usize = 3600;
/// Fewest recent records one agent's ring keeps, however many agents share the budget.
pub const MIN_RECENT_METRICS_PER_AGENT: usize = 8;
/// Recent records kept in memory in total, shared by the agents' rings.
pub const RECENT_METRICS_BUDGET: usize = 65_536;
/// Report times remembered per (agent, task) to recognise a report stored before: the NetTask
/// send window, so every report that can be in flight when a session ends is covered.
pub const DEDUP_WINDOW: usize = crate::nettask::window::SEND_WINDOW as usize;

/// The named values a record can carry, in the order of [`Compact::values`].
const VALUE_NAMES: [&str; 10] = [
    "cpu_percent",
    "ram_percent",
    "rtt_min_ms",
    "rtt_avg_ms",
    "rtt_max_ms",
    "jitter_ms",
    "loss_percent",
    "bandwidth_bps",
    "udp_bandwidth_bps",
    "udp_offered_bps",
];

/// A record as the index keeps it.
#[derive(Debug, Clone)]
struct Compact {
    time_ms: u64,
    task: Arc<str>,
    target: Option<Arc<str>>,
    /// NaN: not in the record.
    values: [f32; VALUE_NAMES.len()],
    interfaces: Box<[CompactInterface]>,
}

/// An interface of a compact record: its name, packets, bytes and errors per second, state.
type CompactInterface = (Arc<str>, [f32; 3], Option<LinkState>);

/// What a record measured, so that the latest of each is kept apart (a TCP and a UDP test, or a
/// ping and a test, towards one target).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Measurement {
    Host,
    Ping,
    TcpIperf,
    UdpIperf,
}

impl Compact {
    fn measurement(&self) -> Measurement {
        let has = |name: &str| {
            VALUE_NAMES
                .iter()
                .position(|n| *n == name)
                .is_some_and(|i| !self.values[i].is_nan())
        };
        if has("udp_bandwidth_bps") {
            Measurement::UdpIperf
        } else if has("bandwidth_bps") {
            Measurement::TcpIperf
        } else if has("loss_percent") || has("rtt_avg_ms") {
            Measurement::Ping
        } else {
            Measurement::Host
        }
    }
}

/// Report times of one (agent, task), as offsets from the first one seen, oldest first.
#[derive(Debug)]
struct SeenTimes {
    task: Arc<str>,
    base_ms: u64,
    order: VecDeque<u32>,
}

impl SeenTimes {
    fn offset(&self, t: u64) -> Option<u32> {
        u32::try_from(t.checked_sub(self.base_ms)?).ok()
    }

    fn contains(&self, t: u64) -> bool {
        self.offset(t).is_some_and(|o| self.order.contains(&o))
    }

    fn insert(&mut self, t: u64) {
        // A time outside the offsets' range (49 days after the first, or before it) is not
        // remembered; such reports are too far apart to be copies of each other.
        if let Some(o) = self.offset(t) {
            self.order.push_back(o);
            if self.order.len() > DEDUP_WINDOW {
                self.order.pop_front();
            }
        }
    }

    fn remove(&mut self, t: u64) {
        if let Some(o) = self.offset(t)
            && let Some(pos) = self.order.iter().rposition(|x| *x == o)
        {
            self.order.remove(pos);
        }
    }
}

#[derive(Debug)]
struct AgentMetrics {
    /// One entry per task the agent reports for (a handful at most).
    seen: Vec<SeenTimes>,
    /// Ordered by time.
    ring: VecDeque<Compact>,
}

#[derive(Debug, Default)]
pub struct MetricIndex {
    agents: HashMap<Arc<str>, AgentMetrics>,
    names: HashSet<Arc<str>>,
}

impl MetricIndex {
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.names.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.names.insert(a.clone());
        a
    }

    /// Whether (agent, task, time) was stored before.
    pub fn seen(&self, r: &MetricRecord) -> bool {
        self.agents.get(r.agent.as_str()).is_some_and(|a| {
            a.seen
                .iter()
                .any(|s| &*s.task == r.task.as_str() && s.contains(r.time_ms))
        })
    }

    /// Remembers (agent, task, time) as stored.
    pub fn mark(&mut self, r: &MetricRecord) {
        let task = self.intern(&r.task);
        let agent = self.agent(&r.agent);
        match agent.seen.iter_mut().find(|s| s.task == task) {
            Some(s) => s.insert(r.time_ms),
            None => {
                let mut s = SeenTimes {
                    task,
                    base_ms: r.time_ms.saturating_sub(u64::from(u32::MAX / 2)),
                    order: VecDeque::new(),
                };
                s.insert(r.time_ms);
                agent.seen.push(s);
            }
        }
    }

    /// Forgets a time marked by [`MetricIndex::mark`] (its record was not written after all).
    pub fn unmark(&mut self, r: &MetricRecord) {
        if let Some(a) = self.agents.get_mut(r.agent.as_str())
            && let Some(s) = a.seen.iter_mut().find(|s| &*s.task == r.task.as_str())
        {
            s.remove(r.time_ms);
        }
    }

    fn agent(&mut self, name: &str) -> &mut AgentMetrics {
        if !self.agents.contains_key(name) {
            let name = self.intern(name);
            self.agents.insert(
                name,
                AgentMetrics {
                    seen: Vec::new(),
                    ring: VecDeque::new(),
                },
            );
        }
        self.agents
            .get_mut(name)
            .expect("the agent's entry was just made")
    }

    /// Adds a stored record to its agent's ring, dropping the oldest past the agent's share of
    /// the budget.
    pub fn insert(&mut self, r: &MetricRecord) {
        let compact = Compact {
            time_ms: r.time_ms,
            task: self.intern(&r.task),
            target: r.target.as_deref().map(|t| self.intern(t)),
            values: std::array::from_fn(|i| {
                r.values.get(VALUE_NAMES[i]).map_or(f32::NAN, |v| *v as f32)
            }),
            interfaces: r
                .interfaces
                .iter()
                .map(|(name, x)| {
                    (
                        self.intern(name),
                        [
                            x.packets_per_sec as f32,
                            x.bytes_per_sec as f32,
                            x.errors_per_sec as f32,
                        ],
                        x.state,
                    )
                })
                .collect(),
        };
        let agents = self.agents.len().max(1);
        let share = (RECENT_METRICS_BUDGET / agents)
            .clamp(MIN_RECENT_METRICS_PER_AGENT, RECENT_METRICS_PER_AGENT);
        let ring = &mut self.agent(&r.agent).ring;
        // Keep the ring ordered by time (backfilled reports arrive late).
        let pos = ring.partition_point(|c| c.time_ms <= compact.time_ms);
        ring.insert(pos, compact);
        while ring.len() > share {
            ring.pop_front();
        }
        if ring.capacity() > 2 * share.max(4) {
            ring.shrink_to(share);
        }
    }

    fn expand(agent: &str, c: &Compact) -> MetricRecord {
        MetricRecord {
            agent: agent.to_string(),
            task: c.task.to_string(),
            time_ms: c.time_ms,
            target: c.target.as_deref().map(str::to_string),
            values: VALUE_NAMES
                .iter()
                .zip(c.values)
                .filter(|(_, v)| !v.is_nan())
                .map(|(k, v)| (k.to_string(), f64::from(v)))
                .collect(),
            interfaces: c
                .interfaces
                .iter()
                .map(|(name, [p, b, e], state)| {
                    (
                        name.to_string(),
                        InterfaceRates {
                            packets_per_sec: f64::from(*p),
                            bytes_per_sec: f64::from(*b),
                            errors_per_sec: f64::from(*e),
                            state: *state,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Recent records matching the query, oldest first; with a limit, the newest `limit`.
    pub fn query(&self, q: &Query) -> Vec<MetricRecord> {
        let wanted = |c: &&Compact| q.since_ms.is_none_or(|since| c.time_ms >= since);
        let mut out: Vec<MetricRecord> = match &q.agent {
            Some(agent) => self
                .agents
                .get_key_value(agent.as_str())
                .map(|(name, a)| {
                    let matching: Vec<&Compact> = a.ring.iter().filter(wanted).collect();
                    let skip = q
                        .limit
                        .map_or(0, |limit| matching.len().saturating_sub(limit));
                    matching[skip..]
                        .iter()
                        .map(|c| Self::expand(name, c))
                        .collect()
                })
                .unwrap_or_default(),
            None => {
                let mut all: Vec<(&str, &Compact)> = self
                    .agents
                    .iter()
                    .flat_map(|(name, a)| a.ring.iter().filter(wanted).map(|c| (&**name, c)))
                    .collect();
                all.sort_by_key(|(_, c)| c.time_ms);
                let skip = q.limit.map_or(0, |limit| all.len().saturating_sub(limit));
                all[skip..]
                    .iter()
                    .map(|(name, c)| Self::expand(name, c))
                    .collect()
            }
        };
        if let Some(limit) = q.limit
            && out.len() > limit
        {
            out.drain(..out.len() - limit);
        }
        out
    }

    /// The newest record of each (agent, task, target).
    pub fn latest(&self) -> Vec<MetricRecord> {
        let mut latest: BTreeMap<(&str, &str, Option<&str>, Measurement), &Compact> =
            BTreeMap::new();
        for (name, a) in &self.agents {
            for c in &a.ring {
                latest.insert((name, &c.task, c.target.as_deref(), c.measurement()), c);
            }
        }
        latest
            .into_iter()
            .map(|((agent, ..), c)| Self::expand(agent, c))
            .collect()
    }
}
