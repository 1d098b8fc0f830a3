//! The bounded pickle reader of `.pt` checkpoints: any bytes give Ok or an error, never a panic,
//! and an error's text is one line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use models::pickle::GuardError;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = models::pickle::check_pickle_bytes(data) {
        let msg = match e {
            GuardError::Refused(what, why) => format!("{what}: {why}"),
            GuardError::Other(_, why) => why,
        };
        assert!(!msg.contains('\n'), "{msg}");
    }
});
