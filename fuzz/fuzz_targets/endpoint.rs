//! A registered server/agent pair fed arbitrary datagrams (as they are, or with a correct tag)
//! between arbitrary sends, deliveries, losses, clock jumps, forgets and re-registrations, with
//! every `poll_*` drained after each step. Nothing may panic, `poll_transmit` must run dry, and
//! the queues stay within their bounds.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use nms::nettask::window::SEND_WINDOW;
use nms::nettask::{AgentEndpoint, Config, Keys, ServerEndpoint, ServerEvent, Transmit};
use nms::wire::{Cancel, Heartbeat, Message, MetricsReport, RuleSource, Sample, TaskAssignment};
use nms_fuzz::{
    AGENT_ADDR, AGENT_ID, MAX_TRANSMITS_PER_STEP, SERVER_ADDR, addr, fuzz_key, registered_pair,
    registered_reply, with_valid_tag,
};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const MAX_QUEUED: usize = 64;
const MAX_IN_TRANSIT: usize = 4096;

#[derive(Arbitrary, Debug)]
enum Op {
    /// A datagram to the server, from the agent's address or another one.
    ToServer {
        bytes: Vec<u8>,
        fix_tag: bool,
        other_address: bool,
    },
    /// A datagram to the agent, from the server's address or another one.
    ToAgent {
        bytes: Vec<u8>,
        fix_tag: bool,
        other_address: bool,
    },
    /// Deliver what each side sent so far (some of it: the first `keep` datagrams each way).
    Deliver {
        keep: u8,
        reverse: bool,
    },
    /// Lose everything in transit.
    Lose,
    Advance {
        ms: u16,
    },
    ServerSend {
        task: bool,
        size: u16,
    },
    AgentSend {
        samples: u8,
        heartbeat: bool,
    },
    Forget,
    RegisterAgain,
}

#[derive(Arbitrary, Debug)]
struct Input {
    keyed: bool,
    ops: Vec<Op>,
}

struct World {
    now: Instant,
    server: ServerEndpoint,
    agent: AgentEndpoint,
    to_agent: VecDeque<Transmit>,
    to_server: VecDeque<Transmit>,
}

impl World {
    fn step(&mut self) {
        for _ in 0..8 {
            let mut progressed = false;
            let mut n = 0;
            while let Some(t) = self.server.poll_transmit(self.now) {
                n += 1;
                assert!(
                    n < MAX_TRANSMITS_PER_STEP,
                    "server poll_transmit never ends"
                );
                push_bounded(&mut self.to_agent, t);
                progressed = true;
            }
            n = 0;
            while let Some(t) = self.agent.poll_transmit(self.now) {
                n += 1;
                assert!(n < MAX_TRANSMITS_PER_STEP, "agent poll_transmit never ends");
                push_bounded(&mut self.to_server, t);
                progressed = true;
            }
            while let Some(e) = self.server.poll_event() {
                progressed = true;
                if let ServerEvent::Registration { from, registration } = e {
                    let reply = registered_reply(registration.instance);
                    self.server
                        .accept_registration(self.now, from, AGENT_ID, &registration, reply);
                }
            }
            while self.agent.poll_event().is_some() {
                progressed = true;
            }
            if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
                self.server.handle_timeout(self.now);
                progressed = true;
            }
            if self.agent.poll_timeout().is_some_and(|t| t <= self.now) {
                self.agent.handle_timeout(self.now);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        assert!(self.server.unacknowledged(AGENT_ID) <= MAX_QUEUED + usize::from(SEND_WINDOW));
        assert!(self.agent.unacknowledged() <= MAX_QUEUED + usize::from(SEND_WINDOW));
    }
}

fn push_bounded(q: &mut VecDeque<Transmit>, t: Transmit) {
    if q.len() >= MAX_IN_TRANSIT {
        q.pop_front();
    }
    q.push_back(t);
}

fn other() -> SocketAddr {
    addr("127.0.0.9:5555")
}

fuzz_target!(|input: Input| {
    let start = Instant::now();
    let key = fuzz_key();
    let key = input.keyed.then_some(&key);
    let config = Config {
        max_queued_messages: MAX_QUEUED,
        keys: Keys::single(key.cloned()),
        ..Config::default()
    };
    let (server, agent) = registered_pair(start, config);
    let mut w = World {
        now: start,
        server,
        agent,
        to_agent: VecDeque::new(),
        to_server: VecDeque::new(),
    };
    for op in input.ops {
        match op {
            Op::ToServer {
                bytes,
                fix_tag,
                other_address,
            } => {
                let bytes = if fix_tag {
                    with_valid_tag(&bytes, key)
                } else {
                    bytes
                };
                let from = if other_address {
                    other()
                } else {
                    addr(AGENT_ADDR)
                };
                w.server.handle_datagram(w.now, from, &bytes);
            }
            Op::ToAgent {
                bytes,
                fix_tag,
                other_address,
            } => {
                let bytes = if fix_tag {
                    with_valid_tag(&bytes, key)
                } else {
                    bytes
                };
                let from = if other_address {
                    other()
                } else {
                    addr(SERVER_ADDR)
                };
                w.agent.handle_datagram(w.now, from, &bytes);
            }
            Op::Deliver { keep, reverse } => {
                let keep = usize::from(keep);
                let mut down: Vec<Transmit> = w.to_agent.drain(..).take(keep).collect();
                let mut up: Vec<Transmit> = w.to_server.drain(..).take(keep).collect();
                if reverse {
                    down.reverse();
                    up.reverse();
                }
                for t in down {
                    w.agent
                        .handle_datagram(w.now, addr(SERVER_ADDR), &t.payload);
                }
                for t in up {
                    w.server
                        .handle_datagram(w.now, addr(AGENT_ADDR), &t.payload);
                }
            }
            Op::Lose => {
                w.to_agent.clear();
                w.to_server.clear();
            }
            Op::Advance { ms } => {
                w.now += Duration::from_millis(u64::from(ms));
            }
            Op::ServerSend { task, size } => {
                let message = if task {
                    Message::Task(TaskAssignment {
                        task_number: u32::from(size),
                        task_id: "fuzz".into(),
                        items: Vec::new(),
                        conditions: Default::default(),
                        rules: vec![RuleSource {
                            name: "r".into(),
                            source: "x".repeat(usize::from(size) % 20_000),
                        }],
                    })
                } else {
                    Message::Cancel(Cancel {
                        task_number: u32::from(size),
                    })
                };
                let _ = w.server.send(w.now, AGENT_ID, &message);
            }
            Op::AgentSend { samples, heartbeat } => {
                let message = if heartbeat {
                    Message::Heartbeat(Heartbeat {
                        time_ms: 1,
                        pending_reports: 0,
                    })
                } else {
                    Message::Metrics(MetricsReport {
                        task_number: 1,
                        time_ms: 2,
                        samples: (0..samples % 65)
                            .map(|i| Sample::Interface {
                                name: format!("eth{i}"),
                                packets_per_sec: f32::from(i),
                                bytes_per_sec: 1.0,
                                errors_per_sec: 0.0,
                            })
                            .collect(),
                    })
                };
                w.agent.send(w.now, &message);
            }
            Op::Forget => w.server.forget(AGENT_ID),
            Op::RegisterAgain => w.agent.register_again(w.now),
        }
        w.step();
    }
});
