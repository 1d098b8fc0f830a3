//! `GroupNorm` (diffusers/torch `nn.GroupNorm`, affine), optionally followed by SiLU, fused into
//! one pass over the output for contiguous f32 tensors on the CPU.
//!
//! candle_nn's `GroupNorm` is eight tensor operations (mean, subtract, square, mean, divide,
//! scale, shift, each into fresh memory) and the SiLU after it a ninth on one thread; here each
//! (batch, group) is a rayon task that reads its block twice for the statistics (f64 sums) and
//! writes `(x − mean)·scale + β` (per channel `scale = γ / √(var + eps)`), with the SiLU applied
//! on the way. Other dtypes and devices take candle's path.
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Result, Shape, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use crate::attention::exp_f32;

/// `{prefix}.weight` and `{prefix}.bias` (channels,), `groups` groups, `eps`.
#[derive(Debug, Clone)]
pub struct GroupNorm {
    candle: candle_nn::GroupNorm,
    /// γ and β read once as f32 slices, for the fused path (f32 weights only).
    affine: Option<Affine>,
}

#[derive(Debug, Clone)]
struct Affine {
    weight: Vec<f32>,
    bias: Vec<f32>,
    groups: usize,
    eps: f64,
}

/// Loads a `GroupNorm` of `channels` channels in `groups` groups.
pub fn group_norm(groups: usize, channels: usize, eps: f64, vb: VarBuilder) -> Result<GroupNorm> {
    GroupNorm::new(vb.get(channels, "weight")?, vb.get(channels, "bias")?, groups, eps)
}

impl GroupNorm {
    /// From γ and β (channels,).
    pub fn new(weight: Tensor, bias: Tensor, groups: usize, eps: f64) -> Result<Self> {
        let channels = weight.dim(0)?;
        let affine = if weight.dtype() == DType::F32 && bias.dtype() == DType::F32 {
            Some(Affine { weight: weight.to_vec1()?, bias: bias.to_vec1()?, groups, eps })
        } else {
            None
        };
        let candle = candle_nn::GroupNorm::new(weight, bias, channels, groups, eps)?;
        Ok(GroupNorm { candle, affine })
    }

    /// `silu(group_norm(x))` for x (b, c, …).
    pub fn forward_silu(&self, xs: &Tensor) -> Result<Tensor> {
        self.apply(xs, true)
    }

    fn apply(&self, xs: &Tensor, silu: bool) -> Result<Tensor> {
        match &self.affine {
            Some(affine) if xs.dtype() == DType::F32 && xs.device().is_cpu() => {
                xs.contiguous()?.apply_op1_no_bwd(&FusedGroupNorm { affine, silu })
            }
            _ => {
                let ys = self.candle.forward(xs)?;
                if silu {
                    candle_nn::ops::silu(&ys)
                } else {
                    Ok(ys)
                }
            }
        }
    }
}

impl Module for GroupNorm {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.apply(xs, false)
    }
}

struct FusedGroupNorm<'a> {
    affine: &'a Affine,
    silu: bool,
}

impl CustomOp1 for FusedGroupNorm<'_> {
    fn name(&self) -> &'static str {
        "group-norm-f32"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = crate::contiguous_f32(storage, layout, self.name())?;
        let Affine { weight, bias, groups, eps } = self.affine;
        let dims = layout.dims();
        let channels = weight.len();
        if dims.len() < 3 || dims[1] != channels || !channels.is_multiple_of(*groups) {
            candle_core::bail!(
                "group-norm-f32: input {dims:?} does not fit {channels} channels in {groups} groups"
            )
        }
        let per_channel: usize = dims[2..].iter().product();
        let cpg = channels / groups;
        let block = cpg * per_channel;
        let mut out = vec![0f32; src.len()];
        if block > 0 {
            out.par_chunks_mut(block).zip(src.par_chunks(block)).enumerate().for_each(
                |(i, (dst, x))| {
                    let c0 = (i % groups) * cpg;
                    let g = Group {
                        weight: &weight[c0..c0 + cpg],
                        bias: &bias[c0..c0 + cpg],
                        eps: *eps,
                        silu: self.silu,
                    };
                    group(&g, x, dst)
                },
            );
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// One group's channels' affine parameters and the settings.
struct Group<'a> {
    weight: &'a [f32],
    bias: &'a [f32],
    eps: f64,
    silu: bool,
}

crate::simd::widest! {
    /// Normalises one (batch, group) block `x` (its channels one after another) into `d`, with
    /// the widest vector code this CPU runs.
    fn group(g: &Group, x: &[f32], d: &mut [f32]) {
        group_loop(g, x, d)
    }
}

/// Mean and biased variance in f64 (eight lanes, two passes), then per channel
/// `y = (x − mean)·scale + β` in f32 (`scale = γ / √(var + eps)`) and `y / (1 + e^(−y))` when
/// `silu`.
#[inline(always)]
fn group_loop(g: &Group, x: &[f32], d: &mut [f32]) {
    let n = x.len().max(1) as f64;
    let mut acc = [0f64; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += f64::from(*v);
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|v| f64::from(*v)).sum();
    let mean = (acc.iter().sum::<f64>() + tail) / n;
    let mut acc = [0f64; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            let dv = f64::from(*v) - mean;
            *a += dv * dv;
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|v| (f64::from(*v) - mean).powi(2)).sum();
    let var = (acc.iter().sum::<f64>() + tail) / n;
    let inv = 1.0 / (var + g.eps).sqrt();
    let per_channel = x.len() / g.weight.len().max(1);
    if per_channel == 0 {
        return;
    }
    for (j, (dc, xc)) in d.chunks_mut(per_channel).zip(x.chunks(per_channel)).enumerate() {
        let (scale, shift, m) = ((f64::from(g.weight[j]) * inv) as f32, g.bias[j], mean as f32);
        if g.silu {
            for (o, v) in dc.iter_mut().zip(xc) {
                let y = (v - m).mul_add(scale, shift);
                *o = y / (1.0 + exp_f32(-y));
            }
        } else {
            for (o, v) in dc.iter_mut().zip(xc) {
                *o = (v - m).mul_add(scale, shift);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        crate::test_data::uniform(n, seed, -2.0, 4.0)
    }

    fn norm(channels: usize, groups: usize) -> Result<GroupNorm> {
        let dev = Device::Cpu;
        let weight = Tensor::from_vec(data(channels, 7), channels, &dev)?;
        let bias = Tensor::from_vec(data(channels, 8), channels, &dev)?;
        GroupNorm::new(weight, bias, groups, 1e-5)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
        let (a, b) = (a.flatten_all()?.to_vec1::<f32>()?, b.flatten_all()?.to_vec1::<f32>()?);
        Ok(a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max))
    }

    #[test]
    fn matches_candle_group_norm_and_silu() -> Result<()> {
        let dev = Device::Cpu;
        for (b, c, h, w, groups) in [(2, 64, 9, 7, 32), (1, 12, 4, 4, 3), (3, 8, 1, 1, 8)] {
            let gn = norm(c, groups)?;
            let x = Tensor::from_vec(data(b * c * h * w, 3), (b, c, h, w), &dev)?;
            let want = gn.candle.forward(&x)?;
            let d = max_diff(&gn.forward(&x)?, &want)?;
            assert!(d <= 2e-6, "({b}, {c}, {h}, {w}) / {groups}: group norm off by {d}");
            let d = max_diff(&gn.forward_silu(&x)?, &candle_nn::ops::silu(&want)?)?;
            assert!(d <= 2e-6, "({b}, {c}, {h}, {w}) / {groups}: + silu off by {d}");
        }
        // (b, c, n) inputs (the VAE attention's flattened form) and strided inputs.
        let gn = norm(16, 4)?;
        let x = Tensor::from_vec(data(2 * 16 * 10, 5), (2, 10, 16), &dev)?.transpose(1, 2)?;
        let d = max_diff(&gn.forward(&x)?, &gn.candle.forward(&x)?)?;
        assert!(d <= 2e-6, "strided: off by {d}");
        Ok(())
    }

    #[test]
    fn wrong_channels_are_an_error() -> Result<()> {
        let gn = norm(16, 4)?;
        let x = Tensor::zeros((1, 8, 2, 2), DType::F32, &Device::Cpu)?;
        assert!(gn.forward(&x).is_err());
        Ok(())
    }
}
