//! The reliable exchange with one peer: sequence numbers, the send window, retransmission with
//! adaptive timeout and backoff, acknowledgements, duplicate suppression and fragmentation.
//!
//! A `Session` performs no I/O and reads no clock. The endpoint that owns it feeds it decoded
//! packets and the current time, and takes from it the datagrams to send and the events to report.
//! This file is the sending side; `receiving.rs` delivers what the peer sends.

mod receiving;

use super::reassembly::{Reassembler, ReassemblyBudget};
use super::rtt::RttEstimator;
pub(crate) use super::window::Arrival;
use super::window::{ReplayWindow, SEND_WINDOW, seq_diff};
use super::{Config, HeldTypes, Stats};
use crate::wire::packet::{ACK_BITMAP_BITS, MAX_AGENT_ID};
use crate::wire::{
    Ack, Body, Fragment, Key, Message, Noack, NoackReason, Packet, PacketType, TAG_LEN,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

/// Largest header: type byte, a four-byte agent id, sequence number.
pub(crate) const MAX_HEADER_LEN: usize = 1 + 4 + 2;

/// What a session reports to its endpoint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SessionEvent {
    /// A message arrived (exactly once). With a receipt, its acknowledgement is held until the
    /// application releases it ([`Session::release`]).
    Message(Message, Option<u32>),
    /// Every packet of message `id` was acknowledged.
    Acknowledged(u64),
    /// The peer did not answer within the retransmission bound.
    Lost,
    /// A lost peer was heard from again.
    Recovered,
    /// A queued message was dropped because the queue was full.
    Dropped(u64),
    /// A message arrived that could not be decoded or reassembled.
    Malformed(String),
}

/// The sequence numbers of one held message: one packet (most messages), or its fragments.
#[derive(Debug)]
enum HeldSeqs {
    One(u16),
    Many(Vec<u16>),
}

/// A whole message as handed to `send`, kept until every packet of it is acknowledged so it
/// can be sent again in a new session.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    pub id: u64,
    pub kind: PacketType,
    pub body: Vec<u8>,
}

#[derive(Debug)]
struct PendingPacket {
    message: u64,
    kind: PacketType,
    body: Vec<u8>,
}

#[derive(Debug)]
struct InFlight {
    seq: u16,
    message: u64,
    packet: Vec<u8>,
    first_sent: Instant,
    deadline: Instant,
    retransmissions: u32,
    /// Whether this packet counted towards declaring the peer lost.
    heard_since_sent: bool,
    /// Sent more than once for any reason (a timeout or a NOACK): its acknowledgement gives no
    /// round-trip sample (Karn's rule).
    resent: bool,
    /// Already resent for a NOACK `bad tag` since its last timeout: further NOACKs wait for the
    /// next timeout, so a replayed NOACK cannot make it send copies at will.
    noack_resent: bool,
}

#[derive(Debug)]
struct MessageState {
    outbound: Outbound,
    outstanding: usize,
}

#[derive(Debug)]
pub(crate) struct Session {
    pub agent_id: u32,
    key: Option<Key>,
    next_seq: u16,
    next_message_id: u16,
    pending: VecDeque<PendingPacket>,
    in_flight: VecDeque<InFlight>,
    messages: HashMap<u64, MessageState>,
    resend_now: VecDeque<u16>,
    acks: Vec<u16>,
    rtt: RttEstimator,
    window: ReplayWindow,
    reassembler: Reassembler,
    /// Message types whose acknowledgement waits for the application.
    held_types: HeldTypes,
    /// Held acknowledgements by receipt: the sequence numbers of the message's packets.
    receipts: HashMap<u32, HeldSeqs>,
    /// Every held sequence number (a copy of one is neither delivered nor acknowledged).
    held_seqs: HashSet<u16>,
    /// Sequence numbers of the fragments of incomplete held messages, by message id.
    held_fragments: HashMap<u16, Vec<u16>>,
    next_receipt: u32,
    max_retransmissions: u32,
    max_payload: usize,
    max_queued: usize,
    lost: bool,
    pub events: VecDeque<SessionEvent>,
}

impl Session {
    /// `key` is the session key (already bound to the registration instance), `budget` the
    /// reassembly memory this session's incomplete messages draw from.
    pub fn new(
        config: &Config,
        agent_id: u32,
        key: Option<Key>,
        first_seq: u16,
        budget: ReassemblyBudget,
    ) -> Self {
        Session {
            agent_id,
            key,
            next_seq: first_seq,
            next_message_id: 0,
            pending: VecDeque::new(),
            in_flight: VecDeque::new(),
            messages: HashMap::new(),
            resend_now: VecDeque::new(),
            acks: Vec::new(),
            rtt: RttEstimator::new(
                config.initial_timeout,
                config.min_timeout,
                config.max_timeout,
            ),
            window: ReplayWindow::new(),
            reassembler: Reassembler::with_budget(
                config.max_message_size,
                config.max_reassembly_bytes,
                config.reassembly_timeout,
                budget,
            ),
            held_types: config.held_types,
            receipts: HashMap::new(),
            held_seqs: HashSet::new(),
            held_fragments: HashMap::new(),
            next_receipt: 0,
            max_retransmissions: config.max_retransmissions,
            max_payload: config.max_payload,
            max_queued: config.max_queued_messages,
            lost: false,
            events: VecDeque::new(),
        }
    }

    pub fn next_seq(&self) -> u16 {
        self.next_seq
    }

    pub fn is_lost(&self) -> bool {
        self.lost
    }

    pub fn key(&self) -> Option<&Key> {
        self.key.as_ref()
    }

    /// Messages queued or in flight.
    pub fn unacknowledged(&self) -> usize {
        self.messages.len()
    }

    /// Queues a message; it is split into fragments when it does not fit one datagram.
    pub fn send(&mut self, outbound: Outbound, stats: &mut Stats) {
        let single = MAX_HEADER_LEN + outbound.body.len() + TAG_LEN;
        let id = outbound.id;
        if single <= self.max_payload {
            self.pending.push_back(PendingPacket {
                message: id,
                kind: outbound.kind,
                body: outbound.body.clone(),
            });
            self.messages.insert(
                id,
                MessageState {
                    outbound,
                    outstanding: 1,
                },
            );
        } else {
            let chunk_len = self.max_payload - MAX_HEADER_LEN - Fragment::OVERHEAD - TAG_LEN;
            let chunks: Vec<&[u8]> = outbound.body.chunks(chunk_len).collect();
            let count = chunks.len() as u16;
            let message_id = self.next_message_id;
            self.next_message_id = self.next_message_id.wrapping_add(1);
            for (index, chunk) in chunks.iter().enumerate() {
                let fragment = Message::Fragment(Fragment {
                    message_id,
                    index: index as u16,
                    count,
                    inner_type: outbound.kind,
                    chunk: chunk.to_vec(),
                });
                let mut body = Vec::with_capacity(chunk.len() + Fragment::OVERHEAD);
                fragment.encode_body(&mut body);
                self.pending.push_back(PendingPacket {
                    message: id,
                    kind: PacketType::Fragment,
                    body,
                });
            }
            stats.fragmented_messages += 1;
            self.messages.insert(
                id,
                MessageState {
                    outbound,
                    outstanding: usize::from(count),
                },
            );
        }
        self.enforce_queue_limit(stats);
    }

    /// Drops the oldest messages none of whose packets were sent yet, while over the limit.
    fn enforce_queue_limit(&mut self, stats: &mut Stats) {
        while self.messages.len() > self.max_queued {
            let in_flight: std::collections::HashSet<u64> =
                self.in_flight.iter().map(|p| p.message).collect();
            let Some(victim) = self
                .pending
                .iter()
                .map(|p| p.message)
                .find(|m| !in_flight.contains(m))
            else {
                return;
            };
            self.pending.retain(|p| p.message != victim);
            self.messages.remove(&victim);
            stats.dropped_messages += 1;
            self.events.push_back(SessionEvent::Dropped(victim));
        }
    }

    /// Handles an ACK from the peer.
    pub fn on_ack(&mut self, now: Instant, ack: &Ack, stats: &mut Stats) {
        self.heard(now);
        for seq in ack.acknowledged() {
            let Some(pos) = self.in_flight.iter().position(|p| p.seq == seq) else {
                continue;
            };
            let Some(packet) = self.in_flight.remove(pos) else {
                continue;
            };
            if !packet.resent {
                self.rtt
                    .sample(now.saturating_duration_since(packet.first_sent));
            }
            stats.acknowledged_packets += 1;
            if let Some(state) = self.messages.get_mut(&packet.message) {
                state.outstanding -= 1;
                if state.outstanding == 0 {
                    self.messages.remove(&packet.message);
                    self.events
                        .push_back(SessionEvent::Acknowledged(packet.message));
                }
            }
        }
        self.release_idle_buffers();
    }

    /// Frees the queues' buffers once they are empty: a server holds a session per agent, and
    /// most of them are idle between reports, so an idle session should cost its fields only.
    fn release_idle_buffers(&mut self) {
        if self.in_flight.is_empty() && self.in_flight.capacity() > 0 {
            self.in_flight = VecDeque::new();
        }
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            self.pending = VecDeque::new();
        }
        if self.messages.is_empty() && self.messages.capacity() > 0 {
            self.messages = HashMap::new();
        }
        if self.acks.is_empty() && self.acks.capacity() > 0 {
            self.acks = Vec::new();
        }
        if self.receipts.is_empty() && self.receipts.capacity() > 0 {
            self.receipts = HashMap::new();
            self.held_seqs = HashSet::new();
        }
        if self.held_fragments.is_empty() && self.held_fragments.capacity() > 0 {
            self.held_fragments = HashMap::new();
        }
    }

    /// Handles a NOACK for a bad tag: the packet is resent at once, once per timeout. The resend
    /// neither doubles the timeout nor counts towards the retransmission limit, and the packet
    /// gives no round-trip sample any more (Karn's rule).
    pub fn on_noack_bad_tag(&mut self, now: Instant, noack: &Noack) {
        self.heard(now);
        if let Some(p) = self
            .in_flight
            .iter_mut()
            .find(|p| p.seq == noack.seq && !p.noack_resent)
        {
            p.noack_resent = true;
            p.resent = true;
            if !self.resend_now.contains(&noack.seq) {
                self.resend_now.push_back(noack.seq);
            }
        }
    }

    /// The tag of the packet in flight with this sequence number (a NOACK `unknown agent` for
    /// it is tagged with a key bound to it).
    pub fn sent_tag(&self, seq: u16) -> Option<&[u8]> {
        let p = self.in_flight.iter().find(|p| p.seq == seq)?;
        p.packet.get(p.packet.len().checked_sub(TAG_LEN)?..)
    }

    fn heard(&mut self, _now: Instant) {
        for p in &mut self.in_flight {
            p.heard_since_sent = true;
        }
        if self.lost {
            self.lost = false;
            self.events.push_back(SessionEvent::Recovered);
        }
    }

    /// The next datagram to send, if any: acknowledgements first, then retransmissions, then new
    /// packets inside the send window.
    pub fn poll_transmit(&mut self, now: Instant, stats: &mut Stats) -> Option<Vec<u8>> {
        if let Some(ack) = self.take_ack() {
            if self.acks.is_empty() {
                self.acks = Vec::new();
            }
            stats.acks_sent += 1;
            return Some(
                Packet {
                    keyed: self.key.is_some(),
                    agent_id: self.agent_id,
                    body: Body::Ack(ack),
                }
                .encode(self.key.as_ref()),
            );
        }
        while let Some(seq) = self.resend_now.pop_front() {
            if let Some(p) = self.in_flight.iter_mut().find(|p| p.seq == seq) {
                // Keep the backoff `handle_timeout` chose: resetting to the plain timeout here
                // made every packet in flight go out once per timeout during an outage.
                p.deadline = now + self.rtt.backed_off(p.retransmissions);
                stats.retransmissions += 1;
                return Some(p.packet.clone());
            }
        }
        let window_open = match self.in_flight.front() {
            None => true,
            Some(oldest) => seq_diff(self.next_seq, oldest.seq) < i32::from(SEND_WINDOW),
        };
        if window_open && let Some(next) = self.pending.pop_front() {
            let seq = self.next_seq;
            self.next_seq = self.next_seq.wrapping_add(1);
            let packet =
                encode_reliable(self.agent_id, seq, next.kind, &next.body, self.key.as_ref());
            self.in_flight.push_back(InFlight {
                seq,
                message: next.message,
                packet: packet.clone(),
                first_sent: now,
                deadline: now + self.rtt.timeout(),
                retransmissions: 0,
                heard_since_sent: false,
                resent: false,
                noack_resent: false,
            });
            stats.packets_sent += 1;
            return Some(packet);
        }
        None
    }

    /// A NOACK for a packet of the peer's that failed its checks.
    pub fn noack(&self, seq: u16, reason: NoackReason) -> Vec<u8> {
        Packet {
            keyed: self.key.is_some(),
            agent_id: self.agent_id,
            body: Body::Noack(Noack { seq, reason }),
        }
        .encode(self.key.as_ref())
    }

    /// The earliest time `handle_timeout` has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retransmit = self.in_flight.iter().map(|p| p.deadline).min();
        let reassembly = self.reassembler.next_expiry();
        match (retransmit, reassembly) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether `poll_transmit` has something to send now.
    pub fn wants_transmit(&self) -> bool {
        if !self.acks.is_empty() || !self.resend_now.is_empty() {
            return true;
        }
        let window_open = match self.in_flight.front() {
            None => true,
            Some(oldest) => seq_diff(self.next_seq, oldest.seq) < i32::from(SEND_WINDOW),
        };
        window_open && !self.pending.is_empty()
    }

    /// Retransmits what timed out; declares the peer lost when a packet was retransmitted the
    /// maximum number of times without a word from the peer since it was first sent.
    pub fn handle_timeout(&mut self, now: Instant, stats: &mut Stats) {
        for message_id in self.reassembler.expire(now) {
            let seqs = self.held_fragments.remove(&message_id);
            self.forget_held(seqs.into_iter().flatten());
        }
        let mut newly_lost = false;
        for p in &mut self.in_flight {
            if p.deadline > now {
                continue;
            }
            if p.retransmissions >= self.max_retransmissions && !p.heard_since_sent && !self.lost {
                newly_lost = true;
            }
            p.retransmissions += 1;
            p.resent = true;
            p.noack_resent = false;
            p.deadline = now + self.rtt.backed_off(p.retransmissions);
            if !self.resend_now.contains(&p.seq) {
                self.resend_now.push_back(p.seq);
            }
        }
        if newly_lost {
            self.lost = true;
            stats.peers_lost += 1;
            self.events.push_back(SessionEvent::Lost);
        }
    }

    /// Empties the session, returning every unacknowledged message (oldest first) so a new
    /// session can send them again.
    pub fn take_unacknowledged(&mut self) -> Vec<Outbound> {
        let mut ids: Vec<u64> = self.messages.keys().copied().collect();
        ids.sort_unstable();
        let out = ids
            .into_iter()
            .filter_map(|id| self.messages.remove(&id).map(|m| m.outbound))
            .collect();
        self.pending.clear();
        self.in_flight.clear();
        self.resend_now.clear();
        out
    }
}

/// How many earlier packets an ACK for `agent_id` acknowledges at most in its bitmap, so that
/// every ACK stays within the original design's 18 bytes: 16 with a one-byte agent id, 8 with a
/// two-byte one, none with a longer one.
pub fn ack_bitmap_bits(agent_id: u32) -> u32 {
    match crate::wire::codec::varint_len(agent_id.into()) {
        1 => 16,
        2 => 8,
        _ => 0,
    }
    .min(u32::from(ACK_BITMAP_BITS))
}

/// Encodes a reliable packet from an already-encoded body.
pub(crate) fn encode_reliable(
    agent_id: u32,
    seq: u16,
    kind: PacketType,
    body: &[u8],
    key: Option<&Key>,
) -> Vec<u8> {
    use crate::wire::codec::Writer;
    debug_assert!(agent_id <= MAX_AGENT_ID);
    let mut out = Vec::with_capacity(MAX_HEADER_LEN + body.len() + TAG_LEN);
    let flags = if key.is_some() { 0x10 } else { 0 };
    out.put_u8((crate::wire::packet::VERSION << 5) | flags | kind as u8);
    out.put_varint(agent_id.into());
    out.put_u16(seq);
    out.extend_from_slice(body);
    let tag = crate::wire::tag::compute(key, &out);
    out.extend_from_slice(&tag);
    out
}

#[cfg(test)]
mod tests;
