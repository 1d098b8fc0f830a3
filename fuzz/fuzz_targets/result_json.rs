//! The JSON readers of run folders (`run.json`, `metrics.json`) and of user JSON files: no panic,
//! and an error names the file on one line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("fuzz.json");
    for e in [
        tasks::input::parse_json(path, text).err(),
        tasks::run_folder::parse::<tasks::run_folder::RunJson>(path, text).err(),
        tasks::run_folder::parse::<tasks::run_folder::Metrics>(path, text).err(),
    ]
    .into_iter()
    .flatten()
    {
        let msg = e.to_string();
        assert!(!msg.contains('\n') && msg.contains("fuzz.json"), "{msg}");
    }
});
