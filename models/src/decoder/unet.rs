//! diffusers 0.15.1 `UNet2DConditionModel`, configured from `unet/config.json`: resnet blocks
//! (`resnet.rs`), the time embedding and the down/up/mid blocks are assembled here around [`Transformer2D`] (exact GEGLU) so that any block pattern of the
//! config (cross-attention or plain, any width, heads per block) and an optional
//! `encoder_hid_proj` are supported.
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Conv2dConfig, VarBuilder};

use crate::emu::linear::{linear, Linear};

use super::group_norm::{group_norm, GroupNorm};

use super::resnet::{ResnetBlock2D, ResnetBlock2DConfig};
use crate::conv::{conv2d, Conv2d};

use super::config::UNetConfig;
use super::transformer::Transformer2D;

/// diffusers `get_timestep_embedding` in float32 as torch computes it: frequencies
/// `exp(-ln(10000) · i / (half - shift))` (a true division, not a reciprocal multiply), then
/// `[cos, sin]` of `t · freq` when `flip_sin_to_cos`, else `[sin, cos]`.
#[derive(Debug)]
struct Timesteps {
    freqs: Vec<f32>,
    flip_sin_to_cos: bool,
}

impl Timesteps {
    fn new(channels: usize, flip_sin_to_cos: bool, shift: f64) -> Self {
        let half = channels / 2;
        let ln = -(10000f64.ln()) as f32;
        let freqs =
            (0..half).map(|i| ((ln * i as f32) / (half as f64 - shift) as f32).exp()).collect();
        Self { freqs, flip_sin_to_cos }
    }

    /// (batch, channels) for one timestep.
    fn forward(&self, t: usize, batch: usize, device: &candle_core::Device) -> Result<Tensor> {
        let args: Vec<f32> = self.freqs.iter().map(|f| t as f32 * f).collect();
        let (sin, cos): (Vec<f32>, Vec<f32>) = args.iter().map(|a| (a.sin(), a.cos())).unzip();
        let row = if self.flip_sin_to_cos { [cos, sin].concat() } else { [sin, cos].concat() };
        let n = row.len();
        Tensor::from_vec(row, (1, n), device)?.repeat((batch, 1))
    }
}

const PAD1: Conv2dConfig =
    Conv2dConfig { padding: 1, stride: 1, dilation: 1, groups: 1, cudnn_fwd_algo: None };

/// A down or up block: resnets, each optionally followed by a spatial transformer, then an
/// optional down/up-sampling convolution.
#[derive(Debug)]
struct Block {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<Transformer2D>,
    sampler: Option<Conv2d>,
}

struct BlockSpec {
    channels: usize,
    heads: usize,
    cross_attn: bool,
}

impl Block {
    /// `resnet_in[j]` is the input width of resnet j.
    fn new(
        vb: VarBuilder,
        cfg: &UNetConfig,
        spec: &BlockSpec,
        resnet_in: &[usize],
        sampler: Option<Conv2dConfig>,
        scale: f64,
    ) -> Result<Self> {
        let c = spec.channels;
        let rcfg = ResnetBlock2DConfig {
            out_channels: Some(c),
            temb_channels: Some(4 * cfg.block_out_channels[0]),
            groups: cfg.norm_num_groups,
            eps: cfg.norm_eps,
            output_scale_factor: scale,
            ..Default::default()
        };
        let resnets = resnet_in
            .iter()
            .enumerate()
            .map(|(j, &cin)| ResnetBlock2D::new(vb.pp(format!("resnets.{j}")), cin, rcfg))
            .collect::<Result<Vec<_>>>()?;
        let n_attn = if spec.cross_attn { resnets.len() } else { 0 };
        let context_dim = cfg.cross_attention_dim;
        let attentions = (0..n_attn)
            .map(|j| {
                Transformer2D::new(
                    vb.pp(format!("attentions.{j}")),
                    c,
                    spec.heads,
                    cfg.norm_num_groups,
                    context_dim,
                    cfg.use_linear_projection,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let sampler = match sampler {
            Some(sc) if sc.stride == 2 => {
                Some(conv2d(c, c, 3, sc.stride, sc.padding, vb.pp("downsamplers.0.conv"))?)
            }
            Some(sc) => Some(conv2d(c, c, 3, sc.stride, sc.padding, vb.pp("upsamplers.0.conv"))?),
            None => None,
        };
        Ok(Self { resnets, attentions, sampler })
    }

    fn layer(&self, j: usize, xs: &Tensor, temb: &Tensor, context: &Tensor) -> Result<Tensor> {
        let xs = self.resnets[j].forward(xs, Some(temb))?;
        match self.attentions.get(j) {
            Some(a) => a.forward(&xs, context),
            None => Ok(xs),
        }
    }

    /// Down block: returns the output and the skip tensors (one per layer, plus the downsampled).
    fn down(
        &self,
        xs: &Tensor,
        temb: &Tensor,
        context: &Tensor,
        skips: &mut Vec<Tensor>,
    ) -> Result<Tensor> {
        let mut xs = xs.clone();
        for j in 0..self.resnets.len() {
            xs = self.layer(j, &xs, temb, context)?;
            skips.push(xs.clone());
        }
        if let Some(conv) = &self.sampler {
            xs = conv.forward(&xs)?;
            skips.push(xs.clone());
        }
        Ok(xs)
    }

    /// Up block: each layer concatenates the last remaining skip on the channel axis.
    fn up(
        &self,
        xs: &Tensor,
        temb: &Tensor,
        context: &Tensor,
        skips: &mut Vec<Tensor>,
        size: Option<(usize, usize)>,
    ) -> Result<Tensor> {
        let mut xs = xs.clone();
        for j in 0..self.resnets.len() {
            let skip = skips
                .pop()
                .ok_or_else(|| candle_core::Error::Msg("UNet skip connections exhausted".into()))?;
            xs = Tensor::cat(&[&xs, &skip], 1)?;
            xs = self.layer(j, &xs, temb, context)?;
        }
        if let Some(conv) = &self.sampler {
            let (_, _, h, w) = xs.dims4()?;
            let (h, w) = size.unwrap_or((2 * h, 2 * w));
            xs = conv.forward(&xs.upsample_nearest2d(h, w)?)?;
        }
        Ok(xs)
    }
}

/// The mid block: resnet, transformer, resnet.
#[derive(Debug)]
struct MidBlock {
    resnet0: ResnetBlock2D,
    attention: Transformer2D,
    resnet1: ResnetBlock2D,
}

#[derive(Debug)]
pub struct UNet2DConditionModel {
    conv_in: Conv2d,
    time_proj: Timesteps,
    time_embedding: TimestepEmbedding,
    encoder_hid_proj: Option<Linear>,
    down_blocks: Vec<Block>,
    mid_block: MidBlock,
    up_blocks: Vec<Block>,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
    cfg: UNetConfig,
}

impl UNet2DConditionModel {
    pub fn new(vb: VarBuilder, cfg: &UNetConfig) -> Result<Self> {
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let c0 = ch[0];
        let conv_in = conv2d(cfg.in_channels, c0, 3, 1, 1, vb.pp("conv_in"))?;
        let time_proj = Timesteps::new(c0, cfg.flip_sin_to_cos, cfg.freq_shift);
        let time_embedding = TimestepEmbedding::new(vb.pp("time_embedding"), c0, 4 * c0)?;
        let encoder_hid_proj = match cfg.encoder_hid_dim {
            Some(d) => Some(linear(d, cfg.cross_attention_dim, vb.pp("encoder_hid_proj"))?),
            None => None,
        };
        let spec = |i: usize| BlockSpec {
            channels: ch[i],
            heads: cfg.attention_head_dim.get(i),
            cross_attn: cfg.cross_attn(i),
        };
        let scale = cfg.resnet_out_scale_factor;
        let down_blocks = (0..n)
            .map(|i| {
                let cin = if i == 0 { c0 } else { ch[i - 1] };
                let resnet_in: Vec<usize> =
                    (0..cfg.layers_per_block).map(|j| if j == 0 { cin } else { ch[i] }).collect();
                let down = (i + 1 < n).then_some(Conv2dConfig {
                    stride: 2,
                    padding: cfg.downsample_padding,
                    ..PAD1
                });
                Block::new(
                    vb.pp(format!("down_blocks.{i}")),
                    cfg,
                    &spec(i),
                    &resnet_in,
                    down,
                    scale,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let last = spec(n - 1);
        let mid_cfg = ResnetBlock2DConfig {
            out_channels: Some(last.channels),
            temb_channels: Some(4 * c0),
            groups: cfg.norm_num_groups,
            eps: cfg.norm_eps,
            output_scale_factor: cfg.mid_block_scale_factor,
            ..Default::default()
        };
        let mvb = vb.pp("mid_block");
        let mid_block = MidBlock {
            resnet0: ResnetBlock2D::new(mvb.pp("resnets.0"), last.channels, mid_cfg)?,
            attention: Transformer2D::new(
                mvb.pp("attentions.0"),
                last.channels,
                last.heads,
                cfg.norm_num_groups,
                cfg.cross_attention_dim,
                cfg.use_linear_projection,
            )?,
            resnet1: ResnetBlock2D::new(mvb.pp("resnets.1"), last.channels, mid_cfg)?,
        };
        // Up block i mirrors down block n-1-i; resnet j takes the previous output plus a skip.
        let up_blocks = (0..n)
            .map(|i| {
                let out = ch[n - 1 - i];
                let prev = if i == 0 { ch[n - 1] } else { ch[n - i] };
                let skip_last = ch[(n - 1 - i).saturating_sub(1)];
                let layers = cfg.layers_per_block + 1;
                let resnet_in: Vec<usize> = (0..layers)
                    .map(|j| {
                        (if j == 0 { prev } else { out })
                            + if j + 1 == layers { skip_last } else { out }
                    })
                    .collect();
                let up = (i + 1 < n).then_some(PAD1);
                Block::new(
                    vb.pp(format!("up_blocks.{i}")),
                    cfg,
                    &spec(n - 1 - i),
                    &resnet_in,
                    up,
                    scale,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            conv_in,
            time_proj,
            time_embedding,
            encoder_hid_proj,
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out: group_norm(
                cfg.norm_num_groups,
                c0,
                cfg.norm_eps,
                vb.pp("conv_norm_out"),
            )?,
            conv_out: conv2d(c0, cfg.out_channels, 3, 1, 1, vb.pp("conv_out"))?,
            cfg: cfg.clone(),
        })
    }

    /// Sinusoidal projection of the timestep, (b, c0), and the embedding, (b, 4·c0).
    pub fn time_embed(
        &self,
        timestep: usize,
        batch: usize,
        dtype: DType,
        device: &candle_core::Device,
    ) -> Result<(Tensor, Tensor)> {
        let proj = self.time_proj.forward(timestep, batch, device)?.to_dtype(dtype)?;
        let emb = self.time_embedding.forward(&proj)?;
        Ok((proj, emb))
    }

    /// Every convolution, in a fixed order (tests).
    #[cfg(test)]
    pub(crate) fn convs(&self) -> Vec<&Conv2d> {
        let mut out = vec![&self.conv_in];
        for b in self.down_blocks.iter().chain(&self.up_blocks) {
            out.extend(b.resnets.iter().flat_map(ResnetBlock2D::convs));
            out.extend(b.sampler.as_ref());
        }
        out.extend(self.mid_block.resnet0.convs());
        out.extend(self.mid_block.resnet1.convs());
        out.push(&self.conv_out);
        out
    }

    /// Makes every weight transform that a forward at (h, w) latents uses (the Winograd
    /// convolutions', [`Conv2d::prepare`]) now rather than in the first forward.
    pub fn prepare(&self, h: usize, w: usize) -> Result<()> {
        // Each down block's resnets run at its level's size; its downsampler (3×3, stride 2,
        // padding 1) gives ceil(size / 2).
        let mut sizes = vec![(h, w)];
        for block in &self.down_blocks {
            let &(bh, bw) = sizes.last().unwrap_or(&(h, w));
            for r in &block.resnets {
                r.prepare(bh, bw)?;
            }
            if block.sampler.is_some() {
                sizes.push((bh.div_ceil(2), bw.div_ceil(2)));
            }
        }
        let &(mh, mw) = sizes.last().unwrap_or(&(h, w));
        self.mid_block.resnet0.prepare(mh, mw)?;
        self.mid_block.resnet1.prepare(mh, mw)?;
        // Up blocks climb the same sizes back; an upsampler's convolution runs at the next one.
        let mut level = sizes.len() - 1;
        for block in &self.up_blocks {
            let (bh, bw) = sizes[level];
            for r in &block.resnets {
                r.prepare(bh, bw)?;
            }
            if let Some(conv) = &block.sampler {
                level = level.saturating_sub(1);
                let (uh, uw) = sizes[level];
                conv.prepare(uh, uw)?;
            }
        }
        Ok(())
    }

    /// Noise prediction for `xs` (b, 4, h, w) at `timestep`, conditioned on `context`
    /// (b, tokens, cross_attention_dim, or encoder_hid_dim with a projection).
    pub fn forward(&self, xs: &Tensor, timestep: usize, context: &Tensor) -> Result<Tensor> {
        let (b, _, h, w) = xs.dims4()?;
        let context = match &self.encoder_hid_proj {
            Some(p) => p.forward(context)?,
            None => context.clone(),
        };
        let xs = if self.cfg.center_input_sample { ((xs * 2.0)? - 1.0)? } else { xs.clone() };
        let (_, temb) = self.time_embed(timestep, b, xs.dtype(), xs.device())?;
        let mut xs = self.conv_in.forward(&xs)?;
        let mut skips = vec![xs.clone()];
        for block in &self.down_blocks {
            xs = block.down(&xs, &temb, &context, &mut skips)?;
        }
        let m = &self.mid_block;
        xs = m.resnet0.forward(&xs, Some(&temb))?;
        xs = m.attention.forward(&xs, &context)?;
        xs = m.resnet1.forward(&xs, Some(&temb))?;
        // Latent sides that are not multiples of 2^(n-1) upsample to the skip's size.
        let factor = 1 << (self.up_blocks.len() - 1);
        let forward_size = h % factor != 0 || w % factor != 0;
        let n_up = self.up_blocks.len();
        for (i, block) in self.up_blocks.iter().enumerate() {
            let keep = skips.len() - block.resnets.len();
            let size = match (forward_size && i + 1 < n_up, skips.get(keep.wrapping_sub(1))) {
                (true, Some(s)) => Some((s.dim(2)?, s.dim(3)?)),
                _ => None,
            };
            xs = block.up(&xs, &temb, &context, &mut skips, size)?;
        }
        let xs = self.conv_norm_out.forward_silu(&xs)?;
        self.conv_out.forward(&xs) // (b, 4, h, w)
    }
}

/// diffusers' `TimestepEmbedding`: `linear_1` → SiLU → `linear_2`.
#[derive(Debug)]
pub struct TimestepEmbedding {
    linear_1: Linear,
    linear_2: Linear,
}

impl TimestepEmbedding {
    pub fn new(vb: VarBuilder, channels: usize, time_embed_dim: usize) -> Result<Self> {
        Ok(Self {
            linear_1: linear(channels, time_embed_dim, vb.pp("linear_1"))?,
            linear_2: linear(time_embed_dim, time_embed_dim, vb.pp("linear_2"))?,
        })
    }

    /// (b, channels) → (b, time_embed_dim).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let xs = candle_nn::ops::silu(&self.linear_1.forward(xs)?)?;
        self.linear_2.forward(&xs)
    }
}
