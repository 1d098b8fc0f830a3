//! Model code apart from the CLI: Emu's visual decoder (Stable Diffusion v1.5-style UNet + VAE
//! with the PNDM scheduler and classifier-free guidance, spec emu-model.md §5.4 and Appendix C)
//! and pytorch-fid's FID InceptionV3 (metrics.md §6.2).
//!
//! Inputs are tensors and plain arrays: image decoding, prompts and file formats live in
//! `tasks` and the harness, so this crate has no media dependencies.
use std::path::{Path, PathBuf};

/// Returns early with [`ModelError::Input`] built like `format!`.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::ModelError::Input(format!($($arg)*)))
    };
}

pub mod alloc;
pub mod attention;
pub mod conv;
pub mod decode;
pub mod decoder;
pub mod emu;
pub mod gelu;
pub mod inception;
pub mod pickle;
pub mod pool;
pub mod rng;
mod simd;
#[cfg(test)]
mod test_data;
pub mod weights;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

/// The f32 elements of a contiguous CPU tensor, for the crate's custom ops; `op` names the op in
/// the error for any other storage.
pub(crate) fn contiguous_f32<'a>(
    storage: &'a candle_core::CpuStorage,
    layout: &candle_core::Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (candle_core::CpuStorage::F32(data), Some((start, end))) => Ok(&data[start..end]),
        _ => candle_core::bail!("{op}: contiguous float32 CPU tensors only"),
    }
}

/// Errors of this crate; each displays as one line naming the file (and field) at fault.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{}: {field}: {message}", file.display())]
    Config { file: PathBuf, field: String, message: String },
    #[error("{}: {message}", file.display())]
    Weights { file: PathBuf, message: String },
    /// A request the model cannot serve (shapes, token counts, decoding settings).
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Load(#[from] emu::load::LoadError),
    #[error(transparent)]
    EmuConfig(#[from] emu::config::ConfigError),
    #[error(transparent)]
    Tokenizer(#[from] emu::tokenizer::TokenizerError),
    #[error(transparent)]
    Pickle(#[from] pickle::PickleError),
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
    /// This error with `what` in front (`what: error`).
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        Self::Input(format!("{what}: {self}"))
    }
}

pub type Result<T> = std::result::Result<T, ModelError>;
