//! What the server asks of its NetTask endpoint. The endpoint runs inside the driver task, so
//! each request travels there over the driver's command channel (`nettask::driver::Command`);
//! every kind of request is one named call here, so that a report's acknowledgement, a task on
//! its way to an agent or a registration's answer can be followed from its call site.

use super::Shared;
use crate::log::{self, Level};
use crate::nettask::{Receipt, ServerEndpoint, Stats};
use crate::wire::{Message, Registered, Registration};
use std::net::SocketAddr;
use std::time::Instant;

impl Shared {
    /// Runs `f` against the endpoint in the driver task. The channel is unbounded; it only
    /// fails when the driver is gone (the server is shutting down), and then nothing is left to
    /// ask.
    fn command(&self, f: impl FnOnce(&mut ServerEndpoint, Instant) + Send + 'static) {
        let _ = self.commands.try_send(Box::new(f));
    }

    /// Releases the held acknowledgements of delivered messages: `kept` (stored and synced)
    /// acknowledges them now; not kept, the agents send them again.
    pub(super) fn release(&self, receipts: Vec<Receipt>, kept: bool) {
        self.command(move |ep, _| {
            for r in receipts {
                ep.release(r, kept);
            }
        });
    }

    /// Queues `message` for the agent `agent_id`. With `what`, a message that cannot be sent
    /// (the agent's session is gone, or it is too large) is logged under that tag.
    pub(super) fn send_to(&self, agent_id: u32, message: Message, what: Option<&'static str>) {
        self.command(move |ep, now| {
            if let Err(e) = ep.send(now, agent_id, &message)
                && let Some(what) = what
            {
                log::event(
                    Level::Warn,
                    what,
                    format_args!("not sent to agent {agent_id}: {e}"),
                );
            }
        });
    }

    /// Ends the agent's NetTask session (it was forgotten).
    pub(super) fn end_session(&self, agent_id: u32) {
        self.command(move |ep, _| ep.forget(agent_id));
    }

    /// Answers a registration with REGISTERED: the agent is `agent_id`.
    pub(super) fn accept_registration(
        &self,
        from: SocketAddr,
        agent_id: u32,
        registration: Registration,
        reply: Registered,
    ) {
        self.command(move |ep, now| {
            ep.accept_registration(now, from, agent_id, &registration, reply)
        });
    }

    /// Answers a registration with REFUSED (the endpoint says why from its own state).
    pub(super) fn refuse_registration(&self, from: SocketAddr, registration: Registration) {
        self.command(move |ep, now| ep.refuse_registration(now, from, &registration));
    }

    /// Leaves a registration unanswered for now (its agent was not saved): the agent's next
    /// attempt is taken as new.
    pub(super) fn defer_registration(&self, registration: Registration) {
        self.command(move |ep, _| ep.defer_registration(&registration));
    }

    /// A copy of the endpoint's counters; `None` when the driver is gone.
    pub(super) async fn endpoint_stats_now(&self) -> Option<Stats> {
        let (tx, rx) = smol::channel::bounded(1);
        self.command(move |ep, _| {
            let _ = tx.try_send(ep.stats().clone());
        });
        rx.recv().await.ok()
    }
}
