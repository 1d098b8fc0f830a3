//! prompts crate.
