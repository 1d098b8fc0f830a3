//! Built-in random text-to-image models, so that `run --task coco_t2i` works out of the box: a
//! tiny visual decoder (the shapes of `shared/fixtures/visual-decoder-tiny`, 64 x 64 images) and
//! pytorch-fid's Inception architecture, both with seeded random weights built in memory. Their
//! images and FIDs are meaningless.
use anyhow::Result;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use models::decoder::config::{SchedulerConfig, UNetConfig, VaeConfig};
use models::decoder::VisualDecoder;
use models::inception::FidInception;
use serde_json::json;
use tasks::rng::SplitMix64;

use models::emu::builtin::RandomWeights;

/// Name recorded as the decoder / Inception of runs that use the built-in ones.
pub const NAME: &str = "builtin-tiny";

pub fn decoder_hash(seed: u64, width: usize) -> String {
    format!("{NAME}-decoder:seed={seed}:width={width}:v1")
}

pub fn inception_hash(seed: u64) -> String {
    format!("{NAME}-inception:seed={seed}:v1")
}

/// The tiny decoder: UNet 32/64 channels over 8 x 8 latents, conditioned on `width`-wide
/// embeddings (Emu's hidden size), a 4-block VAE, PNDM with Stable Diffusion's schedule.
pub fn decoder(width: usize, seed: u64, dtype: DType, device: &Device) -> Result<VisualDecoder> {
    let unet: UNetConfig = serde_json::from_value(json!({
        "sample_size": 8,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "block_out_channels": [32, 64],
        "layers_per_block": 1,
        "cross_attention_dim": width,
        "attention_head_dim": 4,
    }))?;
    let vae: VaeConfig = serde_json::from_value(json!({
        "down_block_types": vec!["DownEncoderBlock2D"; 4],
        "up_block_types": vec!["UpDecoderBlock2D"; 4],
        "block_out_channels": [32, 32, 64, 64],
    }))?;
    let scheduler: SchedulerConfig = serde_json::from_value(json!({
        "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
        "skip_prk_steps": true, "steps_offset": 1,
    }))?;
    let vb = |salt: u64| {
        VarBuilder::from_backend(
            Box::new(RandomWeights { seed: seed ^ salt }),
            dtype,
            device.clone(),
        )
    };
    Ok(VisualDecoder::new(vb(0x756e_6574), vb(0x0076_6165), unet, vae, scheduler)?)
}

/// pytorch-fid's InceptionV3 with He-scaled random convolutions and identity BatchNorm
/// statistics, so that activations keep their scale through the 94 layers.
pub fn inception(seed: u64, device: &Device) -> Result<FidInception> {
    let vb = VarBuilder::from_backend(Box::new(HeWeights { seed }), DType::F32, device.clone());
    Ok(FidInception::new(vb)?)
}

struct HeWeights {
    seed: u64,
}

impl SimpleBackend for HeWeights {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let n = s.elem_count();
        let data: Vec<f32> = if s.rank() == 1 {
            let one = name.ends_with(".weight") || name.ends_with(".running_var");
            vec![if one { 1.0 } else { 0.0 }; n]
        } else {
            let fan_in = s.dims()[1..].iter().product::<usize>().max(1);
            let half = (6.0 / fan_in as f64).sqrt() as f32; // uniform: variance 2 / fan_in
            let mut rng = SplitMix64::new(self.seed ^ retrieval::fallback::fnv1a(name));
            (0..n).map(|_| (rng.uniform() as f32 * 2.0 - 1.0) * half).collect()
        };
        Tensor::from_vec(data, s, &Device::Cpu)?.to_dtype(dtype)?.to_device(dev)
    }
    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("{NAME}: tensor {name} needs a shape")
    }
    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}
