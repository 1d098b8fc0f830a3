//! Messages that are not results: `error` (always), `warn` (default) and `info`, chosen with
//! `--log-level` or `EMU_EVAL_LOG`. All go to stderr, one line each, prefixed `emu-eval:`.
use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Warn as u8);

/// Sets the level from the flag, else from `EMU_EVAL_LOG` (`error`, `warn`, `info`).
pub fn init(flag: Option<Level>) {
    let env = std::env::var("EMU_EVAL_LOG").ok().and_then(|v| {
        match v.trim().to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warn" => Some(Level::Warn),
            "info" => Some(Level::Info),
            _ => None,
        }
    });
    if let Some(l) = flag.or(env) {
        LEVEL.store(l as u8, Ordering::Relaxed);
    }
}

fn enabled(l: Level) -> bool {
    l as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Whether notes (and progress displays) are shown: not at `--log-level error`.
pub fn notes_shown() -> bool {
    enabled(Level::Warn)
}

pub fn warn(msg: impl std::fmt::Display) {
    if enabled(Level::Warn) {
        eprintln!("emu-eval: warning: {}", one_line(&msg.to_string()));
    }
}

/// A note a user should see by default (what a run is doing: resuming, where it wrote); silenced by
/// `--log-level error`.
pub fn note(msg: impl std::fmt::Display) {
    if enabled(Level::Warn) {
        eprintln!("emu-eval: {}", one_line(&msg.to_string()));
    }
}

pub fn info(msg: impl std::fmt::Display) {
    if enabled(Level::Info) {
        eprintln!("emu-eval: {}", one_line(&msg.to_string()));
    }
}

/// One line from an error chain or message: lines joined with a space, stopping at a captured
/// backtrace (`stack backtrace:` or a frame line `  0: …`), which some libraries embed in their
/// error text when `RUST_BACKTRACE` is set.
pub fn one_line(text: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        let frame = t
            .split_once(": ")
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if frame
            || t.eq_ignore_ascii_case("stack backtrace:")
            || t.starts_with("at ") && line.starts_with("  ")
        {
            break;
        }
        if !t.is_empty() {
            out.push(t);
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backtraces_are_cut_and_lines_joined() {
        let e = "cannot load x.safetensors\nshape mismatch\n   0: std::backtrace::Backtrace::create\n             at /rustc/x/library/std/src/backtrace.rs:331:13\n   1: candle_core::error::Error::bt";
        assert_eq!(one_line(e), "cannot load x.safetensors shape mismatch");
        assert_eq!(one_line("a\nStack backtrace:\n  ..."), "a");
        assert_eq!(
            one_line("config.json: vision.layers: invalid type"),
            "config.json: vision.layers: invalid type"
        );
    }
}
