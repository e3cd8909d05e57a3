//! Hashing for the head's maps keyed by small series and column ids ([`IdHash`]).

/// Hashing for maps keyed by series and column ids (alone or in tuples): ids are small numbers
/// handed out in order, so a multiplication spreads them well, at a fraction of SipHash's cost
/// (one lookup per report, or per sample in remote write).
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, v: u32) {
        // Folds into what came before, so that each id of a tuple counts.
        self.0 = (self.0.rotate_left(32) ^ u64::from(v)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

pub type IdHash = std::hash::BuildHasherDefault<IdHasher>;
