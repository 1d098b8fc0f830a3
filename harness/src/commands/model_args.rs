//! Model location and runtime flags shared by every command that loads Emu
//! (`--model`, `--weights`, `--dtype`, `--device`).
use std::path::PathBuf;

use anyhow::Result;

use crate::emu::{self, Emu};

/// Model location and runtime options shared by inspect / generate / rank / regress.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model directory (config.json, tokenizer.json, weights).
    #[arg(long)]
    pub model: PathBuf,
    /// Weights file overriding the directory's checkpoint.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// cpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl ModelArgs {
    pub fn load(&self) -> Result<Emu> {
        let dtype = emu::parse_dtype(&self.dtype)?;
        let device = emu::parse_device(&self.device)?;
        Emu::load(&self.model, self.weights.as_deref(), dtype, &device)
    }
}

