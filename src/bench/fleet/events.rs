//! How a worker acts on one simulated agent's endpoint: the endpoint's events (registered, task
//! received, report acknowledged or dropped) update the agent, the routing tables and the shared
//! counters; then what the endpoint has to send goes out and its timer is re-armed.

use super::Phase;
use super::worker::{Worker, send_datagram};
use crate::nettask::{AgentEvent, Transmit};
use crate::wire::{Message, Registered};
use std::cmp::Reverse;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl Worker {
    pub(super) fn service(&mut self, idx: usize, now: Instant) {
        let phase = self.control.phase();
        self.service_in(idx, now, phase);
    }

    /// Acts on an endpoint's events, sends what it has to send and re-arms its timer.
    pub(super) fn service_in(&mut self, idx: usize, now: Instant, phase: Phase) {
        let Some(more_reports) = self.handle_events(idx, now, phase) else {
            return;
        };
        for _ in 0..more_reports {
            self.send_report(idx, now);
        }
        self.transmit(idx, now);
    }

    /// Acts on every event the agent's endpoint has; returns how many reports the agent may
    /// send now (window mode), or `None` when the agent has no endpoint yet.
    fn handle_events(&mut self, idx: usize, now: Instant, phase: Phase) -> Option<usize> {
        let mut more_reports = 0usize;
        loop {
            let ep = self.agents[idx].endpoint.as_mut()?;
            let Some(event) = ep.poll_event() else {
                return Some(more_reports);
            };
            match event {
                AgentEvent::Registered {
                    agent_id,
                    registered,
                } => self.registered(idx, agent_id, &registered),
                AgentEvent::Message(Message::Task(assignment)) => {
                    more_reports += self.task_received(idx, assignment.task_number, now, phase);
                }
                AgentEvent::Acknowledged(id) => {
                    more_reports += self.acknowledged(idx, id, now, phase);
                }
                AgentEvent::Dropped(id) => self.dropped(idx, id),
                AgentEvent::Message(_)
                | AgentEvent::ServerLost
                | AgentEvent::ServerRecovered
                | AgentEvent::Reregistering
                | AgentEvent::SwitchedServer { .. }
                | AgentEvent::Malformed(_)
                | AgentEvent::RegistrationUnanswered { .. }
                | AgentEvent::RegistrationRefused { .. } => {}
            }
        }
    }

    /// The server accepted a registration: route the agent's id to it, take its heartbeat
    /// interval and AlertFlow port, and keep a few agents for the alert raisers.
    fn registered(&mut self, idx: usize, agent_id: u32, registered: &Registered) {
        self.result.registrations += 1;
        let a = &mut self.agents[idx];
        if let Some(old) = a.instance.take() {
            self.by_instance.remove(&old);
        }
        if let Some(old) = a.agent_id.replace(agent_id) {
            self.by_id.remove(&old);
        }
        a.heartbeat = Duration::from_millis(registered.heartbeat_ms.max(100).into());
        self.by_id.insert(agent_id, idx);
        self.control
            .alertflow_port
            .store(registered.alertflow_port, Ordering::Relaxed);
        let mut few = self
            .control
            .registered
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if few.len() < 64 {
            few.push((
                agent_id,
                self.config.names[a.name_index].clone(),
                registered.instance,
            ));
        }
    }

    /// The agent received its task: the first time, it is ready, its heartbeat ticks start and
    /// (window mode, while measuring) it may send its window of reports, which is returned.
    fn task_received(&mut self, idx: usize, task_number: u32, now: Instant, phase: Phase) -> usize {
        let a = &mut self.agents[idx];
        if a.task_number.replace(task_number).is_some() {
            return 0;
        }
        self.starting -= 1;
        self.control.ready.fetch_add(1, Ordering::Relaxed);
        let t = now + a.heartbeat / 2;
        self.set_tick(idx, t);
        if phase == Phase::Measure && self.config.rate.is_none() {
            self.config.window
        } else {
            0
        }
    }

    /// Message `id` was acknowledged: when it is a report, it is no longer outstanding and,
    /// while measuring, its latency is recorded and (window mode) another report may go, which
    /// is returned.
    fn acknowledged(&mut self, idx: usize, id: u64, now: Instant, phase: Phase) -> usize {
        let a = &mut self.agents[idx];
        let Some(pos) = a.in_flight.iter().position(|(m, ..)| *m == id) else {
            return 0; // a heartbeat
        };
        let sent_at = a.in_flight.remove(pos).and_then(|(_, at, _)| at);
        self.control.outstanding.fetch_sub(1, Ordering::Relaxed);
        if phase != Phase::Measure {
            return 0;
        }
        if let Some(t) = sent_at {
            self.result
                .latencies
                .record(now.saturating_duration_since(t));
        }
        self.control.acknowledged.fetch_add(1, Ordering::Relaxed);
        usize::from(self.config.rate.is_none())
    }

    /// NetTask gave up on message `id`: when it is a report, it is never acknowledged.
    fn dropped(&mut self, idx: usize, id: u64) {
        let a = &mut self.agents[idx];
        if let Some(pos) = a.in_flight.iter().position(|(m, ..)| *m == id) {
            if let Some((.., k)) = a.in_flight.remove(pos) {
                a.dropped.push(k);
            }
            self.control.outstanding.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Routes the agent's registration instance to it, sends what its endpoint has to send and
    /// re-arms its timer.
    fn transmit(&mut self, idx: usize, now: Instant) {
        let a = &mut self.agents[idx];
        let Some(ep) = a.endpoint.as_mut() else {
            return;
        };
        let instance = ep.registration_instance();
        if instance.is_some() && instance != a.instance {
            if let Some(old) = a.instance.take() {
                self.by_instance.remove(&old);
            }
            a.instance = instance;
            if let Some(i) = instance {
                self.by_instance.insert(i, idx);
            }
        }
        while let Some(Transmit {
            destination,
            payload,
        }) = ep.poll_transmit(now)
        {
            send_datagram(&self.socket, &payload, destination, &mut self.result);
        }
        let next = ep.poll_timeout();
        if next != a.scheduled {
            a.scheduled = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, idx)));
            }
        }
    }
}
