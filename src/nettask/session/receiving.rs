//! The receiving side of a [`Session`]: each reliable packet delivered once (fragments
//! reassembled first), the acknowledgements of held message types kept until the application
//! releases them, and the ACKs owed to the peer coalesced into as few packets as fit.

use super::{HeldSeqs, Session, SessionEvent, ack_bitmap_bits};
use crate::nettask::Stats;
use crate::nettask::reassembly::ReassemblyError;
use crate::nettask::window::{Arrival, seq_diff};
use crate::wire::{Ack, DecodeError, Fragment, Message, PacketType};
use std::time::Instant;

impl Session {
    /// Handles a reliable packet from the peer (tag already verified); says whether its number
    /// was new. A duplicate is acknowledged again and not delivered.
    ///
    /// A message of a held type is delivered with a receipt and not acknowledged; the
    /// application acknowledges it with [`Session::release`] once it has kept it. A copy of a
    /// held packet is neither delivered nor acknowledged: the release answers every copy.
    pub fn on_reliable(
        &mut self,
        now: Instant,
        seq: u16,
        message: Message,
        stats: &mut Stats,
    ) -> Arrival {
        self.heard(now);
        if self.window.record(seq) == Arrival::Duplicate {
            stats.duplicates += 1;
            if !self.held_seqs.contains(&seq) {
                self.acks.push(seq);
            }
            return Arrival::Duplicate;
        }
        let held = self.held_types.contains(match &message {
            Message::Fragment(f) => f.inner_type,
            m => m.packet_type(),
        });
        match message {
            Message::Fragment(fragment) => self.on_fragment(now, seq, fragment, held, stats),
            other if held => {
                self.held_seqs.insert(seq);
                let receipt = self.hold(HeldSeqs::One(seq));
                self.events
                    .push_back(SessionEvent::Message(other, Some(receipt)));
            }
            other => {
                self.acks.push(seq);
                self.events.push_back(SessionEvent::Message(other, None));
            }
        }
        Arrival::New
    }

    /// A fragment: kept for reassembly (its acknowledgement held with the message's when the
    /// message is of a held type); the whole message is delivered once its last fragment is in.
    fn on_fragment(
        &mut self,
        now: Instant,
        seq: u16,
        fragment: Fragment,
        held: bool,
        stats: &mut Stats,
    ) {
        let message_id = fragment.message_id;
        if held {
            self.held_seqs.insert(seq);
            self.held_fragments.entry(message_id).or_default().push(seq);
        } else {
            self.acks.push(seq);
        }
        match self.reassembler.add(now, fragment) {
            Ok(None) => {}
            Ok(Some((kind, body))) => self.on_reassembled(message_id, kind, &body, stats),
            Err(ReassemblyError::BufferFull { .. }) if held => {
                // No room now: not acknowledged, so the peer sends it again later.
                stats.reassembly_dropped += 1;
                let seqs = self.held_fragments.remove(&message_id);
                self.forget_held(seqs.into_iter().flatten());
            }
            Err(e) => {
                stats.reassembly_dropped += 1;
                let seqs = self.held_fragments.remove(&message_id);
                self.acknowledge_held(seqs.unwrap_or_default());
                self.events
                    .push_back(SessionEvent::Malformed(e.to_string()));
            }
        }
    }

    /// A message whose last fragment came in: delivered (with a receipt when held), or, when it
    /// does not decode, acknowledged and reported.
    fn on_reassembled(
        &mut self,
        message_id: u16,
        kind: PacketType,
        body: &[u8],
        stats: &mut Stats,
    ) {
        let seqs = self.held_fragments.remove(&message_id);
        let mut r = crate::wire::codec::Reader::new(body);
        match Message::decode_body(kind, &mut r) {
            Ok(m) => {
                stats.reassembled_messages += 1;
                let receipt = seqs.map(|seqs| self.hold(HeldSeqs::Many(seqs)));
                self.events.push_back(SessionEvent::Message(m, receipt));
            }
            Err(e) => {
                // Never acceptable: acknowledged, so the peer stops sending it.
                self.acknowledge_held(seqs.unwrap_or_default());
                stats.malformed += 1;
                self.events.push_back(SessionEvent::Malformed(format!(
                    "reassembled {} message: {e}",
                    kind.name()
                )));
            }
        }
    }

    /// Files the sequence numbers of a delivered held message under a new receipt.
    fn hold(&mut self, seqs: HeldSeqs) -> u32 {
        let receipt = self.next_receipt;
        self.next_receipt = self.next_receipt.wrapping_add(1);
        self.receipts.insert(receipt, seqs);
        receipt
    }

    fn acknowledge_held(&mut self, seqs: impl IntoIterator<Item = u16>) {
        for seq in seqs {
            self.held_seqs.remove(&seq);
            self.acks.push(seq);
        }
    }

    pub(super) fn forget_held(&mut self, seqs: impl IntoIterator<Item = u16>) {
        for seq in seqs {
            self.held_seqs.remove(&seq);
            self.window.forget(seq);
        }
    }

    /// Releases a held acknowledgement. `kept`: the application has kept the message (it is
    /// acknowledged now). Not kept: it is forgotten, so that the peer, which saw no
    /// acknowledgement, delivers it again with its next retransmission. An unknown receipt
    /// (already released, or of an earlier session) is ignored.
    pub fn release(&mut self, receipt: u32, kept: bool) {
        let Some(seqs) = self.receipts.remove(&receipt) else {
            return;
        };
        let seqs: &[u16] = match &seqs {
            HeldSeqs::One(seq) => std::slice::from_ref(seq),
            HeldSeqs::Many(seqs) => seqs,
        };
        if kept {
            self.acknowledge_held(seqs.iter().copied());
        } else {
            self.forget_held(seqs.iter().copied());
        }
    }

    /// Acknowledgements held for the application.
    pub fn held(&self) -> usize {
        self.receipts.len()
    }

    /// Decode errors in a reliable packet whose tag was right are answered with a NOACK so the
    /// peer does not retransmit a packet that can never be accepted.
    pub fn on_malformed(&mut self, now: Instant, seq: u16, error: &DecodeError, stats: &mut Stats) {
        self.heard(now);
        stats.malformed += 1;
        self.acks.push(seq);
        self.events
            .push_back(SessionEvent::Malformed(error.to_string()));
    }

    /// Coalesces pending acknowledgements: the newest sequence number plus a bitmap of up to 32
    /// earlier ones. Numbers that do not fit stay for the next ACK.
    pub(super) fn take_ack(&mut self) -> Option<Ack> {
        if self.acks.is_empty() {
            return None;
        }
        let newest = *self.acks.iter().max_by(|a, b| seq_diff(**a, **b).cmp(&0))?;
        // Keep every ACK within the original design's 18 bytes: 16 bytes with a one-byte agent
        // id and no bitmap, so the bitmap gets what the agent id leaves.
        let bitmap_bits = ack_bitmap_bits(self.agent_id) as i32;
        let mut earlier = 0u32;
        self.acks.retain(|&s| {
            let d = seq_diff(newest, s);
            if d == 0 {
                false
            } else if d > 0 && d <= bitmap_bits {
                earlier |= 1 << (d - 1);
                false
            } else {
                true
            }
        });
        Some(Ack {
            seq: newest,
            earlier,
        })
    }
}
