//! The safetensors header check of `Checkpoint::open` (the file is memory-mapped, so the input is
//! written to a file first): no panic, and an error is one line.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path =
        std::env::temp_dir().join(format!("emu-eval-fuzz-{}.safetensors", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Err(e) = models::emu::load::Checkpoint::open(&path, None) {
        assert!(!e.to_string().contains('\n'));
    }
});
