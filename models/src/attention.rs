//! Unmasked multi-head attention `softmax((q·s)·kᵀ)·v` for f32 on the CPU, fused per block of
//! queries: the scores of a block live in a per-thread buffer that is reused, never in a tensor.
//!
//! candle's path (`matmul`, `softmax_last_dim`, `matmul`, then a transpose back to (b, n, c))
//! writes the whole (b, heads, n, m) score tensor into fresh memory twice and evaluates `exp`
//! one element at a time; at the UNet's 64×64 latents that is 1 GiB of scores per attention.
//! Here each task (batch, head, a block of queries) runs two `gemm` calls on one
//! thread (the tasks spread over rayon's current pool) with vectorised `exp` in between (each
//! row's division by its sum is applied to its d outputs rather than its m scores), and
//! reads q, k, v in the projections' (b, tokens, heads·d) layout and writes the output in it, so
//! no head split or merge is copied. Every row is computed alone in a fixed order and the block
//! size depends on the key count only, so results depend neither on the thread count nor on the
//! batch size.
use std::cell::RefCell;

use candle_core::{CpuStorage, DType, Layout, Result, Storage, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

/// Score elements per task: a task takes `SCORE_ELEMS / m` queries (at least [`MIN_BLOCK`]), so
/// that k and v, which `gemm` packs again for every task, are packed fewer times (at the UNet's
/// 4096 tokens 512 queries run 1.3× faster than 64); the scores stay 8 MiB per thread.
const SCORE_ELEMS: usize = 1 << 21;

/// Fewest queries per task.
const MIN_BLOCK: usize = 64;

/// One (b, tokens, heads·d) operand: its f32 data, offset and the strides of b and tokens (the
/// last axis must have stride 1).
struct Operand<'a> {
    data: &'a [f32],
    start: usize,
    batch_stride: usize,
    row_stride: usize,
}

impl Operand<'_> {
    /// Element `j` of token `t` of batch `b` (head offset included in `j`).
    fn at(&self, b: usize, t: usize, j: usize) -> usize {
        self.start + b * self.batch_stride + t * self.row_stride + j
    }
}

fn operand<'a>(storage: &'a Storage, layout: &Layout, what: &str) -> Result<Operand<'a>> {
    let Storage::Cpu(CpuStorage::F32(data)) = storage else {
        candle_core::bail!("attention: {what} is not f32 on the CPU")
    };
    let stride = layout.stride();
    if layout.dims().len() != 3 || stride[2] != 1 {
        candle_core::bail!("attention: {what} is not (b, tokens, heads·d) with a unit last stride")
    }
    Ok(Operand {
        data,
        start: layout.start_offset(),
        batch_stride: stride[0],
        row_stride: stride[1],
    })
}

/// Whether [`attention`] takes the fused path for these operands.
pub fn fused_applies(q: &Tensor) -> bool {
    q.dtype() == DType::F32 && q.device().is_cpu()
}

/// `softmax((q·scale)·kᵀ)·v` per head, for q (b, n, heads·d) and k, v (b, m, heads·d), f32 on
/// the CPU (views with a unit last stride are read in place) → (b, n, heads·d), contiguous. `q`
/// is multiplied by `scale` in f32 first, as `(q * scale).matmul(kᵀ)` does.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, scale: f32) -> Result<Tensor> {
    let m = k.dims3()?.1;
    attention_in_blocks(q, k, v, heads, scale, (SCORE_ELEMS / m.max(1)).max(MIN_BLOCK))
}

/// [`attention`] with `block` queries per task.
fn attention_in_blocks(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    scale: f32,
    block: usize,
) -> Result<Tensor> {
    let (b, n, c) = q.dims3()?;
    let (bk, m, ck) = k.dims3()?;
    if bk != b || ck != c || v.dims3()? != (b, m, c) || heads == 0 || c % heads != 0 {
        candle_core::bail!(
            "attention: q {:?}, k {:?}, v {:?} do not fit {heads} heads",
            q.dims(),
            k.dims(),
            v.dims()
        )
    }
    let d = c / heads;
    let mut out = vec![0f32; b * n * c];
    {
        let (qs, ql) = q.storage_and_layout();
        let (ks, kl) = k.storage_and_layout();
        let (vs, vl) = v.storage_and_layout();
        let (qo, ko, vo) = (operand(&qs, ql, "q")?, operand(&ks, kl, "k")?, operand(&vs, vl, "v")?);
        let blocks = n.div_ceil(block);
        let dst = SharedOut(out.as_mut_ptr());
        (0..b * heads * blocks).into_par_iter().for_each(|task| {
            let (bh, blk) = (task / blocks, task % blocks);
            let (bi, h) = (bh / heads, bh % heads);
            let s = blk * block;
            let rows = block.min(n - s);
            SCRATCH.with(|cell| {
                let scratch = &mut *cell.borrow_mut();
                let qb = grow(&mut scratch.q, rows * d);
                for r in 0..rows {
                    let src = &qo.data[qo.at(bi, s + r, h * d)..][..d];
                    for (o, x) in qb[r * d..(r + 1) * d].iter_mut().zip(src) {
                        *o = x * scale;
                    }
                }
                let scores = grow(&mut scratch.scores, rows * m);
                // SAFETY: every read is in bounds (the layouts were checked against the dims),
                // and the task writes only its own rows of head `h` in `out`.
                unsafe {
                    // scores (rows × m) = qb (rows × d) · Kᵀ (d × m).
                    let kt = Strided {
                        ptr: ko.data.as_ptr().add(ko.at(bi, 0, h * d)),
                        cs: ko.row_stride,
                        rs: 1,
                    };
                    matmul(rows, m, d, scores.as_mut_ptr(), m, qb.as_ptr(), d, kt);
                    // Unnormalised: each row's 1/Σ is applied to its d outputs below, not to its
                    // m scores.
                    let sums = grow(&mut scratch.sums, rows);
                    for (row, sum) in scores.chunks_exact_mut(m).zip(sums.iter_mut()) {
                        *sum = exp_in_place(row);
                    }
                    // out rows (rows × d) = scores (rows × m) · V (m × d).
                    let vh = Strided {
                        ptr: vo.data.as_ptr().add(vo.at(bi, 0, h * d)),
                        cs: 1,
                        rs: vo.row_stride,
                    };
                    let o = dst.ptr().add((bi * n + s) * c + h * d);
                    matmul(rows, d, m, o, c, scores.as_ptr(), m, vh);
                    for (r, sum) in sums[..rows].iter().enumerate() {
                        for x in std::slice::from_raw_parts_mut(o.add(r * c), d) {
                            *x /= sum;
                        }
                    }
                }
            });
        });
    }
    Tensor::from_vec(out, (b, n, c), q.device())
}

/// A matrix operand of `gemm`: its first element and its column and row strides.
struct Strided {
    ptr: *const f32,
    cs: usize,
    rs: usize,
}

/// `dst (m × n, row stride dst_rs) = lhs (m × k, row stride lhs_rs) · rhs (k × n)` on this
/// thread, unit column strides for `dst` and `lhs`.
///
/// # Safety
/// Every element the shapes and strides address must be readable (`lhs`, `rhs`) or writable and
/// not written by another thread (`dst`).
#[allow(clippy::too_many_arguments)]
unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    lhs: *const f32,
    lhs_rs: usize,
    rhs: Strided,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        false,
        lhs,
        1,
        lhs_rs as isize,
        rhs.ptr,
        rhs.cs as isize,
        rhs.rs as isize,
        0.0,
        1.0,
        false,
        false,
        false,
        Parallelism::None,
    )
}

/// The output buffer, shared by the tasks of one call (each writes disjoint rows × columns).
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: see `attention`: tasks write disjoint elements of a buffer that outlives the loop.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The buffer's start (a method, so that closures capture the whole `Sync` wrapper rather
    /// than its raw-pointer field).
    fn ptr(&self) -> *mut f32 {
        self.0
    }
}

/// Per-thread buffers, grown as needed and kept.
#[derive(Default)]
struct Scratch {
    q: Vec<f32>,
    scores: Vec<f32>,
    sums: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fn grow(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

crate::simd::widest! {
    /// `row[i] = exp(row[i] − max)`, returning `Σ row[i]` (summed in sixteen lanes): softmax
    /// without its division, compiled for the widest vectors the CPU has.
    pub fn exp_in_place(row: &mut [f32]) -> f32 {
        exp_loop(row)
    }
}

const LANES: usize = 16;

#[inline(always)]
fn exp_loop(row: &mut [f32]) -> f32 {
    let mut mx = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (m, x) in mx.iter_mut().zip(c) {
            *m = if *x > *m { *x } else { *m };
        }
    }
    let mut max = mx.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for x in chunks.remainder() {
        max = max.max(*x);
    }
    let mut sums = [0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for (s, x) in sums.iter_mut().zip(c.iter_mut()) {
            *x = exp_f32(*x - max);
            *s += *x;
        }
    }
    let mut sum = 0f32;
    for x in chunks.into_remainder() {
        *x = exp_f32(*x - max);
        sum += *x;
    }
    sums.iter().sum::<f32>() + sum
}

/// `eˣ` in f32 for `x ≤ 88` (softmax passes `x ≤ 0`; larger `x` is taken as 88): Cephes
/// `expf`'s reduction by ln 2 in two parts and degree-5 polynomial, within 2 ulp of the exact
/// value; 0 below −87.3 (where `expf` is subnormal or 0) and for −∞.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    const P: [f32; 6] = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5, // Cephes: 5.0000001201e-1, 0.5 in f32
    ];
    // 1.5 · 2^23: adding it rounds to an integer held in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let xc = x.clamp(-87.3, 88.0);
    let shifted = xc.mul_add(LOG2E, MAGIC);
    let n = shifted - MAGIC;
    let r = n.mul_add(-C2, n.mul_add(-C1, xc));
    let mut p = P[0];
    for &c in &P[1..] {
        p = p.mul_add(r, c);
    }
    let y = p.mul_add(r * r, r) + 1.0;
    // The low bits of `shifted` are n (|n| ≤ 127); (n + 127) << 23 is 2^n.
    let scale = f32::from_bits((shifted.to_bits().wrapping_add(127) & 0xff) << 23);
    if x < -87.3 || x.is_nan() {
        if x.is_nan() {
            x
        } else {
            0.0
        }
    } else {
        y * scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn data(n: usize, seed: u32, amp: f32) -> Vec<f32> {
        crate::test_data::uniform(n, seed, -amp / 2.0, amp / 2.0)
    }

    #[test]
    fn exp_within_two_ulp_of_f64_exp() {
        let mut worst = 0f64;
        for i in -873_000..=880_000 {
            let x = i as f32 * 1e-4;
            let want = (x as f64).exp();
            let got = exp_f32(x) as f64;
            // Relative error in units of f32 epsilon; the subnormal range is excluded (x ≥ −87.3).
            let ulp = (want as f32).abs() as f64 * f32::EPSILON as f64;
            worst = worst.max((got - want).abs() / ulp);
        }
        eprintln!("exp_f32: max error {worst:.2} ulp on [-87.3, 88]");
        assert!(worst <= 2.0, "max error {worst} ulp");
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(f32::NAN).is_nan());
    }

    /// `row[i] = exp(row[i] − max) / Σ exp(row[j] − max)`: [`exp_in_place`], then the division.
    fn softmax_in_place(row: &mut [f32]) {
        let sum = exp_in_place(row);
        for x in row.iter_mut() {
            *x /= sum;
        }
    }

    #[test]
    fn softmax_matches_candle() -> Result<()> {
        for m in [1, 7, 16, 77, 257, 4096] {
            let xs = data(3 * m, m as u32, 40.0);
            let t = Tensor::from_vec(xs.clone(), (3, m), &Device::Cpu)?;
            let want = candle_nn::ops::softmax_last_dim(&t)?.flatten_all()?.to_vec1::<f32>()?;
            let mut got = xs;
            for row in got.chunks_exact_mut(m) {
                softmax_in_place(row);
            }
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!((a - b).abs() <= 2e-6 * b.max(1e-3), "m {m} [{i}]: {a} vs {b}");
            }
        }
        Ok(())
    }

    /// candle's unfused path: heads split, `(q·s)·kᵀ`, softmax, `·v`, heads merged.
    fn reference(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, scale: f64) -> Result<Tensor> {
        let split = |x: &Tensor| -> Result<Tensor> {
            let (b, n, c) = x.dims3()?;
            x.reshape((b, n, heads, c / heads))?.transpose(1, 2)?.contiguous()
        };
        let (q, k, v) = ((split(q)? * scale)?, split(k)?, split(v)?);
        let p = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t()?)?)?;
        let out = p.matmul(&v)?;
        let (b, h, n, d) = out.dims4()?;
        out.transpose(1, 2)?.reshape((b, n, h * d))
    }

    fn close(a: &Tensor, b: &Tensor, tol: f32) -> Result<()> {
        assert_eq!(a.dims(), b.dims());
        let (a, b) = (a.flatten_all()?.to_vec1::<f32>()?, b.flatten_all()?.to_vec1::<f32>()?);
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!((x - y).abs() <= tol, "[{i}]: {x} vs {y}");
        }
        Ok(())
    }

    #[test]
    fn matches_candle_path_self_and_cross_attention() -> Result<()> {
        let dev = Device::Cpu;
        // (b, n, m, heads, d): query counts across the block size, cross-attention (m = 77).
        for (b, n, m, heads, d) in [(2, 130, 130, 8, 40), (2, 64, 77, 4, 16), (1, 1, 5, 2, 3)] {
            let c = heads * d;
            let q = Tensor::from_vec(data(b * n * c, 1, 4.0), (b, n, c), &dev)?;
            let k = Tensor::from_vec(data(b * m * c, 2, 4.0), (b, m, c), &dev)?;
            let v = Tensor::from_vec(data(b * m * c, 3, 2.0), (b, m, c), &dev)?;
            let scale = 1.0 / (d as f64).sqrt();
            let got = attention(&q, &k, &v, heads, scale as f32)?;
            close(&got, &reference(&q, &k, &v, heads, scale)?, 2e-6)?;
        }
        Ok(())
    }

    /// q, k, v as column slices of one (b, n, 3c) projection (the vision tower's qkv) are read
    /// in place and give the contiguous operands' bits; one thread gives the pool's bits.
    #[test]
    fn strided_views_and_thread_counts_give_the_same_bits() -> Result<()> {
        let dev = Device::Cpu;
        let (b, n, heads, d) = (2, 70, 4, 8);
        let c = heads * d;
        let qkv = Tensor::from_vec(data(b * n * 3 * c, 9, 3.0), (b, n, 3 * c), &dev)?;
        let (q, k, v) = (qkv.narrow(2, 0, c)?, qkv.narrow(2, c, c)?, qkv.narrow(2, 2 * c, c)?);
        let views = attention(&q, &k, &v, heads, 0.3)?;
        let (qc, kc, vc) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
        let dense = attention(&qc, &kc, &vc, heads, 0.3)?;
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let single = one.install(|| attention(&qc, &kc, &vc, heads, 0.3))?;
        let bits = |t: &Tensor| -> Result<Vec<u32>> {
            Ok(t.flatten_all()?.to_vec1::<f32>()?.iter().map(|x| x.to_bits()).collect())
        };
        assert_eq!(bits(&views)?, bits(&dense)?);
        assert_eq!(bits(&single)?, bits(&dense)?);
        close(&dense, &reference(&qc, &kc, &vc, heads, 0.3)?, 2e-6)?;
        Ok(())
    }

    #[test]
    fn query_blocks_give_the_same_bits() -> Result<()> {
        let dev = Device::Cpu;
        let (b, n, heads, d) = (1, 300, 2, 40);
        let x =
            |seed| Tensor::from_vec(data(b * n * heads * d, seed, 3.0), (b, n, heads * d), &dev);
        let (q, k, v) = (x(4)?, x(5)?, x(6)?);
        let bits = |t: Tensor| -> Result<Vec<u32>> {
            Ok(t.flatten_all()?.to_vec1::<f32>()?.iter().map(|x| x.to_bits()).collect())
        };
        let whole = bits(attention(&q, &k, &v, heads, 0.2)?)?;
        // Blocks of many rows give the same bits; a block of one row (299 + 1) takes gemm's
        // matrix-vector path and may differ in the last bit.
        for block in [64, 100, 150] {
            assert_eq!(
                bits(attention_in_blocks(&q, &k, &v, heads, 0.2, block)?)?,
                whole,
                "{block}"
            );
        }
        Ok(())
    }

    #[test]
    fn mismatched_shapes_are_an_error() -> Result<()> {
        let dev = Device::Cpu;
        let q = Tensor::zeros((1, 4, 8), DType::F32, &dev)?;
        let k = Tensor::zeros((1, 5, 6), DType::F32, &dev)?;
        assert!(attention(&q, &k, &k, 2, 1.0).is_err());
        assert!(attention(&q, &q, &q, 3, 1.0).is_err());
        Ok(())
    }
}
