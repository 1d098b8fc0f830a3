//! Emu's visual decoder (spec §5.4): a diffusers-layout folder with `unet/`, `vae/` and
//! `scheduler/`, run as the official `EmuGenerationPipeline` does — PNDM steps with
//! classifier-free guidance on a [cond; uncond] batch, then the VAE decode to uint8 RGB.
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

pub mod config;
mod group_norm;
pub mod pndm;
mod resnet;
mod transformer;
pub mod unet;
mod vae;

use crate::weights::Weights;
use crate::{ModelError, Result};
use config::{SchedulerConfig, UNetConfig, VaeConfig};
use pndm::{Pndm, StepOutput};
use unet::UNet2DConditionModel;
use vae::VaeDecoder;

/// Weight files tried for component `name` (`unet`, `vae`), in order: the diffusers layout, then
/// a file beside the folder.
fn weight_candidates(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut v = vec![];
    for stem in ["diffusion_pytorch_model", "model"] {
        for ext in ["safetensors", "bin"] {
            v.push(dir.join(name).join(format!("{stem}.{ext}")));
        }
    }
    v.push(dir.join(format!("{name}.safetensors")));
    v.push(dir.join(format!("{name}.bin")));
    v
}

/// The first existing weight file of component `name`.
pub fn find_weights(dir: &Path, name: &str) -> Result<PathBuf> {
    let c = weight_candidates(dir, name);
    c.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        ModelError::weights(&dir.join(name), format!("no weights (looked for {})", c[0].display()))
    })
}

/// One denoising step as the pipeline ran it.
#[derive(Debug, Clone)]
pub struct StepTrace {
    pub t: usize,
    pub latents_in: Tensor,
    pub noise_cond: Tensor,
    /// `None` when guidance is off.
    pub noise_uncond: Option<Tensor>,
    pub noise_guided: Tensor,
    pub sched: StepOutput,
}

/// A generated image.
#[derive(Debug, Clone)]
pub struct Generated {
    pub final_latents: Tensor,
    /// VAE output (1, 3, H, W) in about [-1, 1].
    pub decoded: Tensor,
    /// uint8 RGB, row-major HWC.
    pub rgb: Vec<u8>,
    pub width: usize,
    pub height: usize,
}

/// Settings of one generation.
#[derive(Debug, Clone, Copy)]
pub struct GenerateOptions {
    pub steps: usize,
    /// Classifier-free guidance scale; at most 1 turns guidance off.
    pub guidance: f64,
}

impl Default for GenerateOptions {
    /// The paper's FID setting: 50 steps, guidance 5.
    fn default() -> Self {
        Self { steps: 50, guidance: 5.0 }
    }
}

pub struct VisualDecoder {
    pub unet: UNet2DConditionModel,
    pub vae: VaeDecoder,
    pub unet_cfg: UNetConfig,
    pub vae_cfg: VaeConfig,
    pub scheduler_cfg: SchedulerConfig,
    device: Device,
    dtype: DType,
}

impl VisualDecoder {
    /// Loads `dir/{unet,vae}/config.json`, `dir/scheduler/scheduler_config.json` and the two
    /// weight files, with strict key checking.
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let unet_cfg = UNetConfig::load(&dir.join("unet/config.json"))?;
        let vae_cfg = VaeConfig::load(&dir.join("vae/config.json"))?;
        let scheduler_cfg = SchedulerConfig::load(&dir.join("scheduler/scheduler_config.json"))?;
        let w = Weights::open(&find_weights(dir, "unet")?)?;
        let unet = UNet2DConditionModel::new(w.var_builder(dtype, device), &unet_cfg)
            .map_err(|e| w.construction_error(e))?;
        w.finish(|_| false)?;
        let w = Weights::open(&find_weights(dir, "vae")?)?;
        let vae = VaeDecoder::load(w.var_builder(dtype, device), &vae_cfg)
            .map_err(|e| w.construction_error(e))?;
        w.finish(vae::unused_key)?;
        Ok(Self { unet, vae, unet_cfg, vae_cfg, scheduler_cfg, device: device.clone(), dtype })
    }

    /// A decoder from weight sources other than checkpoint files (e.g. seeded random weights for
    /// a built-in model); the dtype and device are the UNet builder's.
    pub fn new(
        unet_vb: VarBuilder,
        vae_vb: VarBuilder,
        unet_cfg: UNetConfig,
        vae_cfg: VaeConfig,
        scheduler_cfg: SchedulerConfig,
    ) -> Result<Self> {
        let (device, dtype) = (unet_vb.device().clone(), unet_vb.dtype());
        let unet = UNet2DConditionModel::new(unet_vb, &unet_cfg)?;
        let vae = VaeDecoder::load(vae_vb, &vae_cfg)?;
        Ok(Self { unet, vae, unet_cfg, vae_cfg, scheduler_cfg, device, dtype })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Width of the conditioning embeddings the UNet expects.
    pub fn conditioning_width(&self) -> usize {
        self.unet_cfg.encoder_hid_dim.unwrap_or(self.unet_cfg.cross_attention_dim)
    }

    /// Latent shape (1, 4, H/8, W/8) for an image of `height` x `width`.
    pub fn latent_shape(&self, height: usize, width: usize) -> (usize, usize, usize, usize) {
        let f = self.vae_cfg.scale_factor();
        (1, self.unet_cfg.in_channels, height / f, width / f)
    }

    /// Runs the denoising loop from `init_latents` (1, 4, h, w) with `cond` (1, tokens, d) and,
    /// when guidance is on, `uncond` (the regression output of the empty prompt), then decodes.
    /// `on_step` sees every step.
    pub fn generate(
        &self,
        cond: &Tensor,
        uncond: &Tensor,
        init_latents: &Tensor,
        opts: GenerateOptions,
        mut on_step: impl FnMut(&StepTrace),
    ) -> Result<Generated> {
        let guided = opts.guidance > 1.0;
        let d = self.conditioning_width();
        for (name, t) in [("cond", cond), ("uncond", uncond)] {
            if t.rank() != 3 || t.dim(0)? != 1 || t.dim(2)? != d {
                return Err(ModelError::Input(format!(
                    "{name} embeddings {:?}: expected (1, tokens, {d})",
                    t.dims()
                )));
            }
        }
        let context = if guided { Tensor::cat(&[cond, uncond], 0)? } else { cond.clone() }
            .to_dtype(self.dtype)?;
        let mut sched = Pndm::new(&self.scheduler_cfg);
        let timesteps = sched.set_timesteps(opts.steps).to_vec();
        let mut latents = init_latents.to_device(&self.device)?.to_dtype(self.dtype)?;
        let (_, _, lh, lw) = latents.dims4()?;
        self.unet.prepare(lh, lw)?;
        for t in timesteps {
            let input =
                if guided { Tensor::cat(&[&latents, &latents], 0)? } else { latents.clone() };
            let noise = self.unet.forward(&input, t, &context)?;
            let (noise_cond, noise_uncond, noise_guided) = if guided {
                let (c, u) = (noise.get(0)?.unsqueeze(0)?, noise.get(1)?.unsqueeze(0)?);
                let g = (&u + ((&c - &u)? * opts.guidance)?)?;
                (c, Some(u), g)
            } else {
                (noise.clone(), None, noise)
            };
            let out = sched.step(&noise_guided, t, &latents)?;
            let next = out.prev_sample.clone();
            on_step(&StepTrace {
                t,
                latents_in: latents,
                noise_cond,
                noise_uncond,
                noise_guided,
                sched: out,
            });
            latents = next;
        }
        self.decode(&latents)
    }

    /// `vae.decode((1 / scaling_factor) * latents)` → `(x/2 + 0.5).clamp(0, 1)` → ×255, rounded
    /// half to even, uint8 HWC.
    pub fn decode(&self, latents: &Tensor) -> Result<Generated> {
        let decoded = self.vae.decode(&(latents * (1.0 / self.vae_cfg.scaling_factor))?)?;
        let (_, _, height, width) = decoded.dims4()?;
        let float = image_float(&decoded)?;
        let rgb = float
            .flatten_all()?
            .to_vec1::<f32>()?
            .into_iter()
            .map(|x| (x * 255.0).round_ties_even() as u8)
            .collect();
        Ok(Generated { final_latents: latents.clone(), decoded, rgb, width, height })
    }
}

/// The pipeline's float image: `(x/2 + 0.5).clamp(0, 1)`, NHWC float32.
pub fn image_float(decoded: &Tensor) -> Result<Tensor> {
    let x = ((decoded.to_dtype(DType::F32)? / 2.0)? + 0.5)?.clamp(0f32, 1f32)?;
    Ok(x.permute((0, 2, 3, 1))?.contiguous()?)
}

#[cfg(test)]
mod tests;
