//! Registration with a server and moving between servers: the REGISTRATION the agent repeats,
//! what a REGISTERED or REFUSED answer does, registering again when the server forgot the
//! session, and the switch to another server that carries every unacknowledged message along.

use super::{AgentEndpoint, AgentEvent, PREFER_FIRST_EVERY, REFUSED_PAUSE, State};
use crate::nettask::reassembly::ReassemblyBudget;
use crate::nettask::session::Session;
use crate::wire::packet::Refused;
use crate::wire::{Body, Message, Packet, Registered, Registration};
use std::time::{Duration, Instant};

impl AgentEndpoint {
    pub(super) fn start_registration(&mut self, now: Instant) {
        let instance = self.rng.u64(1..);
        let time_ms = self.wall_ms(now);
        let registration = Registration {
            name: self.identity.name.clone(),
            instance,
            time_ms,
            capabilities: self.identity.capabilities,
            software: self.identity.software.clone(),
        };
        let key = self.session_key(instance);
        let packet = Packet {
            keyed: key.is_some(),
            agent_id: 0,
            body: Body::Reliable {
                seq: 0,
                message: Message::Registration(registration),
            },
        }
        .encode(key.as_ref());
        self.state = State::Registering {
            instance,
            time_ms,
            attempts: 0,
            next_attempt: now,
            packet,
        };
    }

    pub(super) fn on_refused(&mut self, now: Instant, refused: Refused) {
        let State::Registering {
            instance, time_ms, ..
        } = self.state
        else {
            return;
        };
        if refused.instance != instance {
            return;
        }
        self.refusals += 1;
        let changed = self.last_refusal != Some(refused.reason);
        self.last_refusal = Some(refused.reason);
        if changed || self.refusals % 12 == 1 {
            self.events.push_back(AgentEvent::RegistrationRefused {
                refused,
                registration_time_ms: time_ms,
                count: self.refusals,
            });
        }
        // A new registration (new instance, the time then), after a pause.
        self.start_registration(now);
        if let State::Registering { next_attempt, .. } = &mut self.state {
            *next_attempt = now + REFUSED_PAUSE;
        }
    }

    pub(super) fn on_registered(&mut self, agent_id: u32, registered: Registered) {
        let State::Registering { instance, .. } = self.state else {
            return; // a copy of the answer to a registration already completed
        };
        if registered.instance != instance || agent_id == 0 {
            return;
        }
        self.refusals = 0;
        self.last_refusal = None;
        let mut config = self.config.clone();
        config.initial_timeout = Duration::from_millis(registered.timeout_ms.max(1).into());
        config.max_retransmissions = registered.max_retransmissions.into();
        self.agent_id = agent_id;
        let key = self.session_key(instance);
        let mut session = Session::new(
            &config,
            agent_id,
            key,
            self.next_seq,
            ReassemblyBudget::unlimited(),
        );
        for outbound in self.backlog.drain(..) {
            session.send(outbound, &mut self.stats);
        }
        self.state = State::Registered {
            session: Box::new(session),
        };
        self.events.push_back(AgentEvent::Registered {
            agent_id,
            registered,
        });
        self.drain_session_events();
    }

    pub(super) fn reregister(&mut self, now: Instant) {
        self.carry_unacknowledged();
        self.events.push_back(AgentEvent::Reregistering);
        self.start_registration(now);
    }

    /// Moves the session's unacknowledged messages ahead of the backlog (for the next
    /// session); returns how many messages now wait.
    fn carry_unacknowledged(&mut self) -> usize {
        if let State::Registered { session, .. } = &mut self.state {
            self.next_seq = session.next_seq();
            let mut unacknowledged = session.take_unacknowledged();
            unacknowledged.extend(self.backlog.drain(..));
            self.backlog = unacknowledged.into();
        }
        self.backlog.len()
    }

    /// Moves to server `index` of the list: registers with it and carries everything
    /// unacknowledged over.
    pub(super) fn switch_to(&mut self, now: Instant, index: usize) {
        let from = self.server;
        let carried = self.carry_unacknowledged();
        self.current = index % self.servers.len();
        self.server = self.servers[self.current];
        self.try_first_at =
            (self.prefer_first && self.current != 0).then(|| now + PREFER_FIRST_EVERY);
        self.events.push_back(AgentEvent::SwitchedServer {
            from,
            to: self.server,
            carried,
        });
        self.start_registration(now);
    }

    pub(super) fn has_others(&self) -> bool {
        self.servers.len() > 1
    }

    /// Starts a new registration now (for example after the server was lost for long).
    pub fn register_again(&mut self, now: Instant) {
        self.reregister(now);
    }
}
