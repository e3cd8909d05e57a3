//! As `packet_decode`, with a pre-shared key: keyed (HMAC) tags, the KEYED flag, and packets
//! whose flag and tag disagree with the key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = nms_fuzz::fuzz_key();
    nms_fuzz::check_decoders(data, Some(&key));
});
