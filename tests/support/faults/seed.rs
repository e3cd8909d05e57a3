//! Seeds of the fault proxies: one base seed per test process, from `NMS_FAULT_SEED` (decimal
//! or `0x` hex) or random, and a seed per proxy derived from the base and the proxy's name, so
//! that one variable replays every proxy of a run.

use std::sync::OnceLock;

/// The base seed of this test process; printed once, with how to replay it.
pub fn base_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let from_env = std::env::var("NMS_FAULT_SEED").ok().and_then(|text| {
            let text = text.trim();
            match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => text.parse().ok(),
            }
        });
        let seed = from_env.unwrap_or_else(|| fastrand::Rng::new().u64(..));
        eprintln!(
            "fault seed: NMS_FAULT_SEED={seed:#x} ({})",
            if from_env.is_some() {
                "from the environment"
            } else {
                "random; set NMS_FAULT_SEED to replay"
            }
        );
        seed
    })
}

/// The seed of the proxy called `name` (FNV-1a of the name mixed into the base seed).
pub fn derive_seed(name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let base = base_seed();
    eprintln!("fault proxy {name}: NMS_FAULT_SEED={base:#x}");
    base ^ hash
}
