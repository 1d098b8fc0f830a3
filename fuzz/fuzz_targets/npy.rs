//! `.npy` headers and matrices (FID features): no panic, one-line errors, and an accepted matrix
//! has exactly rows × columns values.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tasks::metrics::npy;

fuzz_target!(|data: &[u8]| {
    if let Err((_, msg)) = npy::parse_header(data) {
        assert!(!msg.contains('\n'), "{msg}");
    }
    match npy::parse_matrix(data) {
        Ok((rows, cols, values)) => assert_eq!(rows * cols, values.len()),
        Err((_, msg)) => assert!(!msg.contains('\n'), "{msg}"),
    }
});
