//! Task registry, dataset loaders, media preprocessing and metrics of emu-eval.
pub mod datasets;
pub mod input;
pub mod limits;
#[cfg(feature = "media")]
pub mod media;
pub mod metrics;
pub mod registry;
pub mod rng;
pub mod run_folder;
