//! Task registry, dataset loaders, media preprocessing and metrics of emu-eval.
pub mod input;
pub mod metrics;
