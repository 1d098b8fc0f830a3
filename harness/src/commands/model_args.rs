//! Model location and runtime flags shared by every command that loads Emu
//! (`--model`, `--weights`, `--dtype`, `--device`).
use std::path::PathBuf;

use anyhow::Result;

use models::emu::{self, Emu};

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
    /// Checks before the (slow, large) model load what can be checked without it: the
    /// configuration, and the header of every image (size within the pixel limit).
    pub fn preflight(&self, images: &[PathBuf]) -> Result<emu::EmuConfig> {
        for p in images.iter().filter(|p| p.extension().is_none_or(|e| e != "safetensors")) {
            tasks::media::image::check_file_header(p)?;
        }
        Ok(emu::EmuConfig::from_file(&self.model.join("config.json"))?)
    }

    pub fn load(&self) -> Result<Emu> {
        let dtype = crate::cli::device::parse_dtype(&self.dtype)?;
        let device = crate::cli::device::parse_device(&self.device)?;
        Ok(Emu::load(&self.model, self.weights.as_deref(), dtype, &device)?)
    }
}

