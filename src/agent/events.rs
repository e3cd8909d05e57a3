//! What a running agent does with each event of its NetTask endpoint: a registration, a task,
//! a cancellation, a server lost, found or changed, a refusal. Most of them are a log line.

use super::scheduler::{Scheduler, ServerClock};
use crate::alertflow::client::Destination;
use crate::log::{self, Level};
use crate::nettask::AgentEvent;
use crate::wire::Message;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a registered agent works with while it runs.
pub(super) struct Running {
    pub(super) scheduler: Scheduler,
    pub(super) sender: crate::alertflow::client::AlertSender,
    pub(super) clock: Arc<ServerClock>,
    pub(super) heartbeat_ms: Arc<AtomicU64>,
    /// The server the endpoint registers with now.
    pub(super) current: SocketAddr,
    pub(super) servers: Vec<SocketAddr>,
    pub(super) id: String,
}

impl Running {
    /// Acts on one event of the NetTask endpoint: a registration, a task, a server change.
    /// One short arm per event kind, most of them a log line: longer than 80 lines as a list.
    pub(super) fn handle(&mut self, event: AgentEvent) {
        match event {
            AgentEvent::Registered {
                agent_id,
                registered,
            } => {
                self.heartbeat_ms
                    .store(registered.heartbeat_ms.into(), Ordering::Relaxed);
                self.clock.set(registered.server_time_ms, log::now_ms());
                let alertflow = SocketAddr::new(self.current.ip(), registered.alertflow_port);
                self.sender.set_destination(Destination {
                    server: alertflow,
                    agent_id,
                    instance: registered.instance,
                });
                log::event(
                    Level::Good,
                    "REGISTERED",
                    format_args!(
                        "with {} as agent {agent_id}; alerts to tcp/{alertflow}",
                        self.current
                    ),
                );
            }
            AgentEvent::Message(Message::Task(assignment)) => self.scheduler.install(assignment),
            AgentEvent::Message(Message::Cancel(c)) => self.scheduler.cancel(c.task_number),
            AgentEvent::Message(other) => log::event(
                Level::Warn,
                "UNEXPECTED",
                format_args!("the server sent a {} message", other.packet_type().name()),
            ),
            AgentEvent::Acknowledged(_) => {}
            AgentEvent::Dropped(id) => log::event(
                Level::Warn,
                "DROPPED",
                format_args!("report {id} dropped: the queue for the server is full"),
            ),
            AgentEvent::ServerLost => log::event(
                Level::Bad,
                "SERVER",
                "the server does not answer; measuring on and keeping reports until it does",
            ),
            AgentEvent::ServerRecovered => {
                log::event(Level::Good, "SERVER", "the server answers again")
            }
            AgentEvent::Reregistering => log::event(
                Level::Warn,
                "SERVER",
                "the server no longer knows this agent (restarted?); registering again",
            ),
            AgentEvent::Malformed(reason) => log::event(Level::Warn, "MALFORMED", reason),
            AgentEvent::SwitchedServer { from, to, carried } => {
                self.current = to;
                log::event(
                    Level::Warn,
                    "SERVER",
                    format_args!(
                        "moving from {from} to {to}{}; {carried} unacknowledged message(s) go there",
                        if self.servers.first() == Some(&to) {
                            " (the first server)"
                        } else {
                            ""
                        }
                    ),
                );
            }
            AgentEvent::RegistrationUnanswered { attempts } => log::event(
                Level::Bad,
                "SERVER",
                format_args!(
                    "no answer from {} after {attempts} registration attempts: is `nms server` \
                 running there (its NetTask port)? With keys: does it use this agent's key, and \
                 does its keys file have the name {:?}? Still trying.",
                    self.current, self.id
                ),
            ),
            AgentEvent::RegistrationRefused {
                refused,
                registration_time_ms,
                count,
            } => log::event(
                Level::Bad,
                "REFUSED",
                format_args!(
                    "{} refused the registration ({count} in a row): {}; registering again in 5 s",
                    self.current,
                    refusal_text(&refused, registration_time_ms)
                ),
            ),
        }
    }
}

/// What the server objected to, in words an operator can act on.
fn refusal_text(refused: &crate::wire::packet::Refused, registration_time_ms: u64) -> String {
    use crate::wire::packet::RefusalReason;
    match refused.reason {
        RefusalReason::Clock => {
            let skew = registration_time_ms as i128 - refused.server_time_ms as i128;
            format!(
                "this host's clock is {:.1} s {} the server's ({} there); set it right (NTP)",
                skew.unsigned_abs() as f64 / 1000.0,
                if skew > 0 { "ahead of" } else { "behind" },
                log::rfc3339(refused.server_time_ms)
            )
        }
        RefusalReason::NotNewer => format!(
            "the server accepted a registration of this name dated {} already, and this one is \
             not newer (this host's clock went back, or someone replays an old registration)",
            log::rfc3339(refused.last_accepted_ms)
        ),
        RefusalReason::Full => {
            "the server takes no new agents now (its --max-agents, or too many new names at once)"
                .to_string()
        }
    }
}
