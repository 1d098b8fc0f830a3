//! Which Emu a command uses: a model folder (with an optional weights override) or the built-in
//! tiny random model; its configuration and tokenizer before the weights load, and the model with
//! what `run.json` records of it.
use std::path::PathBuf;

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use models::emu::{builtin, Emu, EmuConfig, EmuTokenizer};

/// What the model is, as recorded in `run.json`.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// Model folder, or `builtin-tiny`.
    pub name: String,
    pub weights_hash: String,
    pub dtype: String,
    pub device: String,
}

/// A model folder, or (`dir` None) the built-in tiny random model drawn from `seed`.
#[derive(Debug, Clone, Default)]
pub struct ModelSource {
    pub dir: Option<PathBuf>,
    pub weights: Option<PathBuf>,
    pub seed: u64,
}

impl ModelSource {
    /// The configuration, read before any weights (`instruct` picks the built-in model's
    /// vocabulary; a folder's `config.json` says its own).
    pub fn config(&self, instruct: bool) -> Result<EmuConfig> {
        match &self.dir {
            None => Ok(builtin::tiny_config(instruct)),
            Some(dir) => Ok(EmuConfig::from_file(&dir.join("config.json"))?),
        }
    }

    /// The tokenizer alone (for checks and token ids before the weights load).
    pub fn tokenizer(&self, instruct: bool) -> Result<EmuTokenizer> {
        match &self.dir {
            None => Ok(builtin::tokenizer(instruct)?),
            Some(dir) => {
                let cfg = self.config(instruct)?;
                Ok(EmuTokenizer::from_file(&dir.join("tokenizer.json"), cfg.instruct)?)
            }
        }
    }

    /// Loads the model (the built-in one with a banner) and hashes its weights.
    pub fn load(&self, instruct: bool, dtype: DType, device: &Device) -> Result<(Emu, ModelInfo)> {
        let info = |name: String, weights_hash: String| ModelInfo {
            name,
            weights_hash,
            dtype: dtype_name(dtype).into(),
            device: device_name(device),
        };
        match &self.dir {
            None => {
                crate::log::note(format!(
                    "NOTE: no --model: using the built-in tiny RANDOM model (seed {}); its scores are meaningless",
                    self.seed
                ));
                let emu = builtin::tiny(self.seed, instruct, dtype, device)?;
                Ok((emu, info(builtin::NAME.into(), builtin::weights_hash(self.seed, instruct))))
            }
            Some(dir) => {
                let emu = Emu::load(dir, self.weights.as_deref(), dtype, device)?;
                if instruct && !emu.cfg.instruct {
                    crate::log::warn("model config is not instruction-tuned: Emu-I templates' [USER]/[ASSISTANT] are tokenised as text");
                }
                let weights = emu.load_report.path.clone();
                let hash = crate::cache::weights_hash(&weights)
                    .with_context(|| format!("{}: hashing weights", weights.display()))?;
                Ok((emu, info(dir.display().to_string(), hash)))
            }
        }
    }
}

/// The `--dtype` spelling of a dtype.
pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        DType::F64 => "f64",
        _ => "f32",
    }
}

/// The `--device` spelling of a device.
pub fn device_name(d: &Device) -> String {
    match d.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}
