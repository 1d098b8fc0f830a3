//! The bounded pickle reader of `.pt` checkpoints: any bytes give Ok or an error, never a panic,
//! and an error is one line.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = models::pickle::check_pickle_bytes(data) {
        assert!(!e.to_string().contains('\n'));
    }
});
