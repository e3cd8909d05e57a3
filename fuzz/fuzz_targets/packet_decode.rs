//! Arbitrary bytes into the NetTask and AlertFlow decoders, without a key: nothing panics, and
//! whatever decodes encodes back to the same bytes. The bytes are also tried with their last 12
//! bytes replaced by the right SHA-256 tag, so the fuzzer explores the bodies, not just the tag.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nms_fuzz::check_decoders(data, None);
});
