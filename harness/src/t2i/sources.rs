//! Where the visual decoder and the Inception network come from (files, or the built-in random
//! ones), with the names and hashes that a run folder records.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::Device;
use models::decoder::VisualDecoder;
use models::inception::FidInception;

use super::builtin;
use models::emu::Emu;

/// Where the Inception weights come from.
#[derive(Debug, Clone)]
pub enum InceptionSource {
    File(PathBuf),
    Builtin { seed: u64 },
}

impl InceptionSource {
    /// `--inception`, else `$EMU_EVAL_INCEPTION`, else the built-in random network (with a note).
    pub fn resolve(given: Option<&Path>, seed: u64) -> Self {
        match given
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("EMU_EVAL_INCEPTION").map(PathBuf::from))
        {
            Some(p) => InceptionSource::File(p),
            None => {
                crate::log::note(format!("NOTE: no --inception (or $EMU_EVAL_INCEPTION): using a built-in RANDOM Inception (seed {seed}); FID values are meaningless"));
                InceptionSource::Builtin { seed }
            }
        }
    }

    /// The source a run folder records.
    pub fn recorded(name: &str, seed: u64) -> Self {
        if name == builtin::NAME {
            InceptionSource::Builtin { seed }
        } else {
            InceptionSource::File(PathBuf::from(name))
        }
    }

    pub fn name(&self) -> String {
        match self {
            InceptionSource::File(p) => p.display().to_string(),
            InceptionSource::Builtin { .. } => builtin::NAME.into(),
        }
    }

    pub fn hash(&self) -> Result<String> {
        match self {
            InceptionSource::File(p) => {
                crate::cache::weights_hash(p).with_context(|| "--inception".to_string())
            }
            InceptionSource::Builtin { seed } => Ok(builtin::inception_hash(*seed)),
        }
    }

    pub fn load(&self, device: &Device) -> Result<FidInception> {
        match self {
            InceptionSource::File(p) => crate::t2i::fid::load_inception(Some(p), device),
            InceptionSource::Builtin { seed } => builtin::inception(*seed, device),
        }
    }
}

/// The decoder of `--decoder`, or the built-in tiny random one (with a note), with its name and
/// hash for `run.json`.
pub fn load_decoder(
    emu: &Emu,
    dir: Option<&Path>,
    seed: u64,
) -> Result<(VisualDecoder, String, String)> {
    let width = emu.cfg.llama.hidden_size;
    match dir {
        None => {
            crate::log::note(format!("NOTE: no --decoder: using a built-in tiny RANDOM visual decoder (seed {seed}, 64 x 64 images); its images and FID are meaningless"));
            Ok((
                builtin::decoder(width, seed, emu.dtype(), emu.device())?,
                builtin::NAME.into(),
                builtin::decoder_hash(seed, width),
            ))
        }
        Some(d) => {
            let decoder = VisualDecoder::load(d, emu.dtype(), emu.device())?;
            Ok((decoder, d.display().to_string(), decoder_hash(d)?))
        }
    }
}

/// `sha256:` over the decoder's three configs and its two weight files' hashes.
pub fn decoder_hash(dir: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for cfg in ["unet/config.json", "vae/config.json", "scheduler/scheduler_config.json"] {
        let p = dir.join(cfg);
        h.update(std::fs::read(&p).with_context(|| format!("{}: cannot read", p.display()))?);
    }
    for part in ["unet", "vae"] {
        h.update(crate::cache::weights_hash(&models::decoder::find_weights(dir, part)?)?);
    }
    Ok(format!("sha256:{}", crate::cache::hex(&h.finalize())))
}
