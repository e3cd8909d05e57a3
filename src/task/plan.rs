//! The iperf plan: every iperf run of every task placed in a time slot, so that no two tests
//! ever share an iperf server or an agent at the same moment, as perfSONAR's exclusive
//! scheduling class does.
//!
//! A run occupies both its ends, the client agent and the server (an agent of the tasks, or a
//! host known only by its address), for its duration plus [`SLOT_MARGIN_S`] (connection set-up
//! and the exchange of results), once per period. Periods are aligned on the server's clock: a
//! run with offset `o` and frequency `F` starts whenever the server's Unix time, in
//! milliseconds, is `o` past a multiple of `F`. Two runs with periods `F1` and `F2` and slots
//! `s1` and `s2` never overlap exactly when their offsets differ, modulo `g = gcd(F1, F2)`, by
//! at least `s1` one way and `s2` the other; runs are placed one after the other, in the order
//! given (task number, device, item), each at the earliest offset that clears every run
//! already placed that shares an end with it. A run that fits nowhere is left out with the
//! reason.

use super::model::{IperfTarget, PlannedItem, Task};
use crate::wire::Transport;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// Seconds added to a test's duration for its slot: connecting, the parameter exchange and the
/// results exchange of iperf3 take well under a second on a LAN.
pub const SLOT_MARGIN_S: u32 = 1;

/// One end of an iperf test.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Endpoint {
    /// A device of the tasks (its agent).
    Agent(String),
    /// An iperf server known only by the address a client's `server_address` gives.
    Host(String),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Agent(name) => f.write_str(name),
            Endpoint::Host(address) => write!(f, "host {address}"),
        }
    }
}

/// One iperf client item of one task, as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Run {
    pub task_id: String,
    /// The client's device id.
    pub client: String,
    /// The position of the client item among the device's items.
    pub item: usize,
    pub server: Endpoint,
    pub port: u16,
    pub transport: Transport,
    pub duration_s: u32,
    pub frequency_s: u32,
}

impl Run {
    /// How long the run occupies its ends, in milliseconds.
    pub fn slot_ms(&self) -> u64 {
        u64::from(self.duration_s + SLOT_MARGIN_S) * 1000
    }

    fn period_ms(&self) -> u64 {
        u64::from(self.frequency_s) * 1000
    }

    fn ends(&self) -> [Endpoint; 2] {
        [Endpoint::Agent(self.client.clone()), self.server.clone()]
    }

    fn shares_an_end(&self, other: &Run) -> bool {
        let theirs = other.ends();
        self.ends().iter().any(|e| theirs.contains(e))
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task {}: {} -> {} port {} ({}, {} s every {} s)",
            self.task_id,
            self.client,
            self.server,
            self.port,
            self.transport.name(),
            self.duration_s,
            self.frequency_s
        )
    }
}

/// A run and where its slot starts in each period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placed {
    pub run: Run,
    pub offset_ms: u32,
}

/// A run the plan could not place, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unplaced {
    pub run: Run,
    pub reason: String,
}

/// Where every iperf run goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IperfPlan {
    pub placed: Vec<Placed>,
    pub unplaced: Vec<Unplaced>,
}

impl IperfPlan {
    /// Places the iperf runs of `tasks`, in that order.
    pub fn build<'a>(tasks: impl IntoIterator<Item = &'a Task> + Clone) -> IperfPlan {
        // A client that names its server by address tests against that agent when a server
        // entry of the tasks declares the address as its own.
        let mut declared: HashMap<&str, &str> = HashMap::new();
        for task in tasks.clone() {
            for device in &task.devices {
                for item in &device.items {
                    if let PlannedItem::IperfServer {
                        address: Some(address),
                        ..
                    } = item
                    {
                        declared.entry(address).or_insert(&device.device_id);
                    }
                }
            }
        }
        let mut plan = IperfPlan::default();
        for task in tasks {
            for device in &task.devices {
                for (i, item) in device.items.iter().enumerate() {
                    let PlannedItem::IperfClient {
                        server,
                        port,
                        duration_s,
                        transport,
                        frequency_s,
                        ..
                    } = item
                    else {
                        continue;
                    };
                    let server = match server {
                        IperfTarget::Device(d) => Endpoint::Agent(d.clone()),
                        IperfTarget::Address(a) => match declared.get(a.as_str()) {
                            Some(d) => Endpoint::Agent((*d).to_owned()),
                            None => Endpoint::Host(a.clone()),
                        },
                    };
                    plan.place(Run {
                        task_id: task.task_id.clone(),
                        client: device.device_id.clone(),
                        item: i,
                        server,
                        port: *port,
                        transport: *transport,
                        duration_s: *duration_s,
                        frequency_s: *frequency_s,
                    });
                }
            }
        }
        plan
    }

    /// Puts `run` at the earliest offset that clears every placed run it shares an end with.
    fn place(&mut self, run: Run) {
        let period = run.period_ms();
        let slot = run.slot_ms();
        let others: Vec<&Placed> = self
            .placed
            .iter()
            .filter(|p| p.run.shares_an_end(&run))
            .collect();
        let fits = |offset: u64| {
            slot <= period
                && others.iter().all(|p| {
                    let g = gcd(period, p.run.period_ms());
                    let apart = (offset + g - u64::from(p.offset_ms) % g) % g;
                    apart >= p.run.slot_ms() && g - apart >= slot
                })
        };
        // The earliest feasible offset is 0 or the end of some other run's slot (modulo the
        // two periods' gcd): try those.
        let mut candidates = BTreeSet::from([0u64]);
        for p in &others {
            let g = gcd(period, p.run.period_ms());
            let mut at = (u64::from(p.offset_ms) + p.run.slot_ms()) % g;
            while at < period && candidates.len() <= MAX_CANDIDATES {
                candidates.insert(at);
                at += g;
            }
        }
        match candidates.into_iter().find(|&c| fits(c)) {
            Some(offset) => self.placed.push(Placed {
                run,
                offset_ms: offset as u32,
            }),
            None => {
                let sharing: Vec<String> = others
                    .iter()
                    .map(|p| format!("{} at +{} s", p.run, p.offset_ms / 1000))
                    .collect();
                let reason = if slot > period {
                    format!(
                        "its {} s slot (the test and {SLOT_MARGIN_S} s to set up) is longer than \
                         its frequency of {} s",
                        slot / 1000,
                        run.frequency_s
                    )
                } else {
                    format!(
                        "no {} s slot (the test and {SLOT_MARGIN_S} s to set up) is free in every \
                         {} s period: {} and {} already use their time with {}",
                        slot / 1000,
                        run.frequency_s,
                        run.client,
                        run.server,
                        sharing.join("; ")
                    )
                };
                self.unplaced.push(Unplaced { run, reason });
            }
        }
    }

    /// The offset of the client item `item` of device `client` in task `task_id`, if placed.
    pub fn offset_ms(&self, task_id: &str, client: &str, item: usize) -> Option<u32> {
        self.placed
            .iter()
            .find(|p| p.run.task_id == task_id && p.run.client == client && p.run.item == item)
            .map(|p| p.offset_ms)
    }

    /// The placed runs of one task.
    pub fn runs_of<'a>(&'a self, task_id: &'a str) -> impl Iterator<Item = &'a Placed> + 'a {
        self.placed.iter().filter(move |p| p.run.task_id == task_id)
    }

    /// The runs of one task that could not be placed.
    pub fn unplaced_of<'a>(&'a self, task_id: &'a str) -> impl Iterator<Item = &'a Unplaced> + 'a {
        self.unplaced
            .iter()
            .filter(move |u| u.run.task_id == task_id)
    }

    /// One line per run, ordered by server and offset: `r2 port 5201  +0 s  task t: r3 -> ...`.
    pub fn lines(&self) -> Vec<String> {
        let mut placed: Vec<&Placed> = self.placed.iter().collect();
        placed.sort_by(|a, b| {
            (&a.run.server, a.offset_ms, &a.run.task_id).cmp(&(
                &b.run.server,
                b.offset_ms,
                &b.run.task_id,
            ))
        });
        placed
            .iter()
            .map(|p| {
                format!(
                    "{:>8}  {} ({} s slot)",
                    format!("+{} s", f64::from(p.offset_ms) / 1000.0),
                    p.run,
                    p.run.slot_ms() / 1000
                )
            })
            .chain(
                self.unplaced
                    .iter()
                    .map(|u| format!("not scheduled  {}: {}", u.run, u.reason)),
            )
            .collect()
    }
}

/// Most offsets tried for one run (a period of one day in whole seconds).
const MAX_CANDIDATES: usize = 86_401;

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(task: &str, client: &str, server: &str, duration_s: u32, frequency_s: u32) -> Run {
        Run {
            task_id: task.into(),
            client: client.into(),
            item: 0,
            server: Endpoint::Agent(server.into()),
            port: 5201,
            transport: Transport::Tcp,
            duration_s,
            frequency_s,
        }
    }

    fn offsets(runs: Vec<Run>) -> (Vec<u32>, usize) {
        let mut plan = IperfPlan::default();
        for r in runs {
            plan.place(r);
        }
        (
            plan.placed.iter().map(|p| p.offset_ms / 1000).collect(),
            plan.unplaced.len(),
        )
    }

    #[test]
    fn runs_on_one_server_follow_each_other() {
        let (placed, unplaced) = offsets(vec![
            run("t", "r3", "r2", 5, 20),
            run("t", "r3", "r2", 5, 20),
            run("u", "r1", "r2", 3, 20),
        ]);
        assert_eq!(placed, [0, 6, 12]);
        assert_eq!(unplaced, 0);
    }

    #[test]
    fn runs_without_a_common_end_share_the_time() {
        let (placed, _) = offsets(vec![
            run("t", "r1", "r2", 10, 30),
            run("u", "r3", "r4", 10, 20),
        ]);
        assert_eq!(placed, [0, 0]);
    }

    #[test]
    fn different_periods_are_kept_apart_in_every_period() {
        // 20 s and 30 s periods meet every 10 s (their gcd): the 30 s runs keep 4 s away from
        // the 20 s run modulo 10 s, and 4 s from each other modulo 30 s.
        let (placed, unplaced) = offsets(vec![
            run("a", "r1", "r2", 3, 20),
            run("b", "r3", "r2", 3, 30),
            run("c", "r4", "r2", 3, 30),
        ]);
        assert_eq!(placed, [0, 4, 14]);
        assert_eq!(unplaced, 0);
        // 6 s slots every 10 s and 12 s slots every 15 s cannot be kept apart (6 + 12 > 5).
        let (placed, unplaced) = offsets(vec![
            run("a", "r1", "r2", 5, 10),
            run("b", "r3", "r2", 11, 15),
        ]);
        assert_eq!((placed, unplaced), (vec![0], 1));
    }

    #[test]
    fn what_does_not_fit_says_why() {
        let mut plan = IperfPlan::default();
        plan.place(run("t", "r3", "r2", 10, 20));
        plan.place(run("t", "r1", "r2", 10, 20));
        assert_eq!(plan.placed.len(), 1);
        assert_eq!(
            plan.unplaced[0].reason,
            "no 11 s slot (the test and 1 s to set up) is free in every 20 s period: r1 and r2 \
             already use their time with task t: r3 -> r2 port 5201 (tcp, 10 s every 20 s) at +0 s"
        );
    }

    #[test]
    fn the_gcd_rule_matches_a_brute_force_check() {
        // Over the hyperperiod, the placed runs never overlap on a shared end.
        let runs = vec![
            run("a", "r1", "r2", 2, 6),
            run("b", "r3", "r2", 1, 4),
            run("c", "r1", "r4", 1, 10),
            run("d", "r4", "r2", 1, 15),
        ];
        let mut plan = IperfPlan::default();
        for r in runs {
            plan.place(r);
        }
        let busy = |p: &Placed, t: u64| {
            let period = p.run.period_ms();
            let start = u64::from(p.offset_ms);
            (t + period - start % period) % period < p.run.slot_ms()
        };
        for t in (0..60_000).step_by(500) {
            for (i, a) in plan.placed.iter().enumerate() {
                for b in &plan.placed[i + 1..] {
                    if a.run.shares_an_end(&b.run) {
                        assert!(
                            !(busy(a, t) && busy(b, t)),
                            "{} and {} overlap at {t} ms",
                            a.run,
                            b.run
                        );
                    }
                }
            }
        }
    }
}
