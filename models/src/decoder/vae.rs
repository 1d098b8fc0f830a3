//! The decoding half of the Stable Diffusion VAE (diffusers `AutoencoderKL.decode`:
//! `post_quant_conv`, then `decoder.*`), latents → images. Emu only decodes: the encoder's
//! weights stay in the file, unused. Keys follow diffusers 0.15 (`query`/`key`/`value`/`proj_attn`
//! in the mid-block attention).
use candle_core::{Result, Tensor};
use candle_nn::{Module, VarBuilder};

use crate::emu::linear::{linear, Linear};

use super::group_norm::{group_norm, GroupNorm};

use super::config::VaeConfig;
use super::resnet::{ResnetBlock2D, ResnetBlock2DConfig};
use crate::conv::{conv2d, Conv2d};

/// GroupNorm epsilon of every VAE block (diffusers `resnet_eps` / `eps` = 1e-6).
const EPS: f64 = 1e-6;

/// Weight prefixes the decoder does not read (`finish` accepts them unused).
pub fn unused_key(key: &str) -> bool {
    key.starts_with("encoder.") || key.starts_with("quant_conv.")
}

/// Single-head self-attention over the h·w positions of the mid block (diffusers' legacy
/// `AttentionBlock`, `num_head_channels = None`).
#[derive(Debug)]
struct AttentionBlock {
    group_norm: GroupNorm,
    query: Linear,
    key: Linear,
    value: Linear,
    proj_attn: Linear,
    channels: usize,
}

impl AttentionBlock {
    fn new(vb: VarBuilder, channels: usize, groups: usize) -> Result<Self> {
        Ok(Self {
            group_norm: group_norm(groups, channels, EPS, vb.pp("group_norm"))?,
            query: linear(channels, channels, vb.pp("query"))?,
            key: linear(channels, channels, vb.pp("key"))?,
            value: linear(channels, channels, vb.pp("value"))?,
            proj_attn: linear(channels, channels, vb.pp("proj_attn"))?,
            channels,
        })
    }

    /// (b, c, h, w) → (b, c, h, w).
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = xs.dims4()?;
        // (b, c, h, w) → (b, h·w, c)
        let x = self.group_norm.forward(xs)?.reshape((b, c, h * w))?.transpose(1, 2)?;
        let x = x.contiguous()?;
        let q = self.query.forward(&x)?;
        let k = self.key.forward(&x)?;
        let v = self.value.forward(&x)?;
        let scale = 1.0 / (self.channels as f64).sqrt();
        // (b, h·w, h·w)
        let attn = candle_nn::ops::softmax_last_dim(&(q.matmul(&k.t()?)? * scale)?)?;
        let out = self.proj_attn.forward(&attn.matmul(&v)?)?;
        out.transpose(1, 2)?.reshape((b, c, h, w))? + xs
    }
}

fn resnet(vb: VarBuilder, cin: usize, cout: usize, groups: usize) -> Result<ResnetBlock2D> {
    let cfg = ResnetBlock2DConfig {
        out_channels: Some(cout),
        temb_channels: None,
        groups,
        groups_out: None,
        eps: EPS,
        use_in_shortcut: None,
        output_scale_factor: 1.0,
    };
    ResnetBlock2D::new(vb, cin, cfg)
}

/// `UpDecoderBlock2D`: `layers_per_block + 1` resnets, then (but in the last block) nearest ×2
/// upsampling and a 3×3 convolution.
#[derive(Debug)]
struct UpBlock {
    resnets: Vec<ResnetBlock2D>,
    upsample: Option<Conv2d>,
}

impl UpBlock {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut xs = xs.clone();
        for r in &self.resnets {
            xs = r.forward(&xs, None)?;
        }
        match &self.upsample {
            Some(conv) => {
                let (_, _, h, w) = xs.dims4()?;
                conv.forward(&xs.upsample_nearest2d(2 * h, 2 * w)?)
            }
            None => Ok(xs),
        }
    }
}

/// `AutoencoderKL` for decoding.
#[derive(Debug)]
pub struct VaeDecoder {
    post_quant_conv: Conv2d,
    conv_in: Conv2d,
    mid_resnets: [ResnetBlock2D; 2],
    mid_attention: AttentionBlock,
    up_blocks: Vec<UpBlock>,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl VaeDecoder {
    pub fn load(vb: VarBuilder, cfg: &VaeConfig) -> Result<Self> {
        let groups = cfg.norm_num_groups;
        let latent = cfg.latent_channels;
        let channels: Vec<usize> = cfg.block_out_channels.iter().rev().copied().collect();
        let (Some(&top), Some(&bottom)) = (channels.first(), channels.last()) else {
            candle_core::bail!("vae: block_out_channels is empty");
        };
        let d = vb.pp("decoder");
        let mid = d.pp("mid_block");
        let mut up_blocks = Vec::new();
        let mut cin = top;
        for (i, &cout) in channels.iter().enumerate() {
            let b = d.pp("up_blocks").pp(i);
            let resnets = (0..=cfg.layers_per_block)
                .map(|j| {
                    resnet(b.pp("resnets").pp(j), if j == 0 { cin } else { cout }, cout, groups)
                })
                .collect::<Result<Vec<_>>>()?;
            let upsample = (i + 1 < channels.len())
                .then(|| conv2d(cout, cout, 3, 1, 1, b.pp("upsamplers").pp(0).pp("conv")))
                .transpose()?;
            up_blocks.push(UpBlock { resnets, upsample });
            cin = cout;
        }
        Ok(Self {
            post_quant_conv: conv2d(latent, latent, 1, 1, 0, vb.pp("post_quant_conv"))?,
            conv_in: conv2d(latent, top, 3, 1, 1, d.pp("conv_in"))?,
            mid_resnets: [
                resnet(mid.pp("resnets").pp(0), top, top, groups)?,
                resnet(mid.pp("resnets").pp(1), top, top, groups)?,
            ],
            mid_attention: AttentionBlock::new(mid.pp("attentions").pp(0), top, groups)?,
            up_blocks,
            conv_norm_out: group_norm(groups, bottom, EPS, d.pp("conv_norm_out"))?,
            conv_out: conv2d(bottom, cfg.out_channels, 3, 1, 1, d.pp("conv_out"))?,
        })
    }

    /// Latents (b, latent_channels, h, w) → images (b, out_channels, f·h, f·w) in about [-1, 1].
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let xs = self.conv_in.forward(&self.post_quant_conv.forward(z)?)?;
        let xs = self.mid_resnets[0].forward(&xs, None)?;
        let xs = self.mid_attention.forward(&xs)?;
        let mut xs = self.mid_resnets[1].forward(&xs, None)?;
        for b in &self.up_blocks {
            xs = b.forward(&xs)?;
        }
        let xs = self.conv_norm_out.forward_silu(&xs)?;
        self.conv_out.forward(&xs)
    }
}
