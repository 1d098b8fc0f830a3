//! diffusers' `ResnetBlock2D` (SiLU, no up/down-sampling) with its convolutions on
//! [`crate::conv::Conv2d`]; keys `norm1`, `conv1`, `time_emb_proj`, `norm2`, `conv2`,
//! `conv_shortcut`.
use candle_core::{Result, Tensor, D};
use candle_nn::{Module, VarBuilder};

use crate::emu::linear::{linear, Linear};

use super::group_norm::{group_norm, GroupNorm};

/// A resnet block's settings (diffusers' constructor arguments).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResnetBlock2DConfig {
    /// Output channels (default: the input's).
    pub out_channels: Option<usize>,
    /// Width of the time embedding projected into the block (None: no time embedding).
    pub temb_channels: Option<usize>,
    pub groups: usize,
    /// Groups of the second norm (default: `groups`).
    pub groups_out: Option<usize>,
    pub eps: f64,
    /// 1×1 shortcut convolution (default: when channels change).
    pub use_in_shortcut: Option<bool>,
    pub output_scale_factor: f64,
}

impl Default for ResnetBlock2DConfig {
    fn default() -> Self {
        Self {
            out_channels: None,
            temb_channels: Some(512),
            groups: 32,
            groups_out: None,
            eps: 1e-6,
            use_in_shortcut: None,
            output_scale_factor: 1.0,
        }
    }
}

use crate::conv::{conv2d, Conv2d};

#[derive(Debug)]
pub struct ResnetBlock2D {
    norm1: GroupNorm,
    conv1: Conv2d,
    norm2: GroupNorm,
    conv2: Conv2d,
    time_emb_proj: Option<Linear>,
    conv_shortcut: Option<Conv2d>,
    output_scale_factor: f64,
}

impl ResnetBlock2D {
    pub fn new(vb: VarBuilder, cin: usize, cfg: ResnetBlock2DConfig) -> Result<Self> {
        let cout = cfg.out_channels.unwrap_or(cin);
        let groups_out = cfg.groups_out.unwrap_or(cfg.groups);
        let conv_shortcut = if cfg.use_in_shortcut.unwrap_or(cin != cout) {
            Some(conv2d(cin, cout, 1, 1, 0, vb.pp("conv_shortcut"))?)
        } else {
            None
        };
        Ok(Self {
            norm1: group_norm(cfg.groups, cin, cfg.eps, vb.pp("norm1"))?,
            conv1: conv2d(cin, cout, 3, 1, 1, vb.pp("conv1"))?,
            norm2: group_norm(groups_out, cout, cfg.eps, vb.pp("norm2"))?,
            conv2: conv2d(cout, cout, 3, 1, 1, vb.pp("conv2"))?,
            time_emb_proj: cfg
                .temb_channels
                .map(|t| linear(t, cout, vb.pp("time_emb_proj")))
                .transpose()?,
            conv_shortcut,
            output_scale_factor: cfg.output_scale_factor,
        })
    }

    /// Every convolution of the block.
    #[cfg(test)]
    pub(crate) fn convs(&self) -> Vec<&Conv2d> {
        [Some(&self.conv1), Some(&self.conv2), self.conv_shortcut.as_ref()]
            .into_iter()
            .flatten()
            .collect()
    }

    /// [`Conv2d::prepare`] for both convolutions at an (h, w) input.
    pub fn prepare(&self, h: usize, w: usize) -> Result<()> {
        self.conv1.prepare(h, w)?;
        self.conv2.prepare(h, w)
    }

    pub fn forward(&self, xs: &Tensor, temb: Option<&Tensor>) -> Result<Tensor> {
        let shortcut = match &self.conv_shortcut {
            Some(c) => c.forward(xs)?,
            None => xs.clone(),
        };
        let ys = self.conv1.forward(&self.norm1.forward_silu(xs)?)?;
        let ys = match (temb, &self.time_emb_proj) {
            // (b, cout) → (b, cout, 1, 1) added to every position.
            (Some(t), Some(p)) => p
                .forward(&candle_nn::ops::silu(t)?)?
                .unsqueeze(D::Minus1)?
                .unsqueeze(D::Minus1)?
                .broadcast_add(&ys)?,
            _ => ys,
        };
        let ys = self.conv2.forward(&self.norm2.forward_silu(&ys)?)?;
        (shortcut + ys)? / self.output_scale_factor
    }
}
