//! Registration on the server's endpoint: the checks a REGISTRATION must pass before the
//! application is asked about it (a name with a key, the session key's tag, not a copy of one
//! answered already, not a replay of a replaced session, with keys a time within the window and
//! newer than the last), the REFUSED answers, and the session the application's acceptance
//! starts.

use super::{MAX_PENDING_REGISTRATIONS, Peer, RETIRED_INSTANCES, ServerEndpoint, ServerEvent};
use crate::nettask::Transmit;
use crate::nettask::session::Session;
use crate::wire::packet::{RefusalReason, Refused};
use crate::wire::{Body, Header, Key, Message, Packet, Registered, Registration};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

impl ServerEndpoint {
    pub(super) fn handle_registration(
        &mut self,
        now: Instant,
        from: SocketAddr,
        header: &Header,
        bytes: &[u8],
    ) {
        let Some(registration) = self.registration_of(header, bytes) else {
            return;
        };
        let Some(key) = self.authenticate(now, from, header, bytes, &registration) else {
            return;
        };
        if self.answer_again(from, &registration) || self.is_replay_of_replaced(&registration) {
            return;
        }
        if key.is_some() && !self.is_fresh(now, from, &registration) {
            return;
        }
        // Copies that arrive before the application has answered the first one.
        if !self.pending_registrations.insert(registration.instance) {
            return;
        }
        if self.pending_registrations.len() > MAX_PENDING_REGISTRATIONS {
            self.pending_registrations.clear();
        }
        self.stats.registrations += 1;
        self.events
            .push_back(ServerEvent::Registration { from, registration });
    }

    /// The REGISTRATION a datagram carries, its tag not checked yet (the key depends on the
    /// agent's name, which is in the body); `None`, counted as malformed, when it carries none.
    fn registration_of(&mut self, header: &Header, bytes: &[u8]) -> Option<Registration> {
        let packet = match header.decode_body(bytes) {
            Ok(p) => p,
            Err(_) => {
                self.stats.malformed += 1;
                return None;
            }
        };
        let Body::Reliable {
            message: Message::Registration(registration),
            ..
        } = packet.body
        else {
            self.stats.malformed += 1;
            return None;
        };
        Some(registration)
    }

    /// The session key of a registration whose name may take part and whose tag verifies
    /// (`Some(None)` without keys); `None`, refused unanswered, otherwise.
    fn authenticate(
        &mut self,
        now: Instant,
        from: SocketAddr,
        header: &Header,
        bytes: &[u8],
        registration: &Registration,
    ) -> Option<Option<Key>> {
        if !self.config.keys.admits(&registration.name) {
            // No answer: there is no key to tag one with, and nothing to tell a stranger.
            self.stats.keyless_names += 1;
            self.refuse(
                now,
                from,
                &registration.name,
                "the name has no key (not in --keys-file, and no --key-file for everybody)".into(),
            );
            return None;
        }
        let key = self
            .config
            .keys
            .session_key(&registration.name, registration.instance);
        if header.verify_tag(bytes, key.as_ref()).is_err() {
            // No NOACK: an agent with the wrong key would otherwise retry in a tight loop.
            self.stats.bad_tags += 1;
            self.refuse(
                now,
                from,
                &registration.name,
                "wrong integrity tag (another key, or none?)".into(),
            );
            return None;
        }
        Some(key)
    }

    /// A copy of a registration already answered: answers it again (true). Not new, so the
    /// session's address stays; the agent's first new packet moves it if the agent really moved.
    fn answer_again(&mut self, from: SocketAddr, registration: &Registration) -> bool {
        let Some(peer) = self
            .session_ids
            .get(&registration.name)
            .and_then(|id| self.peers.get_mut(id))
            .filter(|p| p.instance == registration.instance && p.name == registration.name)
        else {
            return false;
        };
        self.immediate.push_back(Transmit {
            destination: from,
            payload: peer.reply.clone(),
        });
        true
    }

    /// A registration whose session was already replaced: a replay (or a very late copy),
    /// counted. Starting a session from it would take the agent's session away.
    fn is_replay_of_replaced(&mut self, registration: &Registration) -> bool {
        let replaced = self
            .retired
            .get(&registration.name)
            .is_some_and(|old| old.contains(&registration.instance));
        if replaced {
            self.stats.replays += 1;
        }
        replaced
    }

    /// With a key, the registration must be fresh: dated within the window of the server's
    /// clock, and newer than the last one accepted for the name (which counts only while it
    /// is itself within the window, so a clock that was corrected recovers). False, answered
    /// with REFUSED, when it is not; true while the server's clock is not set.
    fn is_fresh(&mut self, now: Instant, from: SocketAddr, registration: &Registration) -> bool {
        let Some(server_ms) = self.wall_ms(now) else {
            return true;
        };
        let window = self.config.registration_window.as_millis() as u64;
        let skew = registration.time_ms.abs_diff(server_ms);
        if skew > window {
            let ahead = registration.time_ms > server_ms;
            self.refuse_with(
                now,
                from,
                registration,
                RefusalReason::Clock,
                server_ms,
                0,
                format!(
                    "its time is {:.1} s {} the server's clock (at most {} s either way)",
                    skew as f64 / 1000.0,
                    if ahead { "ahead of" } else { "behind" },
                    window / 1000
                ),
            );
            return false;
        }
        if let Some(&last) = self.last_registration_ms.get(&registration.name)
            && registration.time_ms <= last
            && last <= server_ms + window
        {
            self.stats.replays += 1;
            self.refuse_with(
                now,
                from,
                registration,
                RefusalReason::NotNewer,
                server_ms,
                last,
                "not newer than the last registration accepted for this name (a replay?)".into(),
            );
            return false;
        }
        true
    }

    /// Answers a registration with REFUSED (tagged with its session key, so the agent can
    /// believe it) and reports the refusal.
    #[allow(clippy::too_many_arguments)]
    fn refuse_with(
        &mut self,
        now: Instant,
        from: SocketAddr,
        registration: &Registration,
        reason: RefusalReason,
        server_time_ms: u64,
        last_accepted_ms: u64,
        text: String,
    ) {
        self.stats.registrations_refused += 1;
        let key = self
            .config
            .keys
            .session_key(&registration.name, registration.instance);
        let payload = Packet {
            keyed: key.is_some(),
            agent_id: 0,
            body: Body::Reliable {
                seq: 0,
                message: Message::Refused(Refused {
                    instance: registration.instance,
                    reason,
                    server_time_ms,
                    last_accepted_ms,
                }),
            },
        }
        .encode(key.as_ref());
        self.immediate.push_back(Transmit {
            destination: from,
            payload,
        });
        self.refuse(now, from, &registration.name, text);
    }

    /// The application's refusal of a registration it was handed (no room for a new agent):
    /// answers it with REFUSED `full`. A later copy of the same registration is handed over
    /// again.
    pub fn refuse_registration(
        &mut self,
        now: Instant,
        from: SocketAddr,
        registration: &Registration,
    ) {
        self.pending_registrations.remove(&registration.instance);
        let server_ms = self.wall_ms(now).unwrap_or(0);
        self.refuse_with(
            now,
            from,
            registration,
            RefusalReason::Full,
            server_ms,
            0,
            "the server takes no new agents now".into(),
        );
    }

    /// The application could not answer a registration it was handed (its registry could not
    /// be saved): nothing is sent, and the agent's next copy is handed over again.
    pub fn defer_registration(&mut self, registration: &Registration) {
        self.pending_registrations.remove(&registration.instance);
    }

    /// Reports a refused registration, at most once a minute per name.
    fn refuse(&mut self, now: Instant, from: SocketAddr, name: &str, reason: String) {
        if self.refused_reported.len() > MAX_PENDING_REGISTRATIONS {
            self.refused_reported.clear();
        }
        let due = self
            .refused_reported
            .get(name)
            .is_none_or(|last| now.saturating_duration_since(*last) >= Duration::from_secs(60));
        if due {
            self.refused_reported.insert(name.to_string(), now);
            self.events.push_back(ServerEvent::RegistrationRefused {
                from,
                name: name.to_string(),
                reason,
            });
        }
    }

    /// Answers a registration: creates the agent's session (replacing an older one, whose
    /// unacknowledged messages are discarded: the application sends an agent its work again
    /// when it registers) and sends REGISTERED.
    pub fn accept_registration(
        &mut self,
        _now: Instant,
        from: SocketAddr,
        agent_id: u32,
        registration: &Registration,
        registered: Registered,
    ) {
        self.pending_registrations.remove(&registration.instance);
        if let Some(peer) = self.peers.get(&agent_id)
            && peer.instance == registration.instance
        {
            // Answered already: answer again, keep the session.
            self.immediate.push_back(Transmit {
                destination: from,
                payload: peer.reply.clone(),
            });
            return;
        }
        let key = self
            .config
            .keys
            .session_key(&registration.name, registration.instance);
        self.names.insert(agent_id, registration.name.clone());
        self.remember_registration(&registration.name, registration.time_ms);
        let reply = Packet {
            keyed: key.is_some(),
            agent_id,
            body: Body::Reliable {
                seq: 0,
                message: Message::Registered(registered),
            },
        }
        .encode(key.as_ref());
        let first_seq = self
            .peers
            .get(&agent_id)
            .map_or(0, |p| p.session.next_seq());
        if let Some(old) = self.peers.get(&agent_id)
            && old.instance != registration.instance
        {
            let retired = self.retired.entry(old.name.clone()).or_default();
            retired.push_back(old.instance);
            if retired.len() > RETIRED_INSTANCES {
                retired.pop_front();
            }
        }
        let session = Session::new(
            &self.config,
            agent_id,
            key,
            first_seq,
            self.reassembly.clone(),
        );
        self.session_ids.insert(registration.name.clone(), agent_id);
        let replaced = self.peers.insert(
            agent_id,
            Box::new(Peer {
                session,
                address: from,
                instance: registration.instance,
                name: registration.name.clone(),
                reply: reply.clone(),
                scheduled: None,
            }),
        );
        if let Some(old) = replaced
            && old.name != registration.name
            && self.session_ids.get(&old.name) == Some(&agent_id)
        {
            self.session_ids.remove(&old.name);
        }
        self.immediate.push_back(Transmit {
            destination: from,
            payload: reply,
        });
        self.after_session_change(agent_id);
    }
}
