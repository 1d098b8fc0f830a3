//! emu-eval harness: command handlers, the Emu model in candle and decoding.
pub mod cli;
pub mod commands;
pub mod emu;
pub mod decode;
pub mod t2i;
