//! 2-D convolution on the CPU as im2col + GEMM (float32, NCHW), a candle [`CustomOp2`].
//!
//! Candle 0.11's CPU `conv2d` runs a tiled direct convolution with scalar gathers; here the
//! patches of a block of output positions are copied into a column buffer (implicit zero
//! padding) and multiplied by the weight matrix with the `gemm` crate, the kernel behind candle's
//! own matmul. 1×1 stride-1 convolutions skip the copy: the input is already the column matrix.
//! Blocks of output positions are spread over the rayon pool; column and accumulator buffers are
//! per-thread and reused from call to call, so the hot loop allocates nothing.
//!
//! Other devices and dtypes, groups and non-contiguous weights fall back to candle's `conv2d`;
//! so does everything when `EMU_EVAL_CONV=candle` is set (for A/B benchmarks).
use std::cell::RefCell;
use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

mod layer;
pub mod winograd;
pub use layer::{conv2d, Conv2d};

/// Output positions (columns of the GEMM) per block.
const BLOCK_COLS: usize = 512;

/// False when the environment sets `EMU_EVAL_CONV=candle`: every convolution then runs
/// through candle's `conv2d`, as before this module existed.
pub fn gemm_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("EMU_EVAL_CONV").map_or(true, |v| v != "candle"))
}

/// False when the environment sets `EMU_EVAL_CONV=candle` or `EMU_EVAL_CONV=im2col`: the
/// decoder's 3×3 convolutions then take im2col + GEMM instead of [`winograd`] (A/B benchmarks).
pub fn winograd_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        gemm_enabled() && std::env::var("EMU_EVAL_CONV").map_or(true, |v| v != "im2col")
    })
}

/// What is applied to each output value after the reduction.
#[derive(Debug, Clone, Copy)]
pub enum Epilogue<'a> {
    /// The raw convolution.
    None,
    /// Plus a per-output-channel bias.
    Bias(&'a [f32]),
    /// `max(0, f32(acc * alpha + beta))` per output channel in float64 (a folded BatchNorm, then
    /// ReLU), with `acc` the float64 sum of float32 partial convolutions over input-channel
    /// chunks (see [`Conv2dGemm::k_chunk`]).
    AffineRelu { alpha: &'a [f64], beta: &'a [f64] },
}

/// A convolution `(n, cin, h, w) * (cout, cin, kh, kw) -> (n, cout, oh, ow)`, groups = 1.
#[derive(Debug, Clone, Copy)]
pub struct Conv2dGemm<'a> {
    pub stride: usize,
    /// Zero padding (rows, columns) on both sides.
    pub padding: (usize, usize),
    pub dilation: usize,
    /// With [`Epilogue::AffineRelu`]: the largest reduction length (cin × kh × kw) summed in one
    /// float32 GEMM; whole input-channel chunks of at most this many terms are added in float64.
    pub k_chunk: Option<usize>,
    pub epilogue: Epilogue<'a>,
}

impl<'a> Conv2dGemm<'a> {
    pub fn new(stride: usize, padding: (usize, usize), dilation: usize) -> Self {
        Self { stride, padding, dilation, k_chunk: None, epilogue: Epilogue::None }
    }

    /// The convolution of `xs` with `weight`: the GEMM path for contiguous float32 CPU tensors,
    /// candle's `conv2d` (with an explicit epilogue) elsewhere.
    pub fn forward(&self, xs: &Tensor, weight: &Tensor) -> Result<Tensor> {
        if self.accepts(xs, weight)? {
            xs.apply_op2_no_bwd(weight, self)
        } else {
            self.fallback(xs, weight)
        }
    }

    /// Whether the GEMM path takes these operands (contiguous float32 CPU tensors, groups 1).
    pub fn accepts(&self, xs: &Tensor, weight: &Tensor) -> Result<bool> {
        Ok(gemm_enabled()
            && xs.device().is_cpu()
            && xs.dtype() == DType::F32
            && weight.dtype() == DType::F32
            && xs.is_contiguous()
            && weight.is_contiguous()
            && xs.rank() == 4
            && weight.rank() == 4
            && xs.dim(1)? == weight.dim(1)?)
    }

    /// The same computation through candle's own operations.
    pub fn fallback(&self, xs: &Tensor, weight: &Tensor) -> Result<Tensor> {
        let (ph, pw) = self.padding;
        let xs = xs.pad_with_zeros(2, ph, ph)?.pad_with_zeros(3, pw, pw)?;
        let cout = weight.dim(0)?;
        match self.epilogue {
            Epilogue::None => xs.conv2d(weight, 0, self.stride, self.dilation, 1),
            Epilogue::Bias(b) => {
                let b =
                    Tensor::from_slice(b, (1, cout, 1, 1), xs.device())?.to_dtype(xs.dtype())?;
                xs.conv2d(weight, 0, self.stride, self.dilation, 1)?.broadcast_add(&b)
            }
            Epilogue::AffineRelu { alpha, beta } => {
                let cin = weight.dim(1)?;
                let area = weight.dim(2)? * weight.dim(3)?;
                let step = self.k_chunk.map_or(cin, |k| (k / area).max(1));
                let mut sum: Option<Tensor> = None;
                for start in (0..cin).step_by(step) {
                    let n = step.min(cin - start);
                    let w = weight.narrow(1, start, n)?.contiguous()?;
                    let part =
                        xs.narrow(1, start, n)?.conv2d(&w, 0, self.stride, self.dilation, 1)?;
                    let part = part.to_dtype(DType::F64)?;
                    sum = Some(match sum {
                        Some(s) => (s + part)?,
                        None => part,
                    });
                }
                let sum = sum.ok_or_else(|| candle_core::Error::Msg("no input channels".into()))?;
                let dev = xs.device();
                let a = Tensor::from_slice(alpha, (1, cout, 1, 1), dev)?;
                let b = Tensor::from_slice(beta, (1, cout, 1, 1), dev)?;
                sum.broadcast_mul(&a)?.broadcast_add(&b)?.to_dtype(xs.dtype())?.relu()
            }
        }
    }
}

/// Sizes of one convolution.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    stride: usize,
    ph: usize,
    pw: usize,
    dilation: usize,
}

impl Geometry {
    fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }
    fn positions(&self) -> usize {
        self.oh * self.ow
    }
    /// The input is its own column matrix (1×1, stride 1, no padding).
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.ph == 0 && self.pw == 0
    }
}

crate::simd::widest! {
    /// Fills `col` (rows `k0..k1` of the column matrix, `nb` columns each, row-major) with the input
    /// values under output positions `p0..p0 + nb` of one image `x` (cin, h, w).
    fn im2col(g: &Geometry, x: &[f32], k0: usize, k1: usize, p0: usize, nb: usize, col: &mut [f32]) {
        let (s, d) = (g.stride, g.dilation);
        let (first_oy, first_ox) = (p0 / g.ow, p0 % g.ow);
        for k in k0..k1 {
            let (c, ky, kx) = (k / (g.kh * g.kw), (k / g.kw) % g.kh, k % g.kw);
            let row = &mut col[(k - k0) * nb..][..nb];
            let plane = &x[c * g.h * g.w..][..g.h * g.w];
            // Input column of output column ox: ox * s + off; inside the row for ox in lo..hi.
            let off = (kx * d) as isize - g.pw as isize;
            let lo_row = if off >= 0 { 0 } else { (-off) as usize }.div_ceil(s);
            let hi_row =
                if (g.w as isize) <= off { 0 } else { (g.w as isize - off) as usize }.div_ceil(s);
            // One run per output row: columns ox0 .. ox0 + run of output row oy.
            let (mut oy, mut ox0, mut i) = (first_oy, first_ox, 0);
            while i < nb {
                let run = (g.ow - ox0).min(nb - i);
                let out = &mut row[i..i + run];
                let iy = (oy * s + ky * d) as isize - g.ph as isize;
                if iy < 0 || iy >= g.h as isize {
                    out.fill(0.0);
                } else {
                    let src = &plane[iy as usize * g.w..][..g.w];
                    let (lo, hi) = (lo_row.clamp(ox0, ox0 + run), hi_row.clamp(ox0, ox0 + run));
                    let (lo, hi) = (lo - ox0, hi.max(lo) - ox0);
                    out[..lo].fill(0.0);
                    out[hi..].fill(0.0);
                    let src = &src[(((ox0 + lo) * s) as isize + off) as usize..];
                    if s == 1 {
                        out[lo..hi].copy_from_slice(&src[..hi - lo]);
                    } else {
                        out[lo..hi].iter_mut().zip(src.iter().step_by(s)).for_each(|(o, v)| *o = *v);
                    }
                }
                i += run;
                oy += 1;
                ox0 = 0;
            }
        }
    }
}

crate::simd::widest! {
    /// `acc[i] = part[i]` (`first`) or `acc[i] += part[i]`, in f64.
    fn widen_into(acc: &mut [f64], part: &[f32], first: bool) {
        if first {
            acc.iter_mut().zip(part).for_each(|(a, &p)| *a = p as f64);
        } else {
            acc.iter_mut().zip(part).for_each(|(a, &p)| *a += p as f64);
        }
    }
}

crate::simd::widest! {
    /// `out[i] = max(f32(s·a + b), 0)` with `s = earlier[i] + part[i]` in f64, or `part[i]`
    /// alone for a single chunk.
    fn affine_relu(out: &mut [f32], earlier: Option<&[f64]>, part: &[f32], a: f64, b: f64) {
        match earlier {
            Some(acc) => {
                for ((o, &e), &p) in out.iter_mut().zip(acc).zip(part) {
                    *o = (((e + p as f64) * a + b) as f32).max(0.0);
                }
            }
            None => {
                for (o, &p) in out.iter_mut().zip(part) {
                    *o = ((p as f64 * a + b) as f32).max(0.0);
                }
            }
        }
    }
}

crate::simd::widest! {
    /// `row[i] += b`.
    fn add_bias(row: &mut [f32], b: f32) {
        row.iter_mut().for_each(|v| *v += b);
    }
}

/// Per-thread buffers, grown as needed and kept.
#[derive(Default)]
struct Scratch {
    col: Vec<f32>,
    part: Vec<f32>,
    acc: Vec<f64>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fn grow<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    if v.len() < len {
        v.resize(len, T::default());
    }
    &mut v[..len]
}

/// `dst (m × n, row stride dst_rs) = lhs (m × k, row stride lhs_rs) · rhs (k × n, row stride
/// rhs_rs)`, all with unit column stride.
#[allow(clippy::too_many_arguments)]
fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    lhs: &[f32],
    lhs_rs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    par: Parallelism,
) {
    assert!(m == 0 || lhs.len() >= (m - 1) * lhs_rs + k, "lhs too short");
    assert!(k == 0 || rhs.len() >= (k - 1) * rhs_rs + n, "rhs too short");
    // SAFETY: the asserts bound every read; callers give `dst` room for m rows of `dst_rs`
    // (n <= dst_rs) that no other thread writes.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            false,
            lhs.as_ptr(),
            1,
            lhs_rs as isize,
            rhs.as_ptr(),
            1,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// A pointer that blocks writing disjoint parts of one output may share.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: each block writes only its own output positions.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl Conv2dGemm<'_> {
    /// One block: output positions `p0..p0 + nb` of image `img`, all output channels.
    fn block(
        &self,
        g: &Geometry,
        x: &[f32],
        w: &[f32],
        (img, p0, nb): (usize, usize, usize),
        out: OutPtr,
        par: Parallelism,
    ) {
        let (k, pos) = (g.k(), g.positions());
        let x = &x[img * g.cin * g.h * g.w..][..g.cin * g.h * g.w];
        // SAFETY: (img, p0) lies inside the (n, cout, pos) output.
        let dst = unsafe { out.0.add(img * g.cout * pos + p0) };
        let area = g.kh * g.kw;
        let chunk = match self.epilogue {
            Epilogue::AffineRelu { .. } => self.k_chunk.map_or(g.cin, |c| (c / area).max(1)) * area,
            _ => k,
        };
        // Taken out of the thread-local (not borrowed) so that a nested call on this thread, from
        // work stealing inside a parallel GEMM, finds it empty instead of borrowed.
        let mut s = SCRATCH.take();
        // SAFETY: row co of this block is dst[co * pos..][..nb], inside the output.
        let row = |co: usize| unsafe { std::slice::from_raw_parts_mut(dst.add(co * pos), nb) };
        {
            let chunks: Vec<(usize, usize)> =
                (0..k).step_by(chunk.max(1)).map(|k0| (k0, (k0 + chunk).min(k))).collect();
            for (ci, &(k0, k1)) in chunks.iter().enumerate() {
                let kc = k1 - k0;
                let (rhs, rhs_rs): (&[f32], usize) = if g.is_pointwise() {
                    (&x[k0 * pos + p0..], pos)
                } else {
                    let col = grow(&mut s.col, kc * nb);
                    im2col(g, x, k0, k1, p0, nb, col);
                    (col, nb)
                };
                let lhs = &w[k0..];
                match self.epilogue {
                    Epilogue::None | Epilogue::Bias(_) => {
                        matmul(g.cout, nb, kc, dst, pos, lhs, k, rhs, rhs_rs, par)
                    }
                    Epilogue::AffineRelu { alpha, beta } => {
                        let part = grow(&mut s.part, g.cout * nb);
                        matmul(g.cout, nb, kc, part.as_mut_ptr(), nb, lhs, k, rhs, rhs_rs, par);
                        let acc = grow(&mut s.acc, g.cout * nb);
                        if ci + 1 < chunks.len() {
                            widen_into(acc, part, ci == 0);
                        } else {
                            // The last chunk: its sum and the epilogue in one pass.
                            for co in 0..g.cout {
                                let r = co * nb..(co + 1) * nb;
                                let earlier = (ci > 0).then(|| &acc[r.clone()]);
                                affine_relu(row(co), earlier, &part[r], alpha[co], beta[co]);
                            }
                        }
                    }
                }
            }
            if let Epilogue::Bias(b) = self.epilogue {
                for (co, &b) in b.iter().enumerate().take(g.cout) {
                    add_bias(row(co), b);
                }
            }
        }
        SCRATCH.set(s);
    }
}

impl CustomOp2 for Conv2dGemm<'_> {
    fn name(&self) -> &'static str {
        "conv2d-gemm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = crate::contiguous_f32(s1, l1, self.name())?;
        let w = crate::contiguous_f32(s2, l2, self.name())?;
        let (n, cin, h, wd) = l1.shape().dims4()?;
        let (cout, wcin, kh, kw) = l2.shape().dims4()?;
        let (s, d, (ph, pw)) = (self.stride, self.dilation, self.padding);
        if wcin != cin || cin == 0 || s == 0 || d == 0 {
            candle_core::bail!("conv2d-gemm: input {:?}, weight {:?}", l1.dims(), l2.dims())
        }
        let span =
            |size: usize, pad: usize, k: usize| (size + 2 * pad).checked_sub(d * (k - 1) + 1);
        let (Some(eh), Some(ew)) = (span(h, ph, kh), span(wd, pw, kw)) else {
            candle_core::bail!("conv2d-gemm: kernel larger than the padded input")
        };
        let (oh, ow) = (eh / s + 1, ew / s + 1);
        let channels = |len: usize| len != cout;
        match self.epilogue {
            Epilogue::Bias(b) if channels(b.len()) => {
                candle_core::bail!("conv2d-gemm: bias length")
            }
            Epilogue::AffineRelu { alpha, beta }
                if channels(alpha.len()) || channels(beta.len()) =>
            {
                candle_core::bail!("conv2d-gemm: affine length")
            }
            _ => {}
        }
        let g = Geometry { cin, h, w: wd, cout, kh, kw, oh, ow, stride: s, ph, pw, dilation: d };
        let pos = g.positions();
        let len = n * cout * pos;
        let mut out: Vec<f32> = Vec::with_capacity(len);
        let ptr = OutPtr(out.as_mut_ptr());
        let blocks: Vec<(usize, usize, usize)> = (0..n)
            .flat_map(|i| {
                (0..pos).step_by(BLOCK_COLS).map(move |p| (i, p, BLOCK_COLS.min(pos - p)))
            })
            .collect();
        let threads = candle_core::utils::get_num_threads();
        if blocks.len() >= 2 * threads || threads == 1 {
            blocks
                .par_iter()
                .for_each(|&(i, p, nb)| self.block(&g, x, w, (i, p, nb), ptr, Parallelism::None));
        } else {
            // Few blocks (small batch and maps): the GEMM itself uses the threads.
            for &(i, p, nb) in &blocks {
                self.block(&g, x, w, (i, p, nb), ptr, Parallelism::Rayon(threads));
            }
        }
        // SAFETY: the blocks cover every (image, channel, position) of the output once.
        unsafe { out.set_len(len) };
        Ok((CpuStorage::F32(out), Shape::from((n, cout, oh, ow))))
    }
}

#[cfg(test)]
mod tests;
