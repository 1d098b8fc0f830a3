//! emu-eval harness: the evaluation runner, prompt planning, RICES glue, caches, built-in sample
//! data, text-to-image + FID, and the `emu-eval` command line. The networks live in `models`.
pub mod cache;
pub mod cli;
pub mod commands;
pub mod convert;
pub mod hub;
pub mod log;
pub mod model_source;
pub mod pixels;
pub mod plan;
pub mod provenance;
pub mod reproduce;
pub mod rices;
pub mod rices_features;
pub mod runner;
pub mod sample_data;
pub mod signals;
pub mod t2i;
