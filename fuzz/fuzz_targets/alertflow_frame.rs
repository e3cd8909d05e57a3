//! Arbitrary bytes into `wire::alertflow::check` and `Frame::decode`: as they are, and made into
//! a frame with a consistent length field and a correct tag (plain and keyed). `check` and the
//! decoder must agree on where a frame ends, nothing panics, and a decoded frame encodes back to
//! the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nms_fuzz::{as_frame, check_frame, fuzz_key};

fuzz_target!(|data: &[u8]| {
    let key = fuzz_key();
    check_frame(data, None);
    check_frame(data, Some(&key));
    // A prefix that `check` says is one whole frame must decode the same as that frame alone.
    if let Ok(Some(total)) = nms::wire::alertflow::check(data) {
        check_frame(&data[..total], None);
    }
    check_frame(&as_frame(data, None), None);
    check_frame(&as_frame(data, Some(&key)), Some(&key));
    check_frame(&as_frame(data, Some(&key)), None);
});
