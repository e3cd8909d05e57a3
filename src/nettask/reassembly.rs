//! Reassembly of fragmented messages, with limits on memory and age.
//!
//! Fragments arrive already deduplicated (each is a reliable packet of its own) but in any order.
//! A message is complete when all `count` pieces are here; it is then handed back as the inner
//! type and the concatenated body. Incomplete messages are dropped, and counted, when they grow
//! older than the configured age or when the total buffered bytes would pass the limit.
//!
//! The limit counts the memory an incomplete message really holds: its chunks, and also its
//! entry and one slot per announced piece, reserved when its first fragment arrives. Counting
//! chunks alone would let a peer announce 65535 pieces of one byte under each of 65536 message
//! ids and make the receiver reserve some 100 GB while "buffering" 64 KiB.

pub use crate::limits::MemoryBudget as ReassemblyBudget;
use crate::wire::{Fragment, PacketType};
use std::collections::HashMap;
use std::mem::size_of;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Partial {
    inner_type: PacketType,
    pieces: Vec<Option<Vec<u8>>>,
    received: usize,
    /// Bytes of the chunks received so far.
    bytes: usize,
    started: Instant,
}

impl Partial {
    /// Memory held besides the chunks: the map entry and one slot per announced piece.
    fn overhead(count: u16) -> usize {
        size_of::<(u16, Partial)>() + usize::from(count) * size_of::<Option<Vec<u8>>>()
    }

    /// Everything this message holds, as counted against the buffer limit.
    fn held(&self) -> usize {
        self.bytes + Partial::overhead(self.pieces.len() as u16)
    }
}

/// Why a fragment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReassemblyError {
    #[error("fragment {index}/{count} of message {message_id} disagrees with earlier fragments")]
    Inconsistent {
        message_id: u16,
        index: u16,
        count: u16,
    },
    #[error("message {message_id} would exceed the reassembly limit of {limit} bytes")]
    TooLarge { message_id: u16, limit: usize },
    #[error("reassembly buffer full ({limit} bytes): message {message_id} dropped")]
    BufferFull { message_id: u16, limit: usize },
    #[error(
        "reassembly memory of all peers together is full ({limit} bytes): message {message_id} \
         dropped"
    )]
    SharedBudgetFull { message_id: u16, limit: usize },
}

/// Reassembles the fragmented messages of one peer.
#[derive(Debug)]
pub struct Reassembler {
    partial: HashMap<u16, Partial>,
    buffered: usize,
    max_message: usize,
    max_buffered: usize,
    max_age: Duration,
    budget: ReassemblyBudget,
    /// Incomplete messages dropped for age or size.
    pub dropped: u64,
}

impl Drop for Reassembler {
    fn drop(&mut self) {
        self.budget.release(self.buffered);
    }
}

impl Reassembler {
    pub fn new(max_message: usize, max_buffered: usize, max_age: Duration) -> Self {
        Self::with_budget(
            max_message,
            max_buffered,
            max_age,
            ReassemblyBudget::unlimited(),
        )
    }

    /// A reassembler whose bytes are also drawn from `budget`, shared with other peers.
    pub fn with_budget(
        max_message: usize,
        max_buffered: usize,
        max_age: Duration,
        budget: ReassemblyBudget,
    ) -> Self {
        Reassembler {
            partial: HashMap::new(),
            buffered: 0,
            max_message,
            max_buffered,
            max_age,
            budget,
            dropped: 0,
        }
    }

    /// Counts `bytes` more as held, in this reassembler and in the shared budget.
    fn hold(&mut self, message_id: u16, bytes: usize) -> Result<(), ReassemblyError> {
        if self.buffered + bytes > self.max_buffered {
            return Err(ReassemblyError::BufferFull {
                message_id,
                limit: self.max_buffered,
            });
        }
        if !self.budget.reserve(bytes) {
            return Err(ReassemblyError::SharedBudgetFull {
                message_id,
                limit: self.budget.limit(),
            });
        }
        self.buffered += bytes;
        Ok(())
    }

    fn unhold(&mut self, bytes: usize) {
        self.buffered -= bytes;
        self.budget.release(bytes);
    }

    /// Bytes held for incomplete messages.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Adds a fragment; returns the whole message (inner type, body) once complete.
    pub fn add(
        &mut self,
        now: Instant,
        fragment: Fragment,
    ) -> Result<Option<(PacketType, Vec<u8>)>, ReassemblyError> {
        let Fragment {
            message_id,
            index,
            count,
            inner_type,
            chunk,
        } = fragment;
        let limit = self.max_message;
        if usize::from(count) > limit || chunk.len() > limit {
            self.drop_message(message_id);
            return Err(ReassemblyError::TooLarge { message_id, limit });
        }
        if !self.partial.contains_key(&message_id) {
            self.hold(message_id, Partial::overhead(count))?;
        }
        let partial = self.partial.entry(message_id).or_insert_with(|| Partial {
            inner_type,
            pieces: vec![None; usize::from(count)],
            received: 0,
            bytes: 0,
            started: now,
        });
        if partial.inner_type != inner_type || partial.pieces.len() != usize::from(count) {
            let err = ReassemblyError::Inconsistent {
                message_id,
                index,
                count,
            };
            self.drop_message(message_id);
            return Err(err);
        }
        if partial.pieces[usize::from(index)].is_some() {
            return Ok(None);
        }
        if partial.bytes + chunk.len() > limit {
            self.drop_message(message_id);
            return Err(ReassemblyError::TooLarge { message_id, limit });
        }
        if let Err(e) = self.hold(message_id, chunk.len()) {
            self.drop_message(message_id);
            return Err(e);
        }
        let Some(partial) = self.partial.get_mut(&message_id) else {
            return Ok(None);
        };
        partial.bytes += chunk.len();
        partial.received += 1;
        partial.pieces[usize::from(index)] = Some(chunk);
        if partial.received < partial.pieces.len() {
            return Ok(None);
        }
        let Some(done) = self.partial.remove(&message_id) else {
            return Ok(None);
        };
        self.unhold(done.held());
        let mut body = Vec::with_capacity(done.bytes);
        for piece in done.pieces.into_iter().flatten() {
            body.extend_from_slice(&piece);
        }
        Ok(Some((done.inner_type, body)))
    }

    fn drop_message(&mut self, message_id: u16) {
        if let Some(p) = self.partial.remove(&message_id) {
            self.unhold(p.held());
            self.dropped += 1;
        }
    }

    /// Drops incomplete messages that reached the age limit ([`Reassembler::next_expiry`]);
    /// returns their message ids.
    pub fn expire(&mut self, now: Instant) -> Vec<u16> {
        let max_age = self.max_age;
        let expired: Vec<u16> = self
            .partial
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.started) >= max_age)
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            self.drop_message(*id);
        }
        expired
    }

    /// When the oldest incomplete message expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.partial
            .values()
            .map(|p| p.started + self.max_age)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(message_id: u16, index: u16, count: u16, chunk: &[u8]) -> Fragment {
        Fragment {
            message_id,
            index,
            count,
            inner_type: PacketType::Task,
            chunk: chunk.to_vec(),
        }
    }

    #[test]
    fn out_of_order_pieces_reassemble_once() {
        let now = Instant::now();
        let mut r = Reassembler::new(1000, 4000, Duration::from_secs(30));
        assert_eq!(r.add(now, frag(7, 2, 3, b"ef")).unwrap(), None);
        assert_eq!(r.add(now, frag(7, 0, 3, b"ab")).unwrap(), None);
        assert_eq!(r.add(now, frag(7, 0, 3, b"ab")).unwrap(), None);
        assert_eq!(
            r.add(now, frag(7, 1, 3, b"cd")).unwrap(),
            Some((PacketType::Task, b"abcdef".to_vec()))
        );
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn limits_and_age_drop_incomplete_messages() {
        let now = Instant::now();
        let mut r = Reassembler::new(10, 15 + 2 * Partial::overhead(2), Duration::from_secs(30));
        assert!(matches!(
            r.add(now, frag(1, 0, 2, &[0; 11])),
            Err(ReassemblyError::TooLarge { .. })
        ));
        r.add(now, frag(2, 0, 2, &[0; 8])).unwrap();
        assert!(matches!(
            r.add(now, frag(3, 0, 2, &[0; 8])),
            Err(ReassemblyError::BufferFull { .. })
        ));
        assert!(matches!(
            r.add(now, frag(2, 1, 3, &[0; 1])),
            Err(ReassemblyError::Inconsistent { .. })
        ));
        r.add(now, frag(4, 0, 2, &[0; 5])).unwrap();
        r.expire(now + Duration::from_secs(31));
        assert_eq!(r.buffered(), 0);
        assert_eq!(r.dropped, 3);
    }

    #[test]
    fn peers_sharing_a_budget_cannot_hold_more_than_it_and_get_it_back() {
        let now = Instant::now();
        let budget = ReassemblyBudget::new(3000);
        let mut a = Reassembler::with_budget(1000, 4000, Duration::from_secs(30), budget.clone());
        let mut b = Reassembler::with_budget(1000, 4000, Duration::from_secs(30), budget.clone());
        a.add(now, frag(1, 0, 2, &[0; 900])).unwrap();
        assert!(matches!(
            b.add(now, frag(1, 0, 2, &[0; 900])),
            Ok(None) | Err(ReassemblyError::SharedBudgetFull { .. })
        ));
        let mut refused = 0;
        for id in 2..10 {
            if b.add(now, frag(id, 0, 2, &[0; 900])).is_err() {
                refused += 1;
            }
        }
        assert!(refused > 0, "the shared budget stopped the second peer");
        assert!(budget.used() <= 3000);
        // Expiry gives the memory back, and so does a peer whose session ends.
        b.expire(now + Duration::from_secs(31));
        assert_eq!(budget.used(), a.buffered());
        drop(a);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn announced_pieces_count_against_the_buffer_limit() {
        // Regression: a fragment announcing 65535 pieces made the receiver reserve 65535 slots
        // (1.5 MB) while counting only its one-byte chunk, so 65536 message ids could reserve
        // about 100 GB under a 1 MiB limit. Each such message now costs what it reserves.
        let now = Instant::now();
        let limit = 1024 * 1024;
        let mut r = Reassembler::new(256 * 1024, limit, Duration::from_secs(30));
        for id in 0..16 {
            assert!(matches!(
                r.add(now, frag(id, 0, u16::MAX, b"x")),
                Err(ReassemblyError::BufferFull { .. })
            ));
        }
        assert_eq!(r.buffered(), 0);
        // Announcing 20000 pieces reserves about 480 KB: two such messages fit, the third not.
        let mut held = 0;
        for id in 0..16 {
            if r.add(now, frag(id, 0, 20_000, b"x")).is_ok() {
                held += 1;
            }
            assert!(r.buffered() <= limit);
        }
        assert_eq!(held, 2);
        // An ordinary message still gets through once the others expire.
        r.expire(now + Duration::from_secs(31));
        assert_eq!(r.buffered(), 0);
        assert_eq!(r.add(now, frag(99, 1, 2, b"cd")).unwrap(), None);
        assert_eq!(
            r.add(now, frag(99, 0, 2, b"ab")).unwrap(),
            Some((PacketType::Task, b"abcd".to_vec()))
        );
        assert_eq!(r.buffered(), 0);
    }
}
