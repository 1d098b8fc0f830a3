//! Model code apart from the CLI: Emu's visual decoder (Stable Diffusion v1.5-style UNet + VAE
//! with the PNDM scheduler and classifier-free guidance, spec emu-model.md §5.4 and Appendix C)
//! and pytorch-fid's FID InceptionV3 (metrics.md §6.2).
//!
//! Inputs are tensors and plain arrays: image decoding, prompts and file formats live in
//! `tasks` and the harness, so this crate has no media dependencies.
use std::path::{Path, PathBuf};

pub mod decoder;
pub mod inception;
pub mod weights;

#[cfg(test)]
mod test_util;

/// Errors of this crate; each displays as one line naming the file (and field) at fault.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{}: {field}: {message}", file.display())]
    Config { file: PathBuf, field: String, message: String },
    #[error("{}: {message}", file.display())]
    Weights { file: PathBuf, message: String },
    #[error("{0}")]
    Input(String),
    #[error("{}", weights::first_line(.0))]
    Candle(#[from] candle_core::Error),
}

impl ModelError {
    pub fn config(file: &Path, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config { file: file.to_owned(), field: field.into(), message: message.into() }
    }
    pub fn weights(file: &Path, message: impl Into<String>) -> Self {
        Self::Weights { file: file.to_owned(), message: message.into() }
    }
}

pub type Result<T> = std::result::Result<T, ModelError>;
