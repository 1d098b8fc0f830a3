//! emu-eval harness: command handlers, the Emu model in candle, decoding, prompt planning and the
//! run orchestration.
pub mod cache;
pub mod cli;
pub mod commands;
pub mod emu;
pub mod decode;
pub mod log;
pub mod plan;
pub mod runner;
pub mod sample_data;
pub mod rices;
pub mod rices_features;
pub mod t2i;
