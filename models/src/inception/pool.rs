//! Inception's 3×3 pools on contiguous float32 CPU tensors, one pass per channel plane with
//! loops over whole output rows that the compiler vectorises (candle's `avg_pool2d` has no
//! `count_include_pad=False`, and its `max_pool2d` visits one output at a time).
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape};
use rayon::prelude::*;

/// `avg_pool2d(3, stride 1, padding 1, count_include_pad=False)`: window sums in torch's order
/// (row by row, left to right; skipped taps are the padding's exact zeros) divided by the number
/// of in-image pixels; bit for bit what `avg_pool_3x3_same`'s tensor form gives.
pub(super) struct AvgPool3x3Same;

impl CustomOp1 for AvgPool3x3Same {
    fn name(&self) -> &'static str {
        "avg-pool-3x3-same"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = crate::contiguous_f32(s, l, self.name())?;
        let (n, c, h, w) = l.shape().dims4()?;
        let mut out = vec![0f32; n * c * h * w];
        if h * w > 0 {
            out.par_chunks_mut(h * w)
                .zip(x.par_chunks(h * w))
                .for_each(|(o, p)| avg_plane(p, o, h, w));
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, h, w))))
    }
}

crate::simd::widest! {
    /// One (h, w) channel plane of [`AvgPool3x3Same`].
    fn avg_plane(p: &[f32], o: &mut [f32], h: usize, w: usize) {
        for (i, orow) in o.chunks_exact_mut(w).enumerate() {
            for y in i.saturating_sub(1)..(i + 2).min(h) {
                add_window_sums(&p[y * w..(y + 1) * w], orow);
            }
            for (j, v) in orow.iter_mut().enumerate() {
                *v /= (span(i, h) * span(j, w)) as f32;
            }
        }
    }
}

/// In-image taps of a 3-wide window centred on `i` in `0..len`.
#[inline(always)]
fn span(i: usize, len: usize) -> usize {
    3 - usize::from(i == 0) - usize::from(i + 1 == len)
}

/// `acc[j] += r[j − 1]; acc[j] += r[j]; acc[j] += r[j + 1]` over the in-row taps, in that order.
#[inline(always)]
fn add_window_sums(r: &[f32], acc: &mut [f32]) {
    let w = r.len();
    if w < 2 {
        if let (Some(a), Some(v)) = (acc.first_mut(), r.first()) {
            *a += v;
        }
        return;
    }
    acc[0] = acc[0] + r[0] + r[1];
    for (((a, l), m), rt) in
        acc[1..w - 1].iter_mut().zip(&r[..w - 2]).zip(&r[1..w - 1]).zip(&r[2..])
    {
        *a = *a + l + m + rt;
    }
    acc[w - 1] = acc[w - 1] + r[w - 2] + r[w - 1];
}

/// `max_pool2d(3, stride)` with `pad` (0 or 1) rows and columns of −∞ padding on every side, as
/// torch pads: the maximum of the in-image taps of each window.
pub(super) struct MaxPool3x3 {
    pub stride: usize,
    pub pad: usize,
}

impl MaxPool3x3 {
    fn out_len(&self, len: usize) -> Option<usize> {
        (len + 2 * self.pad).checked_sub(3).map(|e| e / self.stride + 1)
    }

    /// In-image input range of the window of output `o` along an axis of `len`.
    #[inline(always)]
    fn taps(&self, o: usize, len: usize) -> std::ops::Range<usize> {
        let start = o * self.stride;
        start.saturating_sub(self.pad)..(start + 3 - self.pad).min(len)
    }
}

crate::simd::widest! {
    /// One channel plane `p` (h × w) of [`MaxPool3x3`] into `o` (oh × ow).
    fn max_plane(pool: &MaxPool3x3, p: &[f32], o: &mut [f32], h: usize, w: usize, ow: usize) {
        // Row maxima of each output column's window, then the column window's maximum.
        let mut rowmax = vec![f32::NEG_INFINITY; ow];
        for (i, orow) in o.chunks_exact_mut(ow).enumerate() {
            for y in pool.taps(i, h) {
                let r = &p[y * w..(y + 1) * w];
                window_max(r, pool, &mut rowmax);
                for (a, m) in orow.iter_mut().zip(&rowmax) {
                    *a = a.max(*m);
                }
            }
        }
    }
}

impl CustomOp1 for MaxPool3x3 {
    fn name(&self) -> &'static str {
        "max-pool-3x3"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = crate::contiguous_f32(s, l, self.name())?;
        let (n, c, h, w) = l.shape().dims4()?;
        if self.stride == 0 || self.pad > 1 {
            candle_core::bail!("max-pool-3x3: stride {} pad {}", self.stride, self.pad)
        }
        let (Some(oh), Some(ow)) = (self.out_len(h), self.out_len(w)) else {
            candle_core::bail!("max-pool-3x3: input {h}x{w} smaller than the window")
        };
        let mut out = vec![f32::NEG_INFINITY; n * c * oh * ow];
        if oh * ow > 0 {
            out.par_chunks_mut(oh * ow)
                .zip(x.par_chunks(h * w))
                .for_each(|(o, p)| max_plane(self, p, o, h, w, ow));
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))))
    }
}

/// `out[j]` = the maximum of the in-row taps of output column `j`'s window, folded from −∞ in
/// tap order (a NaN tap is passed over, as `f32::max` does).
#[inline(always)]
fn window_max(r: &[f32], pool: &MaxPool3x3, out: &mut [f32]) {
    let w = r.len();
    if pool.stride == 1 && pool.pad == 1 && w >= 2 {
        out[0] = r[0].max(r[1]);
        for (((o, l), m), rt) in
            out[1..w - 1].iter_mut().zip(&r[..w - 2]).zip(&r[1..w - 1]).zip(&r[2..])
        {
            *o = l.max(*m).max(*rt);
        }
        out[w - 1] = r[w - 2].max(r[w - 1]);
        return;
    }
    let (s, pad) = (pool.stride, pool.pad);
    let fold = |j: usize| r[pool.taps(j, w)].iter().copied().fold(f32::NEG_INFINITY, f32::max);
    // Columns lo..hi have all three taps in the row: j·s ≥ pad and j·s − pad + 3 ≤ w.
    let lo = pad.div_ceil(s).min(out.len());
    let hi = if w + pad >= 3 { ((w + pad - 3) / s + 1).clamp(lo, out.len()) } else { lo };
    for (j, o) in out.iter_mut().enumerate().take(lo) {
        *o = fold(j);
    }
    let (n, first) = (hi - lo, lo * s - pad);
    if s == 2 && n > 0 {
        let rr = &r[first..first + 2 * n + 1];
        for (k, o) in out[lo..hi].iter_mut().enumerate() {
            *o = f32::NEG_INFINITY.max(rr[2 * k]).max(rr[2 * k + 1]).max(rr[2 * k + 2]);
        }
    } else {
        for (j, o) in out.iter_mut().enumerate().take(hi).skip(lo) {
            let t = &r[j * s - pad..][..3];
            *o = f32::NEG_INFINITY.max(t[0]).max(t[1]).max(t[2]);
        }
    }
    for (j, o) in out.iter_mut().enumerate().skip(hi) {
        *o = fold(j);
    }
}
