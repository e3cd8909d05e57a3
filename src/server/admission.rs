//! Admission of registrations: new names refused past `--max-agents` or, without keys, faster
//! than `--new-agents-per-second`; two agents sharing one `--id` told apart.

use super::{Shared, State};
use crate::log::{self, Level};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Takes a registration into the registry, or refuses it (answered with REFUSED `full`) when
/// it is a new name and the server is at `--max-agents`, or, without keys, new names arrive
/// faster than `--new-agents-per-second`. Returns the id, or `None` when refused.
pub(super) fn admit_registration(
    shared: &Arc<Shared>,
    state: &mut State,
    from: SocketAddr,
    registration: &crate::wire::Registration,
    now_ms: u64,
) -> Option<u32> {
    let known = state.registry.by_name(&registration.name).is_some();
    let refusal = if known {
        None
    } else if state.registry.len() >= shared.options.max_agents {
        Some(format!(
            "the server has {} agents, its --max-agents",
            state.registry.len()
        ))
    } else if !shared.options.keys.is_keyed()
        && !state
            .new_agents
            .take(now_ms, shared.options.new_agents_per_second)
    {
        Some(format!(
            "more than {} new agents a second (new names are rate-limited without keys: \
             --new-agents-per-second)",
            shared.options.new_agents_per_second
        ))
    } else {
        None
    };
    let refusal = match refusal {
        Some(why) => why,
        None => match state.registry.register(
            &registration.name,
            from,
            now_ms,
            registration.capabilities,
            &registration.software,
            registration.time_ms,
            registration.instance,
        ) {
            Ok(id) => {
                if let Some(other) = state
                    .shared_names
                    .registered(&registration.name, from, now_ms)
                    && let Some(held_back) = state
                        .shared_names
                        .warned
                        .allow(registration.name.clone(), now_ms)
                {
                    log::event(
                        Level::Bad,
                        "DUPLICATE",
                        format_args!(
                            "two agents use the name {}: from {from} and from {other} they take \
                             it from each other in turn; give each its own --id{}",
                            registration.name,
                            log::held_back_note(held_back)
                        ),
                    );
                }
                return Some(id);
            }
            Err(e) => e.to_string(),
        },
    };
    state.refused_new_agents += 1;
    if let Some(held_back) = state.throttles.admission.allow(now_ms) {
        log::event(
            Level::Bad,
            "REFUSED",
            format_args!(
                "new agent {} from {from}: {refusal}{}",
                registration.name,
                log::held_back_note(held_back)
            ),
        );
    }
    shared.refuse_registration(from, registration.clone());
    None
}

/// How many new names may arrive at once before the rate applies.
pub const NEW_AGENTS_BURST: u64 = 2000;

/// A token bucket for registrations of new names.
#[derive(Debug, Clone)]
pub struct NewAgentBucket {
    tokens_milli: u64,
    last_ms: u64,
}

impl Default for NewAgentBucket {
    fn default() -> Self {
        NewAgentBucket {
            tokens_milli: NEW_AGENTS_BURST * 1000,
            last_ms: 0,
        }
    }
}

impl NewAgentBucket {
    /// Takes one token at `now_ms`, refilled at `per_second`; false when the bucket is empty.
    pub fn take(&mut self, now_ms: u64, per_second: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        let burst = NEW_AGENTS_BURST.max(per_second) * 1000;
        self.tokens_milli = self
            .tokens_milli
            .saturating_add(elapsed.saturating_mul(per_second))
            .min(burst);
        if self.tokens_milli < 1000 {
            return false;
        }
        self.tokens_milli -= 1000;
        true
    }
}

/// Two agents started with the same `--id` take the name from each other in turn: each
/// registration of one ends the other's session, which registers again. Registrations of a
/// name that alternate between two addresses (A, B, A within a minute) say so; an agent that
/// restarted (A, then B for good) does not.
#[derive(Debug)]
pub(super) struct SharedNames {
    pub(super) recent: std::collections::HashMap<String, Vec<(SocketAddr, u64)>>,
    pub(super) warned: log::Throttles<String>,
}

impl SharedNames {
    const WINDOW_MS: u64 = 60_000;

    /// Notes a registration; returns the other address when the name is shared.
    pub(super) fn registered(
        &mut self,
        name: &str,
        from: SocketAddr,
        now_ms: u64,
    ) -> Option<SocketAddr> {
        if self.recent.len() > 100_000 {
            self.recent.clear();
        }
        let list = self.recent.entry(name.to_string()).or_default();
        list.retain(|(_, t)| now_ms.saturating_sub(*t) < Self::WINDOW_MS);
        list.push((from, now_ms));
        if list.len() > 3 {
            list.remove(0);
        }
        match list.as_slice() {
            [.., (a, _), (b, _), (c, _)] if a == c && a != b => Some(*b),
            _ => None,
        }
    }
}

impl Default for SharedNames {
    fn default() -> Self {
        SharedNames {
            recent: Default::default(),
            warned: log::Throttles::new(Duration::from_secs(60), 10_000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SharedNames;

    #[test]
    fn alternating_addresses_are_two_agents_and_a_restart_is_not() {
        let a = "192.0.2.1:5000".parse().unwrap();
        let b = "192.0.2.2:5000".parse().unwrap();
        let mut names = SharedNames::default();
        assert_eq!(names.registered("r1", a, 0), None);
        assert_eq!(
            names.registered("r1", b, 1000),
            None,
            "a restart from elsewhere"
        );
        assert_eq!(names.registered("r1", b, 2000), None);
        assert_eq!(
            names.registered("r1", a, 3000),
            None,
            "B B A is not alternating"
        );
        assert_eq!(names.registered("r1", b, 4000), Some(a), "B A B");
        assert_eq!(names.registered("r2", a, 0), None);
        assert_eq!(names.registered("r2", b, 1000), None);
        assert_eq!(
            names.registered("r2", a, 90_000),
            None,
            "more than a minute apart"
        );
    }
}
