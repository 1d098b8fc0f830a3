//! pytorch-fid 0.3.0's InceptionV3 for FID (`pt_inception-2015-12-05`, the TensorFlow FID graph's
//! weights): torchvision's `Inception3` with the FID blocks `FIDInceptionA/C/E_1/E_2`, read up to
//! the final average pool (pool3, 2048-d). Spec metrics.md §6.2; key names as in the real file
//! (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_mean`, …).
//!
//! Preprocessing happens on the uint8 image, as pytorch-fid's data loader and network do:
//! `ToTensor` (x / 255), `F.interpolate(size=(299, 299), mode='bilinear', align_corners=False)`
//! without antialiasing, then `2x - 1`.
use std::path::Path;

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::VarBuilder;

use crate::conv::{self, Conv2dGemm, Epilogue};
use crate::weights::Weights;

/// BasicConv2d: Conv2d without bias → BatchNorm2d (eps 0.001, running statistics) → ReLU.
/// Kernels may be rectangular (1x7, 3x1, …) with matching padding.
#[derive(Debug)]
struct BasicConv2d {
    weight: Tensor,
    /// BatchNorm as torch's CPU kernel evaluates it: `x * alpha + beta` per channel, with the
    /// float32 terms `alpha = 1 / sqrt(var + eps) * w` and `beta = b - mean * alpha`, held in
    /// float64 so that the multiply-add on the float64 convolution rounds once (to float32), as
    /// torch's fused one does.
    alpha: Vec<f64>,
    beta: Vec<f64>,
    stride: usize,
    pad: (usize, usize),
}

impl BasicConv2d {
    fn new(
        vb: VarBuilder,
        cin: usize,
        cout: usize,
        k: (usize, usize),
        stride: usize,
        pad: (usize, usize),
    ) -> Result<Self> {
        let weight = vb.get((cout, cin, k.0, k.1), "conv.weight")?;
        let bn = vb.pp("bn").set_dtype(DType::F32);
        let (w, b) = (bn.get(cout, "weight")?, bn.get(cout, "bias")?);
        let (mean, var) = (bn.get(cout, "running_mean")?, bn.get(cout, "running_var")?);
        let alpha = ((var + 1e-3)?.sqrt()?.recip()? * w)?;
        let beta = (b - (mean * &alpha)?)?;
        let f64s = |t: Tensor| t.to_dtype(DType::F64)?.to_vec1::<f64>();
        Ok(Self { weight, alpha: f64s(alpha)?, beta: f64s(beta)?, stride, pad })
    }

    fn sq(
        vb: VarBuilder,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Result<Self> {
        Self::new(vb, cin, cout, (k, k), stride, (pad, pad))
    }
}

impl Module for BasicConv2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let conv = Conv2dGemm {
            stride: self.stride,
            padding: self.pad,
            dilation: 1,
            k_chunk: Some(if conv::gemm_enabled() { GEMM_CHUNK_K } else { CHUNK_K }),
            // A float32 product is exact in float64, so only the sum rounds (then to float32).
            epilogue: Epilogue::AffineRelu { alpha: &self.alpha, beta: &self.beta },
        };
        conv.forward(xs, &self.weight)
    }
}

/// Largest reduction length (input channels × kernel area) of one float32 convolution through
/// candle's `conv2d`: the convolution is summed in float64 over input-channel chunks of at most
/// this many terms. One float32 GEMM over the whole reduction (up to 2048 × 1 or 384 × 9 terms)
/// rounds along one long chain, and on some CPUs' kernels that alone exceeds the fixture
/// tolerance against pytorch-fid; short chains added in float64 keep the result within it
/// whatever the kernel's blocking.
const CHUNK_K: usize = 576;

/// The same through the GEMM path ([`crate::conv`]): with 576 or 288 the pool3 features of the
/// fixture's 240x150 image land 1.17x and 1.12x the tolerance off; 192 passes.
const GEMM_CHUNK_K: usize = 192;

/// `avg_pool2d(3, stride 1, padding 1, count_include_pad=False)`: window sums divided by the
/// number of in-image pixels (4 at corners, 6 on edges, 9 inside).
fn avg_pool_3x3_same(xs: &Tensor) -> Result<Tensor> {
    if xs.device().is_cpu() && xs.dtype() == DType::F32 && xs.is_contiguous() && xs.rank() == 4 {
        return xs.apply_op1_no_bwd(&pool::AvgPool3x3Same);
    }
    avg_pool_3x3_same_ops(xs)
}

/// [`avg_pool_3x3_same`] with candle's tensor operations (any device and dtype).
fn avg_pool_3x3_same_ops(xs: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = xs.dims4()?;
    // Window sums in torch's order (row by row); the zero padding adds exact zeros.
    let padded = xs.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?;
    let mut sums = padded.narrow(2, 0, h)?.narrow(3, 0, w)?;
    for (dy, dx) in (0..3).flat_map(|dy| (0..3).map(move |dx| (dy, dx))).skip(1) {
        sums = (sums + padded.narrow(2, dy, h)?.narrow(3, dx, w)?)?;
    }
    let span = |i: usize, n: usize| (3 - usize::from(i == 0) - usize::from(i + 1 == n)) as f32;
    let counts: Vec<f32> =
        (0..h).flat_map(|i| (0..w).map(move |j| span(i, h) * span(j, w))).collect();
    sums.broadcast_div(&Tensor::from_vec(counts, (1, 1, h, w), xs.device())?.to_dtype(xs.dtype())?)
}

/// `max_pool2d(3, stride)` with `pad` rows and columns of −∞ padding: the custom op for
/// contiguous float32 CPU tensors, candle's ops elsewhere. candle pads with zeros, which equals
/// torch's −∞ here because every input is a ReLU output (≥ 0) and each window holds at least
/// one real pixel.
fn max_pool_3x3(xs: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    if xs.device().is_cpu() && xs.dtype() == DType::F32 && xs.is_contiguous() && xs.rank() == 4 {
        return xs.apply_op1_no_bwd(&pool::MaxPool3x3 { stride, pad });
    }
    max_pool_3x3_ops(xs, stride, pad)
}

/// [`max_pool_3x3`] with candle's tensor operations.
fn max_pool_3x3_ops(xs: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    xs.pad_with_zeros(2, pad, pad)?.pad_with_zeros(3, pad, pad)?.max_pool2d_with_stride(3, stride)
}

/// FIDInceptionA (Mixed_5b/5c/5d).
#[derive(Debug)]
struct InceptionA {
    b1x1: BasicConv2d,
    b5x5: [BasicConv2d; 2],
    b3x3dbl: [BasicConv2d; 3],
    pool: BasicConv2d,
}

impl InceptionA {
    fn new(vb: VarBuilder, cin: usize, pool_features: usize) -> Result<Self> {
        Ok(Self {
            b1x1: BasicConv2d::sq(vb.pp("branch1x1"), cin, 64, 1, 1, 0)?,
            b5x5: [
                BasicConv2d::sq(vb.pp("branch5x5_1"), cin, 48, 1, 1, 0)?,
                BasicConv2d::sq(vb.pp("branch5x5_2"), 48, 64, 5, 1, 2)?,
            ],
            b3x3dbl: [
                BasicConv2d::sq(vb.pp("branch3x3dbl_1"), cin, 64, 1, 1, 0)?,
                BasicConv2d::sq(vb.pp("branch3x3dbl_2"), 64, 96, 3, 1, 1)?,
                BasicConv2d::sq(vb.pp("branch3x3dbl_3"), 96, 96, 3, 1, 1)?,
            ],
            pool: BasicConv2d::sq(vb.pp("branch_pool"), cin, pool_features, 1, 1, 0)?,
        })
    }
}

fn chain(convs: &[BasicConv2d], xs: &Tensor) -> Result<Tensor> {
    convs.iter().try_fold(xs.clone(), |x, c| c.forward(&x))
}

impl Module for InceptionA {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let pool = self.pool.forward(&avg_pool_3x3_same(xs)?)?;
        Tensor::cat(
            &[self.b1x1.forward(xs)?, chain(&self.b5x5, xs)?, chain(&self.b3x3dbl, xs)?, pool],
            1,
        )
    }
}

/// InceptionB (Mixed_6a): grid reduction 35 → 17.
#[derive(Debug)]
struct InceptionB {
    b3x3: BasicConv2d,
    b3x3dbl: [BasicConv2d; 3],
}

impl InceptionB {
    fn new(vb: VarBuilder, cin: usize) -> Result<Self> {
        Ok(Self {
            b3x3: BasicConv2d::sq(vb.pp("branch3x3"), cin, 384, 3, 2, 0)?,
            b3x3dbl: [
                BasicConv2d::sq(vb.pp("branch3x3dbl_1"), cin, 64, 1, 1, 0)?,
                BasicConv2d::sq(vb.pp("branch3x3dbl_2"), 64, 96, 3, 1, 1)?,
                BasicConv2d::sq(vb.pp("branch3x3dbl_3"), 96, 96, 3, 2, 0)?,
            ],
        })
    }
}

impl Module for InceptionB {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        Tensor::cat(
            &[self.b3x3.forward(xs)?, chain(&self.b3x3dbl, xs)?, max_pool_3x3(xs, 2, 0)?],
            1,
        )
    }
}

/// FIDInceptionC (Mixed_6b..6e) with factorised 7x7 convolutions.
#[derive(Debug)]
struct InceptionC {
    b1x1: BasicConv2d,
    b7x7: [BasicConv2d; 3],
    b7x7dbl: [BasicConv2d; 5],
    pool: BasicConv2d,
}

impl InceptionC {
    fn new(vb: VarBuilder, cin: usize, c7: usize) -> Result<Self> {
        let row =
            |name: &str, i: usize, o: usize| BasicConv2d::new(vb.pp(name), i, o, (1, 7), 1, (0, 3));
        let col =
            |name: &str, i: usize, o: usize| BasicConv2d::new(vb.pp(name), i, o, (7, 1), 1, (3, 0));
        Ok(Self {
            b1x1: BasicConv2d::sq(vb.pp("branch1x1"), cin, 192, 1, 1, 0)?,
            b7x7: [
                BasicConv2d::sq(vb.pp("branch7x7_1"), cin, c7, 1, 1, 0)?,
                row("branch7x7_2", c7, c7)?,
                col("branch7x7_3", c7, 192)?,
            ],
            b7x7dbl: [
                BasicConv2d::sq(vb.pp("branch7x7dbl_1"), cin, c7, 1, 1, 0)?,
                col("branch7x7dbl_2", c7, c7)?,
                row("branch7x7dbl_3", c7, c7)?,
                col("branch7x7dbl_4", c7, c7)?,
                row("branch7x7dbl_5", c7, 192)?,
            ],
            pool: BasicConv2d::sq(vb.pp("branch_pool"), cin, 192, 1, 1, 0)?,
        })
    }
}

impl Module for InceptionC {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let pool = self.pool.forward(&avg_pool_3x3_same(xs)?)?;
        Tensor::cat(
            &[self.b1x1.forward(xs)?, chain(&self.b7x7, xs)?, chain(&self.b7x7dbl, xs)?, pool],
            1,
        )
    }
}

/// InceptionD (Mixed_7a): grid reduction 17 → 8.
#[derive(Debug)]
struct InceptionD {
    b3x3: [BasicConv2d; 2],
    b7x7x3: [BasicConv2d; 4],
}

impl InceptionD {
    fn new(vb: VarBuilder, cin: usize) -> Result<Self> {
        Ok(Self {
            b3x3: [
                BasicConv2d::sq(vb.pp("branch3x3_1"), cin, 192, 1, 1, 0)?,
                BasicConv2d::sq(vb.pp("branch3x3_2"), 192, 320, 3, 2, 0)?,
            ],
            b7x7x3: [
                BasicConv2d::sq(vb.pp("branch7x7x3_1"), cin, 192, 1, 1, 0)?,
                BasicConv2d::new(vb.pp("branch7x7x3_2"), 192, 192, (1, 7), 1, (0, 3))?,
                BasicConv2d::new(vb.pp("branch7x7x3_3"), 192, 192, (7, 1), 1, (3, 0))?,
                BasicConv2d::sq(vb.pp("branch7x7x3_4"), 192, 192, 3, 2, 0)?,
            ],
        })
    }
}

impl Module for InceptionD {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        Tensor::cat(&[chain(&self.b3x3, xs)?, chain(&self.b7x7x3, xs)?, max_pool_3x3(xs, 2, 0)?], 1)
    }
}

/// FIDInceptionE_1 (Mixed_7b, average pooling without padded pixels) and FIDInceptionE_2
/// (Mixed_7c, max pooling).
#[derive(Debug)]
struct InceptionE {
    b1x1: BasicConv2d,
    b3x3_1: BasicConv2d,
    b3x3_2: [BasicConv2d; 2],
    b3x3dbl: [BasicConv2d; 2],
    b3x3dbl_3: [BasicConv2d; 2],
    pool: BasicConv2d,
    max_pool: bool,
}

impl InceptionE {
    fn new(vb: VarBuilder, cin: usize, max_pool: bool) -> Result<Self> {
        let split = |a: &str, b: &str| -> Result<[BasicConv2d; 2]> {
            Ok([
                BasicConv2d::new(vb.pp(a), 384, 384, (1, 3), 1, (0, 1))?,
                BasicConv2d::new(vb.pp(b), 384, 384, (3, 1), 1, (1, 0))?,
            ])
        };
        Ok(Self {
            b1x1: BasicConv2d::sq(vb.pp("branch1x1"), cin, 320, 1, 1, 0)?,
            b3x3_1: BasicConv2d::sq(vb.pp("branch3x3_1"), cin, 384, 1, 1, 0)?,
            b3x3_2: split("branch3x3_2a", "branch3x3_2b")?,
            b3x3dbl: [
                BasicConv2d::sq(vb.pp("branch3x3dbl_1"), cin, 448, 1, 1, 0)?,
                BasicConv2d::sq(vb.pp("branch3x3dbl_2"), 448, 384, 3, 1, 1)?,
            ],
            b3x3dbl_3: split("branch3x3dbl_3a", "branch3x3dbl_3b")?,
            pool: BasicConv2d::sq(vb.pp("branch_pool"), cin, 192, 1, 1, 0)?,
            max_pool,
        })
    }
}

impl Module for InceptionE {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let a = self.b3x3_1.forward(xs)?;
        let b3x3 = Tensor::cat(&[self.b3x3_2[0].forward(&a)?, self.b3x3_2[1].forward(&a)?], 1)?;
        let d = chain(&self.b3x3dbl, xs)?;
        let b3x3dbl =
            Tensor::cat(&[self.b3x3dbl_3[0].forward(&d)?, self.b3x3dbl_3[1].forward(&d)?], 1)?;
        let pooled = if self.max_pool { max_pool_3x3(xs, 1, 1)? } else { avg_pool_3x3_same(xs)? };
        Tensor::cat(&[self.b1x1.forward(xs)?, b3x3, b3x3dbl, self.pool.forward(&pooled)?], 1)
    }
}

/// The four wrapper blocks of pytorch-fid's `InceptionV3`; their spatial means are the features
/// for `dims` = 64, 192, 768 and 2048 (pool3).
#[derive(Debug)]
pub struct FidInception {
    stem0: [BasicConv2d; 3],
    stem1: [BasicConv2d; 2],
    mixed5: [InceptionA; 3],
    mixed6a: InceptionB,
    mixed6: [InceptionC; 4],
    mixed7a: InceptionD,
    mixed7: [InceptionE; 2],
}

/// Images per forward pass inside [`FidInception::pool3`]: the activations of a few images
/// (about 30 MB each at the stem) are reused from pass to pass while a whole batch of 50 would
/// touch about 1 GB of fresh pages, which the kernel must zero on every batch.
const SUB_BATCH: usize = 4;

/// Side of the network input.
pub const INPUT_SIZE: usize = 299;

impl FidInception {
    pub fn new(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            stem0: [
                BasicConv2d::sq(vb.pp("Conv2d_1a_3x3"), 3, 32, 3, 2, 0)?,
                BasicConv2d::sq(vb.pp("Conv2d_2a_3x3"), 32, 32, 3, 1, 0)?,
                BasicConv2d::sq(vb.pp("Conv2d_2b_3x3"), 32, 64, 3, 1, 1)?,
            ],
            stem1: [
                BasicConv2d::sq(vb.pp("Conv2d_3b_1x1"), 64, 80, 1, 1, 0)?,
                BasicConv2d::sq(vb.pp("Conv2d_4a_3x3"), 80, 192, 3, 1, 0)?,
            ],
            mixed5: [
                InceptionA::new(vb.pp("Mixed_5b"), 192, 32)?,
                InceptionA::new(vb.pp("Mixed_5c"), 256, 64)?,
                InceptionA::new(vb.pp("Mixed_5d"), 288, 64)?,
            ],
            mixed6a: InceptionB::new(vb.pp("Mixed_6a"), 288)?,
            mixed6: [
                InceptionC::new(vb.pp("Mixed_6b"), 768, 128)?,
                InceptionC::new(vb.pp("Mixed_6c"), 768, 160)?,
                InceptionC::new(vb.pp("Mixed_6d"), 768, 160)?,
                InceptionC::new(vb.pp("Mixed_6e"), 768, 192)?,
            ],
            mixed7a: InceptionD::new(vb.pp("Mixed_7a"), 768)?,
            mixed7: [
                InceptionE::new(vb.pp("Mixed_7b"), 1280, false)?,
                InceptionE::new(vb.pp("Mixed_7c"), 2048, true)?,
            ],
        })
    }

    /// Loads the real `pt_inception-2015-12-05-6726825d.pth` or a safetensors copy, strictly:
    /// only `fc.*` (the unused classifier) and BatchNorm `num_batches_tracked` counters may be
    /// left over.
    pub fn load(path: &Path, device: &Device) -> crate::Result<Self> {
        let w = Weights::open(path)?;
        let net =
            Self::new(w.var_builder(DType::F32, device)).map_err(|e| w.construction_error(e))?;
        w.finish(|k| k.starts_with("fc.") || k.ends_with(".num_batches_tracked"))?;
        Ok(net)
    }

    /// The four wrapper-block outputs for a preprocessed batch (n, 3, 299, 299):
    /// (n, 64, 73, 73), (n, 192, 35, 35), (n, 768, 17, 17), (n, 2048, 8, 8).
    pub fn blocks(&self, xs: &Tensor) -> Result<[Tensor; 4]> {
        let b0 = max_pool_3x3(&chain(&self.stem0, xs)?, 2, 0)?;
        let b1 = max_pool_3x3(&chain(&self.stem1, &b0)?, 2, 0)?;
        let mut x = b1.clone();
        for m in &self.mixed5 {
            x = m.forward(&x)?;
        }
        x = self.mixed6a.forward(&x)?;
        for m in &self.mixed6 {
            x = m.forward(&x)?;
        }
        let b2 = x.clone();
        x = self.mixed7a.forward(&x)?;
        for m in &self.mixed7 {
            x = m.forward(&x)?;
        }
        Ok([b0, b1, b2, x])
    }

    /// pool3 features (n, 2048) of a preprocessed batch, computed [`SUB_BATCH`] images at a time
    /// (images are independent: the result is the same for any split).
    pub fn pool3(&self, xs: &Tensor) -> Result<Tensor> {
        let n = xs.dim(0)?;
        let parts = (0..n)
            .step_by(SUB_BATCH)
            .map(|s| {
                let [.., b3] = self.blocks(&xs.narrow(0, s, SUB_BATCH.min(n - s))?)?;
                b3.mean(D::Minus1)?.mean(D::Minus1)
            })
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&parts, 0)
    }
}

/// Source index and weights of one output coordinate of torch's CPU bilinear resize
/// (`align_corners=False`, float32 arithmetic as `compute_indices_weights_linear`). The source
/// index `scale * (o + 0.5) - 0.5` is a fused multiply-add, as in torch's AVX2 kernel build
/// (without it values are up to 7.5e-6 off); with the fused interpolation in [`preprocess`] the
/// fixture's network inputs are reproduced bit for bit.
fn bilinear_taps(in_size: usize, out_size: usize) -> Vec<(usize, usize, f32, f32)> {
    let scale = in_size as f32 / out_size as f32;
    (0..out_size)
        .map(|o| {
            let src = scale.mul_add(o as f32 + 0.5, -0.5).max(0.0);
            let i0 = src as usize;
            let i1 = if i0 + 1 < in_size { i0 + 1 } else { i0 };
            let l1 = (src - i0 as f32).clamp(0.0, 1.0);
            (i0, i1, 1.0 - l1, l1)
        })
        .collect()
}

/// pytorch-fid's network input for one uint8 RGB image (HWC, `width` x `height`):
/// x / 255, bilinear resize to 299 x 299 (`align_corners=False`, no antialias), `2x - 1`.
/// Returns CHW float32 values (3 · 299 · 299).
pub fn preprocess(rgb: &[u8], width: usize, height: usize) -> Vec<f32> {
    let n = INPUT_SIZE;
    let (ys, xs) = (bilinear_taps(height, n), bilinear_taps(width, n));
    let px = |y: usize, x: usize, c: usize| rgb[(y * width + x) * 3 + c] as f32 / 255.0;
    let mut out = vec![0f32; 3 * n * n];
    for c in 0..3 {
        for (oy, &(y0, y1, h0, h1)) in ys.iter().enumerate() {
            for (ox, &(x0, x1, w0, w1)) in xs.iter().enumerate() {
                // torch's `Interpolate<2>`: each row along x, then the rows along y, each as
                // `t0 * w0 + t1 * w1`, which torch's AVX2 build contracts to `fma(t0, w0, t1 * w1)`.
                let lerp = |t0: f32, w0: f32, t1: f32, w1: f32| t0.mul_add(w0, t1 * w1);
                let r0 = lerp(px(y0, x0, c), w0, px(y0, x1, c), w1);
                let r1 = lerp(px(y1, x0, c), w0, px(y1, x1, c), w1);
                let v = lerp(r0, h0, r1, h1);
                out[(c * n + oy) * n + ox] = 2.0 * v - 1.0;
            }
        }
    }
    out
}

/// A batch of preprocessed images as a (n, 3, 299, 299) tensor.
pub fn batch_tensor(images: &[Vec<f32>], device: &Device) -> Result<Tensor> {
    let n = images.len();
    let flat: Vec<f32> = images.concat();
    Tensor::from_vec(flat, (n, 3, INPUT_SIZE, INPUT_SIZE), device)
}

mod pool;
#[cfg(test)]
mod tests;
