//! Task registry, dataset loaders, media preprocessing and metrics of emu-eval.
pub mod input;
pub mod limits;
pub mod metrics;
pub mod datasets;
#[cfg(feature = "media")]
pub mod media;
pub mod registry;
pub mod rng;
pub mod run_folder;
