//! 3×3, stride-1, padding-1 convolution by Winograd's minimal filtering F(2×2, 3×3) (Lavin &
//! Gray 2016, the algorithm oneDNN and cuDNN use for these shapes): each 2×2 output tile is
//! `Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A` of its 4×4 input tile `d`, so the products over input
//! channels become 16 GEMMs, (cout × cin) · (cin × tiles), with 16 multiplies per tile where a
//! direct convolution has 36: 2.25× fewer multiply-adds in the GEMM. The transforms add and
//! subtract in a fixed order (the constants are 0, ±1 and ±½, exact in binary); results agree
//! with the direct convolution to float32 rounding (tests against candle's `conv2d`).
//!
//! Blocks of tile rows run in parallel over rayon's pool, each with its own transformed input
//! and product buffers (reused per thread).
use std::cell::RefCell;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape};
use gemm::Parallelism;
use rayon::prelude::*;

use super::{grow, OutPtr};

/// Tiles per block: the GEMMs' column count.
const BLOCK_TILES: usize = 256;

/// `U = G g Gᵀ` for every (cout, cin) 3×3 filter of `w` (cout, cin, 3, 3), laid out
/// (cout, 16, cin): row `co` of GEMM `ξ` starts at `(co · 16 + ξ) · cin`. With
/// `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`; computed in f64, rounded once, in
/// parallel over output channels.
pub fn transform_weights(w: &[f32], cout: usize, cin: usize) -> Vec<f32> {
    assert_eq!(w.len(), cout * cin * 9, "winograd: weight is not (cout, cin, 3, 3)");
    // [a, b, c] ↦ G [a, b, c]ᵀ.
    let g4 = |a: f64, b: f64, c: f64| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    let mut u = vec![0f32; cout * 16 * cin];
    u.par_chunks_mut(16 * cin).enumerate().for_each(|(co, uc)| {
        for ci in 0..cin {
            let g = &w[(co * cin + ci) * 9..][..9];
            let at = |r: usize, c: usize| g[r * 3 + c] as f64;
            // t = G g (4 × 3, by columns), then row i of U = G tᵢᵀ.
            let cols: [[f64; 4]; 3] = std::array::from_fn(|c| g4(at(0, c), at(1, c), at(2, c)));
            for i in 0..4 {
                let row = g4(cols[0][i], cols[1][i], cols[2][i]);
                for (j, v) in row.iter().enumerate() {
                    uc[(i * 4 + j) * cin + ci] = *v as f32;
                }
            }
        }
    });
    u
}

/// The convolution op: the weight operand is the (cout, cin, 3, 3) weight, `u` its
/// [`transform_weights`].
#[derive(Debug, Clone, Copy)]
pub struct Winograd3x3<'a> {
    pub u: &'a [f32],
    pub bias: Option<&'a [f32]>,
}

/// Per-thread buffers: transformed input (16, cin, tiles), products (16, cout, tiles), and a
/// tile row's four padded input rows split into even and odd columns.
#[derive(Default)]
struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
    rows: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Sizes of one call.
#[derive(Debug, Clone, Copy)]
struct Dims {
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    /// Tile rows and columns: ceil(h / 2), ceil(w / 2).
    th: usize,
    tw: usize,
}

/// Row `y` (of the zero-padded input, −1 ≤ y ≤ h) of one channel plane as `tw + 1` even and
/// `tw + 1` odd columns of the padded row: `even[t] = p[2t]`, `odd[t] = p[2t + 1]` where
/// `p[x] = plane[y][x − 1]` (0 outside).
fn split_row(plane: &[f32], d: &Dims, y: isize, even: &mut [f32], odd: &mut [f32]) {
    even.fill(0.0);
    odd.fill(0.0);
    if y < 0 || y >= d.h as isize {
        return;
    }
    let row = &plane[y as usize * d.w..][..d.w];
    // p[x] = row[x - 1]: padded column x = 2t is row[2t - 1] (odd source), x = 2t + 1 is row[2t].
    for (t, v) in row.iter().enumerate() {
        let x = t + 1;
        if x % 2 == 0 {
            even[x / 2] = *v;
        } else {
            odd[x / 2] = *v;
        }
    }
}

impl Winograd3x3<'_> {
    /// One block: tile rows `ty0..ty1` of image `img`; writes output rows 2·ty0 .. 2·ty1.
    fn block(&self, d: &Dims, x: &[f32], (img, ty0, ty1): (usize, usize, usize), out: OutPtr) {
        let nt = (ty1 - ty0) * d.tw;
        let mut s = SCRATCH.take();
        let plane_len = d.h * d.w;
        let x = &x[img * d.cin * plane_len..][..d.cin * plane_len];
        {
            let w1 = d.tw + 1;
            let rows = grow(&mut s.rows, 8 * w1);
            let v = grow(&mut s.v, 16 * d.cin * nt);
            for c in 0..d.cin {
                let plane = &x[c * plane_len..][..plane_len];
                for ty in ty0..ty1 {
                    // The tile's 4 padded rows 2ty .. 2ty+3 are input rows 2ty−1 .. 2ty+2.
                    let mut parts = rows.chunks_exact_mut(w1);
                    let mut e: [&mut [f32]; 4] = Default::default();
                    let mut o: [&mut [f32]; 4] = Default::default();
                    for i in 0..4 {
                        e[i] = parts.next().unwrap_or_default();
                        o[i] = parts.next().unwrap_or_default();
                        split_row(plane, d, (2 * ty + i) as isize - 1, e[i], o[i]);
                    }
                    // Bᵀ d: row combinations s0 = d0 − d2, s1 = d1 + d2, s2 = d2 − d1, s3 = d1 − d3.
                    let comb = |a: &[f32], b: &[f32], sign: f32, t: usize| a[t] + sign * b[t];
                    let t0 = (ty - ty0) * d.tw;
                    for (i, (a, b, sign)) in [(0, 2, -1.0), (1, 2, 1.0), (2, 1, -1.0), (1, 3, -1.0)]
                        .into_iter()
                        .enumerate()
                    {
                        // Then · B over columns: with E = even, O = odd columns of that row sum,
                        // v0 = E[t] − E[t+1], v1 = O[t] + E[t+1], v2 = E[t+1] − O[t],
                        // v3 = O[t] − O[t+1].
                        let at = |j: usize| ((i * 4 + j) * d.cin + c) * nt + t0;
                        for t in 0..d.tw {
                            let (e0, e1) =
                                (comb(e[a], e[b], sign, t), comb(e[a], e[b], sign, t + 1));
                            let (o0, o1) =
                                (comb(o[a], o[b], sign, t), comb(o[a], o[b], sign, t + 1));
                            v[at(0) + t] = e0 - e1;
                            v[at(1) + t] = o0 + e1;
                            v[at(2) + t] = e1 - o0;
                            v[at(3) + t] = o0 - o1;
                        }
                    }
                }
            }
            let m = grow(&mut s.m, 16 * d.cout * nt);
            for xi in 0..16 {
                let lhs = &self.u[xi * d.cin..];
                let rhs = &v[xi * d.cin * nt..][..d.cin * nt];
                let dst = m[xi * d.cout * nt..][..d.cout * nt].as_mut_ptr();
                let lhs_rs = 16 * d.cin;
                super::matmul(d.cout, nt, d.cin, dst, nt, lhs, lhs_rs, rhs, nt, Parallelism::None);
            }
            // Aᵀ m A per tile: u0 = m0 + m1 + m2, u1 = m1 − m2 − m3 over rows, then the same
            // over columns; plus the bias; rows and columns past the output are dropped.
            let (oh, ow) = (d.h, d.w);
            for co in 0..d.cout {
                let b = self.bias.map_or(0.0, |b| b[co]);
                let mm = |i: usize, j: usize, t: usize| m[((i * 4 + j) * d.cout + co) * nt + t];
                // SAFETY: image `img`, channel `co`, rows 2ty0 .. min(2ty1, oh) lie inside the
                // (n, cout, oh, ow) output, and only this block writes them.
                let plane = unsafe {
                    std::slice::from_raw_parts_mut(
                        out.0.add((img * d.cout + co) * oh * ow),
                        oh * ow,
                    )
                };
                for ty in ty0..ty1 {
                    for tx in 0..d.tw {
                        let t = (ty - ty0) * d.tw + tx;
                        let u: [[f32; 4]; 2] = [
                            std::array::from_fn(|j| mm(0, j, t) + mm(1, j, t) + mm(2, j, t)),
                            std::array::from_fn(|j| mm(1, j, t) - mm(2, j, t) - mm(3, j, t)),
                        ];
                        for (a, ua) in u.iter().enumerate() {
                            let y = 2 * ty + a;
                            if y >= oh {
                                continue;
                            }
                            let x0 = 2 * tx;
                            plane[y * ow + x0] = ua[0] + ua[1] + ua[2] + b;
                            if x0 + 1 < ow {
                                plane[y * ow + x0 + 1] = ua[1] - ua[2] - ua[3] + b;
                            }
                        }
                    }
                }
            }
        }
        SCRATCH.set(s);
    }
}

impl CustomOp2 for Winograd3x3<'_> {
    fn name(&self) -> &'static str {
        "conv2d-winograd-3x3"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        _weight: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = crate::contiguous_f32(s1, l1, self.name())?;
        let (n, cin, h, w) = l1.shape().dims4()?;
        let (cout, wcin, kh, kw) = l2.shape().dims4()?;
        if wcin != cin || (kh, kw) != (3, 3) || self.u.len() != 16 * cout * cin {
            candle_core::bail!("{}: input {:?}, weight {:?}", self.name(), l1.dims(), l2.dims())
        }
        if self.bias.is_some_and(|b| b.len() != cout) {
            candle_core::bail!("{}: bias length", self.name())
        }
        let d = Dims { cin, cout, h, w, th: h.div_ceil(2), tw: w.div_ceil(2) };
        let len = n * cout * h * w;
        let mut out: Vec<f32> = Vec::with_capacity(len);
        let ptr = OutPtr(out.as_mut_ptr());
        // Tile rows per block: about BLOCK_TILES tiles, and at least two blocks per thread.
        let threads = candle_core::utils::get_num_threads().max(1);
        let per = (BLOCK_TILES / d.tw.max(1)).clamp(1, (n * d.th).div_ceil(2 * threads).max(1));
        let blocks: Vec<(usize, usize, usize)> = (0..n)
            .flat_map(|i| (0..d.th).step_by(per).map(move |t| (i, t, (t + per).min(d.th))))
            .collect();
        blocks.par_iter().for_each(|&b| self.block(&d, x, b, ptr));
        // SAFETY: the blocks cover every (image, channel, row) of the output once, each row
        // fully (tiles cover all columns).
        unsafe { out.set_len(len) };
        Ok((CpuStorage::F32(out), Shape::from((n, cout, h, w))))
    }
}
