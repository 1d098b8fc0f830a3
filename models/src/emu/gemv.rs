//! `y = x·Wᵀ` for the few rows of a decoding step, f32 on the CPU, on every core.
//!
//! candle's matmul runs a one-row product (batch 1 greedy decoding) on one core. Here the output
//! features are split across the threads of the spinning pool ([`crate::pool::spinning_chunks`],
//! sized by `--threads`), and each output is one dot product of a row of `x` with a row of `W`
//! (PyTorch layout (out, in), both contiguous).
//!
//! Every dot product is summed in one fixed order, whatever the number of rows in the call, the
//! blocking, the thread count or the instruction set: sixteen lanes, lane `l` accumulating
//! `x[k]·w[k]` for `k ≡ l (mod 16)` with fused multiply-adds, the lanes added in a fixed tree,
//! then the tail (`in mod 16` elements) fused in order. So a row's outputs are bit-identical at
//! batch 1 and batch 8, and the AVX-512 kernel (one register of 16 lanes), the AVX2+FMA kernel
//! (two registers of 8) and the scalar one (`f32::mul_add`) agree exactly. Several rows and
//! outputs share each load of a weight row (register blocking), which changes no sum.

/// Lanes of one dot product's accumulator (an AVX-512 register of f32, two AVX2 registers).
const LANES: usize = 16;
/// Outputs per parallel unit (a multiple of every kernel's output block).
const OUT_BLOCK: usize = 12;
/// Below this many multiply-adds a call stays on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;

/// A stored weight element: an f32, or the upper half of an f32 whose lower half is zero (the
/// bits of a bf16 value, widened exactly), so both give the same products and sums.
pub trait Weight: Copy + Send + Sync {
    fn widen(self) -> f32;
    /// 16 consecutive elements from `p`, widened (inlined into the AVX-512 kernel).
    ///
    /// # Safety
    /// `p` points to 16 readable elements; the CPU supports AVX-512F.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512;
    /// 8 consecutive elements from `p`, widened (inlined into the AVX2 kernel).
    ///
    /// # Safety
    /// `p` points to 8 readable elements; the CPU supports AVX2.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m256;
}

impl Weight for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const f32) -> std::arch::x86_64::__m512 {
        std::arch::x86_64::_mm512_loadu_ps(p)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const f32) -> std::arch::x86_64::__m256 {
        std::arch::x86_64::_mm256_loadu_ps(p)
    }
}

/// bf16 bits: the f32 with these as its upper half.
impl Weight for u16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from_bits(u32::from(self) << 16)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const u16) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(_mm256_loadu_si256(
            p.cast(),
        ))))
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const u16) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(_mm_loadu_si128(
            p.cast(),
        ))))
    }
}

/// A weight matrix (out, inp) as stored for the GEMV.
#[derive(Debug, Clone, Copy)]
pub enum Weights<'a> {
    F32(&'a [f32]),
    /// f32 weights that are all bf16 values, as their upper halves: half the bytes to stream.
    Bf16(&'a [u16]),
}

impl Weights<'_> {
    pub fn len(&self) -> usize {
        match self {
            Weights::F32(w) => w.len(),
            Weights::Bf16(w) => w.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The upper halves of `w` when every element is a bf16 value (lower half zero), else `None`:
/// a lossless copy at half the size.
pub fn bf16_exact(w: &[f32]) -> Option<Vec<u16>> {
    if w.iter().all(|v| v.to_bits() & 0xFFFF == 0) {
        Some(w.iter().map(|v| (v.to_bits() >> 16) as u16).collect())
    } else {
        None
    }
}

/// Which kernel computes the dot products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// AVX-512F (x86-64, detected at run time).
    Avx512,
    /// AVX2 + FMA (x86-64, detected at run time).
    Avx2Fma,
    /// Portable: the same lane structure with `f32::mul_add`.
    Scalar,
}

impl Kernel {
    /// Whether this CPU runs the kernel.
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Kernel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
                Kernel::Avx2Fma => {
                    std::arch::is_x86_feature_detected!("avx2")
                        && std::arch::is_x86_feature_detected!("fma")
                }
                Kernel::Scalar => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Kernel::Scalar
        }
    }

    /// Rows of `x` per register block (AVX-512 has 32 registers, AVX2 16).
    fn row_block(self) -> usize {
        match self {
            Kernel::Avx512 => 4,
            _ => 2,
        }
    }

    /// Outputs (weight rows) per register block: AVX-512 holds 4 × 6 accumulators, so each row
    /// of `x` is read once per 6 outputs rather than 4.
    fn out_block(self) -> usize {
        match self {
            Kernel::Avx512 => 6,
            _ => 4,
        }
    }

    /// The fastest kernel this CPU runs.
    pub fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Kernel::Avx2Fma;
            }
        }
        Kernel::Scalar
    }
}

/// `x` (rows, inp) row-major, `w` (out, inp) row-major → `x·Wᵀ` (rows, out) row-major, with the
/// detected kernel.
pub fn gemv(x: &[f32], rows: usize, w: &[f32], out: usize, inp: usize) -> Vec<f32> {
    gemv_with(Kernel::detect(), x, rows, w, out, inp)
}

/// [`gemv`] of the same `x` with several weights (`(w, out)` each, all `inp` wide) in one
/// parallel loop: one fork and join for a layer's q, k and v projections rather than three.
/// Each result has the bits [`gemv`] gives it alone.
pub fn gemv_many(x: &[f32], rows: usize, ws: &[(Weights, usize)], inp: usize) -> Vec<Vec<f32>> {
    run(Kernel::detect(), true, x, rows, ws, inp)
}

/// [`gemv`] with a chosen kernel (tests compare them; a kernel the CPU lacks falls back to the
/// scalar one).
pub fn gemv_with(
    kernel: Kernel,
    x: &[f32],
    rows: usize,
    w: &[f32],
    out: usize,
    inp: usize,
) -> Vec<f32> {
    run(kernel, true, x, rows, &[(Weights::F32(w), out)], inp).pop().unwrap_or_default()
}

/// The products of `x` with every weight, on the spinning pool (`parallel`, from
/// [`PARALLEL_MIN`] multiply-adds) or on the calling thread.
fn run(
    kernel: Kernel,
    parallel: bool,
    x: &[f32],
    rows: usize,
    ws: &[(Weights, usize)],
    inp: usize,
) -> Vec<Vec<f32>> {
    assert_eq!(x.len(), rows * inp, "gemv: x is not (rows, inp)");
    for (w, out) in ws {
        assert_eq!(w.len(), out * inp, "gemv: w is not (out, inp)");
    }
    let kernel = if kernel.available() { kernel } else { Kernel::Scalar };
    let mut ys: Vec<Vec<f32>> = ws.iter().map(|(_, out)| vec![0f32; rows * out]).collect();
    let total: usize = ws.iter().map(|(_, out)| out).sum();
    if rows == 0 || total == 0 {
        return ys;
    }
    if !parallel || crate::pool::spinning_threads() == 1 || rows * total * inp < PARALLEL_MIN {
        for ((w, out), y) in ws.iter().zip(ys.iter_mut()) {
            compute_any(kernel, x, rows, *w, inp, 0..*out, &mut YOut { y, out: *out });
        }
        return ys;
    }
    // Units of OUT_BLOCK outputs, numbered across the weights in turn.
    let starts: Vec<usize> = ws
        .iter()
        .scan(0, |acc, (_, out)| {
            let s = *acc;
            *acc += out.div_ceil(OUT_BLOCK);
            Some(s)
        })
        .collect();
    let units =
        starts.last().copied().unwrap_or(0) + ws.last().map_or(0, |(_, o)| o.div_ceil(OUT_BLOCK));
    let shared: Vec<SharedOut> = ys
        .iter_mut()
        .zip(ws)
        .map(|(y, (_, out))| SharedOut { ptr: y.as_mut_ptr(), len: y.len(), out: *out })
        .collect();
    crate::pool::spinning_chunks(units, |range| {
        for (m, ((w, out), &first)) in ws.iter().zip(&starts).enumerate() {
            let end = first + out.div_ceil(OUT_BLOCK);
            let (lo, hi) = (range.start.max(first), range.end.min(end));
            if lo < hi {
                let outs = (lo - first) * OUT_BLOCK..((hi - first) * OUT_BLOCK).min(*out);
                let mut sink = shared[m];
                compute_any(kernel, x, rows, *w, inp, outs, &mut sink);
            }
        }
    });
    ys
}

/// `y[o] = x · w[o]` for one row `x` (inp) and the rows of `w` (out, inp), on the calling thread,
/// in the same sum order as [`gemv`] (the decode attention's scores).
pub(crate) fn dots_into(
    kernel: Kernel,
    x: &[f32],
    w: &[f32],
    out: usize,
    inp: usize,
    y: &mut [f32],
) {
    assert!(x.len() == inp && w.len() == out * inp && y.len() == out, "dots_into: shapes");
    let kernel = if kernel.available() { kernel } else { Kernel::Scalar };
    compute(kernel, x, 1, w, inp, 0..out, &mut YOut { y, out });
}

/// Where a block's results go.
trait Sink {
    fn put(&mut self, row: usize, o: usize, v: f32);
}

/// The (rows, out) result.
struct YOut<'a> {
    y: &'a mut [f32],
    out: usize,
}

impl Sink for YOut<'_> {
    fn put(&mut self, row: usize, o: usize, v: f32) {
        self.y[row * self.out + o] = v;
    }
}

/// The (rows, out) result shared by the chunks of a parallel call; each chunk writes only its
/// own output columns.
#[derive(Clone, Copy)]
struct SharedOut {
    ptr: *mut f32,
    len: usize,
    out: usize,
}

// SAFETY: the chunks of one call write disjoint elements (their own output ranges) of a buffer
// that outlives the parallel loop, and nothing reads it until the loop has joined.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl Sink for SharedOut {
    fn put(&mut self, row: usize, o: usize, v: f32) {
        let i = row * self.out + o;
        assert!(i < self.len, "gemv: output index out of range");
        // SAFETY: in bounds (checked), and no other chunk writes column `o` (see the impls).
        unsafe { *self.ptr.add(i) = v }
    }
}

/// [`compute`] for either storage.
fn compute_any(
    kernel: Kernel,
    x: &[f32],
    rows: usize,
    w: Weights,
    inp: usize,
    range: std::ops::Range<usize>,
    sink: &mut impl Sink,
) {
    match w {
        Weights::F32(w) => compute(kernel, x, rows, w, inp, range, sink),
        Weights::Bf16(w) => compute(kernel, x, rows, w, inp, range, sink),
    }
}

/// Outputs `range` of every row, blocked: each block of weight rows is read once for all rows.
fn compute<W: Weight>(
    kernel: Kernel,
    x: &[f32],
    rows: usize,
    w: &[W],
    inp: usize,
    range: std::ops::Range<usize>,
    sink: &mut impl Sink,
) {
    let xr = |r: usize| &x[r * inp..(r + 1) * inp];
    let wr = |o: usize| &w[o * inp..(o + 1) * inp];
    let mut o = range.start;
    while o < range.end {
        let ob = (range.end - o).min(kernel.out_block());
        // The next block of weight rows (contiguous), prefetched in equal shares by the passes
        // over x, so the memory is kept busy while the current block is computed from cache.
        let next = &w[(o + ob) * inp..(o + 2 * ob).min(range.end) * inp];
        let passes = rows.div_ceil(kernel.row_block());
        let share = next.len().div_ceil(passes).div_ceil(line::<W>()) * line::<W>();
        let mut r = 0;
        while r < rows {
            let rb = (rows - r).min(kernel.row_block());
            let p = r / kernel.row_block();
            let ahead = &next[(p * share).min(next.len())..((p + 1) * share).min(next.len())];
            match (rb, ob) {
                (4, 6) => block::<4, 6, W>(
                    kernel,
                    [xr(r), xr(r + 1), xr(r + 2), xr(r + 3)],
                    [wr(o), wr(o + 1), wr(o + 2), wr(o + 3), wr(o + 4), wr(o + 5)],
                    r,
                    o,
                    ahead,
                    sink,
                ),
                (3, 6) => block::<3, 6, W>(
                    kernel,
                    [xr(r), xr(r + 1), xr(r + 2)],
                    [wr(o), wr(o + 1), wr(o + 2), wr(o + 3), wr(o + 4), wr(o + 5)],
                    r,
                    o,
                    ahead,
                    sink,
                ),
                (2, 6) => block::<2, 6, W>(
                    kernel,
                    [xr(r), xr(r + 1)],
                    [wr(o), wr(o + 1), wr(o + 2), wr(o + 3), wr(o + 4), wr(o + 5)],
                    r,
                    o,
                    ahead,
                    sink,
                ),
                (1, 6) => block::<1, 6, W>(
                    kernel,
                    [xr(r)],
                    [wr(o), wr(o + 1), wr(o + 2), wr(o + 3), wr(o + 4), wr(o + 5)],
                    r,
                    o,
                    ahead,
                    sink,
                ),
                (4, 4) => block::<4, 4, W>(
                    kernel,
                    [xr(r), xr(r + 1), xr(r + 2), xr(r + 3)],
                    [wr(o), wr(o + 1), wr(o + 2), wr(o + 3)],
                    r,
                    o,
                    ahead,
                    sink,
                ),
                (3, 4) => block::<3, 4, W>(
                    kernel,
                    [xr(r), xr(r + 1), xr(r + 2)],
                    [wr(o), wr(o + 1), wr(o + 2), wr(o + 3)],
                    r,
                    o,
                    ahead,
                    sink,
                ),
                (2, 4) => block::<2, 4, W>(
                    kernel,
                    [xr(r), xr(r + 1)],
                    [wr(o), wr(o + 1), wr(o + 2), wr(o + 3)],
                    r,
                    o,
                    ahead,
                    sink,
                ),
                (1, 4) => block::<1, 4, W>(
                    kernel,
                    [xr(r)],
                    [wr(o), wr(o + 1), wr(o + 2), wr(o + 3)],
                    r,
                    o,
                    ahead,
                    sink,
                ),
                _ => {
                    for rr in r..r + rb {
                        for oo in o..o + ob {
                            block::<1, 1, W>(kernel, [xr(rr)], [wr(oo)], rr, oo, &[], sink);
                        }
                    }
                }
            }
            r += rb;
        }
        o += ob;
    }
}

/// One register block: `x`'s rows against `w`'s rows, into `sink` at (`row`, `o`); `ahead` (the
/// next weight rows, possibly empty) is prefetched into the cache meanwhile, spread over the loop.
#[allow(clippy::too_many_arguments)]
fn block<const R: usize, const O: usize, W: Weight>(
    kernel: Kernel,
    x: [&[f32]; R],
    w: [&[W]; O],
    row: usize,
    o: usize,
    ahead: &[W],
    sink: &mut impl Sink,
) {
    let mut res = [[0f32; O]; R];
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Kernel::Avx512` is only used after `gemv_with` checked the CPU features.
        Kernel::Avx512 => unsafe { avx512::dots::<R, O, W>(&x, &w, ahead, &mut res) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Kernel::Avx2Fma` is only used after `gemv_with` checked the CPU features.
        Kernel::Avx2Fma => unsafe { avx2::dots::<R, O, W>(&x, &w, ahead, &mut res) },
        _ => scalar_dots::<R, O, W>(&x, &w, &mut res),
    }
    for (i, rr) in res.iter().enumerate() {
        for (j, v) in rr.iter().enumerate() {
            sink.put(row + i, o + j, *v);
        }
    }
}

/// The fixed sum of the sixteen lanes: lane `l` and lane `l + 8` first, then a tree over eight.
#[inline(always)]
fn reduce(l: [f32; LANES]) -> f32 {
    let h: [f32; 8] = std::array::from_fn(|i| l[i] + l[i + 8]);
    ((h[0] + h[4]) + (h[2] + h[6])) + ((h[1] + h[5]) + (h[3] + h[7]))
}

/// The tail (`in mod 16` elements) fused onto the reduced lanes, in order.
#[inline(always)]
fn tail<W: Weight>(sum: f32, x_tail: &[f32], w_tail: &[W]) -> f32 {
    x_tail.iter().zip(w_tail).fold(sum, |s, (x, w)| x.mul_add(w.widen(), s))
}

/// [`reduce`] in registers, from `h[i]` = lane `i` + lane `i + 8`: the same adds on the same
/// operands (`(h0+h4)+(h2+h6)` and `(h1+h5)+(h3+h7)`, then their sum), without a trip through
/// memory.
///
/// # Safety
/// The CPU must support AVX.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn reduce_halves(h: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    // [h0+h4, h1+h5, h2+h6, h3+h7]
    let q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h));
    // [q0+q2, q1+q3, ..]
    let r = _mm_add_ps(q, _mm_movehl_ps(q, q));
    _mm_cvtss_f32(_mm_add_ss(r, _mm_shuffle_ps::<1>(r, r)))
}

/// The portable kernel: per dot product, sixteen fused lanes, [`reduce`], the tail fused in order.
fn scalar_dots<const R: usize, const O: usize, W: Weight>(
    x: &[&[f32]; R],
    w: &[&[W]; O],
    res: &mut [[f32; O]; R],
) {
    let n = x[0].len();
    let body = n / LANES * LANES;
    for (xi, ri) in x.iter().zip(res.iter_mut()) {
        for (wj, out) in w.iter().zip(ri.iter_mut()) {
            let mut acc = [0f32; LANES];
            for (xc, wc) in xi[..body].chunks_exact(LANES).zip(wj[..body].chunks_exact(LANES)) {
                for ((a, xv), wv) in acc.iter_mut().zip(xc).zip(wc) {
                    *a = xv.mul_add(wv.widen(), *a);
                }
            }
            *out = tail(reduce(acc), &xi[body..], &wj[body..]);
        }
    }
}

/// Prefetches the next `per` cache lines of `ahead` from element `*at` on (none past its end).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch<W>(ahead: &[W], per: usize, at: &mut usize) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    for _ in 0..per {
        if *at < ahead.len() {
            // SAFETY: in bounds (checked); a prefetch reads nothing architecturally.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.as_ptr().add(*at).cast()) };
            *at += line::<W>();
        }
    }
}

/// Elements of `W` per 64-byte cache line.
#[inline(always)]
const fn line<W>() -> usize {
    64 / std::mem::size_of::<W>()
}

/// Lines of `ahead` to prefetch per step of `body` elements so that they spread over the loop.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn lines_per_step<W>(ahead: &[W], body: usize) -> usize {
    ahead.len().div_ceil(line::<W>()).div_ceil((body / LANES).max(1))
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Weight, LANES};
    use std::arch::x86_64::*;

    /// The AVX2+FMA kernel: R×O pairs of accumulators (lanes 0–7 and 8–15), each weight chunk
    /// loaded once for R rows.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; every slice has the same length.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::needless_range_loop)]
    pub(super) unsafe fn dots<const R: usize, const O: usize, W: Weight>(
        x: &[&[f32]; R],
        w: &[&[W]; O],
        ahead: &[W],
        res: &mut [[f32; O]; R],
    ) {
        let n = x[0].len();
        let body = n / LANES * LANES;
        let (mut pf, per) = (0, super::lines_per_step(ahead, body));
        let mut lo = [[_mm256_setzero_ps(); O]; R];
        let mut hi = [[_mm256_setzero_ps(); O]; R];
        let mut xl = [_mm256_setzero_ps(); R];
        let mut xh = [_mm256_setzero_ps(); R];
        let mut k = 0;
        while k < body {
            super::prefetch(ahead, per, &mut pf);
            for r in 0..R {
                xl[r] = _mm256_loadu_ps(x[r].as_ptr().add(k));
                xh[r] = _mm256_loadu_ps(x[r].as_ptr().add(k + 8));
            }
            for o in 0..O {
                let wl = W::load8(w[o].as_ptr().add(k));
                let wh = W::load8(w[o].as_ptr().add(k + 8));
                for r in 0..R {
                    lo[r][o] = _mm256_fmadd_ps(xl[r], wl, lo[r][o]);
                    hi[r][o] = _mm256_fmadd_ps(xh[r], wh, hi[r][o]);
                }
            }
            k += LANES;
        }
        for r in 0..R {
            for o in 0..O {
                let sum = super::reduce_halves(_mm256_add_ps(lo[r][o], hi[r][o]));
                res[r][o] = super::tail(sum, &x[r][body..n], &w[o][body..n]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Weight, LANES};
    use std::arch::x86_64::*;

    /// The AVX-512 kernel: R×O accumulators of 16 lanes, each weight chunk loaded once for R rows.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; every slice has the same length.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::needless_range_loop)]
    pub(super) unsafe fn dots<const R: usize, const O: usize, W: Weight>(
        x: &[&[f32]; R],
        w: &[&[W]; O],
        ahead: &[W],
        res: &mut [[f32; O]; R],
    ) {
        let n = x[0].len();
        let body = n / LANES * LANES;
        let (mut pf, per) = (0, super::lines_per_step(ahead, body));
        let mut acc = [[_mm512_setzero_ps(); O]; R];
        let mut xv = [_mm512_setzero_ps(); R];
        let mut k = 0;
        while k < body {
            super::prefetch(ahead, per, &mut pf);
            for r in 0..R {
                xv[r] = _mm512_loadu_ps(x[r].as_ptr().add(k));
            }
            for o in 0..O {
                let wv = W::load16(w[o].as_ptr().add(k));
                for r in 0..R {
                    acc[r][o] = _mm512_fmadd_ps(xv[r], wv, acc[r][o]);
                }
            }
            k += LANES;
        }
        for r in 0..R {
            for o in 0..O {
                let a = acc[r][o];
                let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(a)));
                let sum = super::reduce_halves(_mm256_add_ps(_mm512_castps512_ps256(a), hi));
                res[r][o] = super::tail(sum, &x[r][body..n], &w[o][body..n]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn data(n: usize, seed: u32) -> Vec<f32> {
        crate::test_data::uniform(n, seed, -0.5, 0.5)
    }

    /// Shapes with every remainder: inp not a multiple of 16, out not a multiple of 4, odd rows.
    const SHAPES: [(usize, usize); 5] = [(1027, 203), (64, 64), (7, 5), (2816, 1030), (24, 9)];

    #[test]
    fn matches_candle_matmul() {
        for (inp, out) in SHAPES {
            for rows in [1, 3, 8] {
                let (x, w) = (data(rows * inp, 1), data(out * inp, 2));
                let want = Tensor::from_vec(x.clone(), (rows, inp), &Device::Cpu)
                    .unwrap()
                    .matmul(
                        &Tensor::from_vec(w.clone(), (out, inp), &Device::Cpu)
                            .unwrap()
                            .t()
                            .unwrap(),
                    )
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                let got = gemv(&x, rows, &w, out, inp);
                let tol = 1e-5 * (inp as f32).sqrt();
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!((a - b).abs() <= tol, "{inp}x{out} rows {rows} [{i}]: {a} vs {b}");
                }
            }
        }
    }

    /// A row's outputs have the same bits alone, among 3 rows and among 8, in any position.
    #[test]
    fn a_rows_bits_do_not_depend_on_the_other_rows() {
        for (inp, out) in SHAPES {
            let w = data(out * inp, 3);
            let x8 = data(8 * inp, 4);
            let all = gemv(&x8, 8, &w, out, inp);
            for r in 0..8 {
                let row = &x8[r * inp..(r + 1) * inp];
                let one = gemv(row, 1, &w, out, inp);
                assert_eq!(one, all[r * out..(r + 1) * out], "{inp}x{out}: row {r} alone vs in 8");
                // The same row in the middle of three.
                let mut x3 = data(3 * inp, 5 + r as u32);
                x3[inp..2 * inp].copy_from_slice(row);
                let three = gemv(&x3, 3, &w, out, inp);
                assert_eq!(one, three[out..2 * out], "{inp}x{out}: row {r} alone vs in 3");
            }
        }
    }

    /// The AVX-512, AVX2 and scalar kernels give the same bits (a kernel this CPU lacks is the
    /// scalar one; the test prints which ran), and so do one thread and the whole pool.
    #[test]
    fn kernels_and_thread_counts_agree_exactly() {
        eprintln!(
            "AVX-512 here: {}, AVX2+FMA here: {}",
            Kernel::Avx512.available(),
            Kernel::Avx2Fma.available()
        );
        for (inp, out) in SHAPES {
            for rows in [1, 3, 5, 8, 40] {
                let (x, w) = (data(rows * inp, 6), data(out * inp, 7));
                let simd = gemv_with(Kernel::Avx2Fma, &x, rows, &w, out, inp);
                let scalar = gemv_with(Kernel::Scalar, &x, rows, &w, out, inp);
                assert_eq!(simd, scalar, "{inp}x{out} rows {rows}");
                let wide = gemv_with(Kernel::Avx512, &x, rows, &w, out, inp);
                assert_eq!(wide, scalar, "{inp}x{out} rows {rows}: AVX-512");
                let single = run(Kernel::Avx2Fma, false, &x, rows, &[(Weights::F32(&w), out)], inp);
                assert_eq!(simd, single[0], "{inp}x{out} rows {rows}: 1 thread");
            }
        }
    }

    /// Several weights in one loop give each product the bits it has alone, at every row count
    /// and with the parallel split falling inside and across the weights.
    #[test]
    fn many_weights_match_each_alone() {
        let inp = 1027;
        let outs = [203, 64, 1030, 5];
        let ws: Vec<Vec<f32>> = outs.iter().map(|&o| data(o * inp, 8 + o as u32)).collect();
        for rows in [1, 3, 8] {
            let x = data(rows * inp, 9);
            let pairs: Vec<(Weights, usize)> =
                ws.iter().zip(outs).map(|(w, o)| (Weights::F32(w), o)).collect();
            let many = gemv_many(&x, rows, &pairs, inp);
            for ((w, o), y) in ws.iter().zip(outs).zip(&many) {
                assert_eq!(*y, gemv(&x, rows, w, o, inp), "rows {rows}, out {o}");
            }
        }
    }

    /// Weights that are bf16 values give the same bits from their f32 form and from their bf16
    /// copy, with every kernel, row count and remainder; other weights are not copied.
    #[test]
    fn bf16_copy_gives_the_f32_bits() {
        let round = |v: f32| f32::from_bits(v.to_bits() & 0xFFFF_0000);
        for (inp, out) in SHAPES {
            let w: Vec<f32> = data(out * inp, 10).into_iter().map(round).collect();
            let packed = bf16_exact(&w).expect("bf16 values");
            assert_eq!(packed.len(), w.len());
            assert!(bf16_exact(&data(out * inp, 10)).is_none(), "{inp}x{out}: not bf16");
            for rows in [1, 3, 5, 8, 40] {
                let x = data(rows * inp, 11);
                for kernel in [Kernel::Avx512, Kernel::Avx2Fma, Kernel::Scalar] {
                    let f = run(kernel, true, &x, rows, &[(Weights::F32(&w), out)], inp);
                    let h = run(kernel, true, &x, rows, &[(Weights::Bf16(&packed), out)], inp);
                    assert_eq!(f, h, "{inp}x{out} rows {rows} {kernel:?}");
                }
            }
        }
    }
}
