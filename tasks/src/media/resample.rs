//! Pillow's bicubic resampling of 8-bit RGB (Resample.c, Pillow 7–13), bit-exact: the same
//! fixed-point weights and integer sums, horizontal pass first (over the rows the vertical pass
//! reads), then vertical. Integer sums do not depend on their order, so the kernels below are
//! free to vectorise: on x86-64 with AVX2 each output pixel reads a fixed, 4-aligned number of
//! taps (zero weights outside its window) with 32-bit vector multiplies.
//! The test oracle `resize_reference` keeps Pillow's loop shape.

const PRECISION_BITS: u32 = 32 - 8 - 2;
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// Pillow's `bicubic_filter`, a = -0.5; the expression order is kept for bit parity.
fn bicubic_filter(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Fixed-point weights of one axis: Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`.
struct Axis {
    ksize: usize,
    /// `(first input index, number of taps)` per output index.
    bounds: Vec<(usize, usize)>,
    /// `ksize` weights per output index.
    weights: Vec<i32>,
}

impl Axis {
    fn new(in_size: usize, out_size: usize) -> Self {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = 2.0 * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let mut bounds = Vec::with_capacity(out_size);
        let mut weights = vec![0i32; out_size * ksize];
        let mut w = vec![0f64; ksize];
        for o in 0..out_size {
            let center = (o as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let n = xmax.saturating_sub(xmin);
            let mut ww = 0.0;
            for (t, wt) in w.iter_mut().enumerate().take(n) {
                *wt = bicubic_filter((t as f64 + xmin as f64 - center + 0.5) * ss);
                ww += *wt;
            }
            for t in 0..n {
                let v = if ww != 0.0 { w[t] / ww } else { w[t] };
                let f = v * (1u32 << PRECISION_BITS) as f64;
                weights[o * ksize + t] = if v < 0.0 { (-0.5 + f) as i32 } else { (0.5 + f) as i32 };
            }
            bounds.push((xmin, n));
        }
        Axis { ksize, bounds, weights }
    }

    fn taps(&self, o: usize) -> (usize, &[i32]) {
        let (first, n) = self.bounds[o];
        (first, &self.weights[o * self.ksize..o * self.ksize + n])
    }

    /// Rows `first..last` of the input that the outputs read.
    fn span(&self) -> (usize, usize) {
        let (first, _) = self.bounds[0];
        let (f, n) = self.bounds[self.bounds.len() - 1];
        (first, f + n)
    }
}

/// Pillow's `clip8`: `acc >> 22` clamped to 0..=255.
#[inline(always)]
fn clip8(acc: i32) -> u8 {
    if acc >= (1 << PRECISION_BITS << 8) {
        255
    } else if acc <= 0 {
        0
    } else {
        (acc >> PRECISION_BITS) as u8
    }
}

/// Horizontal weights laid out for the AVX2 kernel: output `o` reads `taps` (a multiple of 4)
/// RGB pixels from `start[o]`, zero weights outside its window, each weight in 4 lanes (R, G, B
/// and an unused lane).
struct Packed {
    taps: usize,
    start: Vec<usize>,
    weights: Vec<i32>,
}

impl Packed {
    /// `None` when the input is narrower than the padded window.
    fn new(axis: &Axis, in_size: usize) -> Option<Self> {
        let widest = axis.bounds.iter().map(|b| b.1).max().unwrap_or(0);
        let taps = widest.div_ceil(4).max(1) * 4;
        if taps > in_size {
            return None;
        }
        let out = axis.bounds.len();
        let mut start = Vec::with_capacity(out);
        let mut weights = vec![0i32; out * taps * 4];
        for o in 0..out {
            let (first, k) = axis.taps(o);
            let s = first.min(in_size - taps);
            let row = &mut weights[o * taps * 4..(o + 1) * taps * 4];
            for (t, &w) in k.iter().enumerate() {
                row[(first - s + t) * 4..(first - s + t) * 4 + 3].fill(w);
            }
            start.push(s);
        }
        Some(Packed { taps, start, weights })
    }
}

/// The horizontal pass over `src` (rows of `width * 3` bytes): the AVX2 kernel where `packed`
/// weights exist (see [`Plan`]), else Pillow's loop.
fn horizontal(src: &[u8], width: usize, plan: &Plan, dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(p) = &plan.packed {
        // SAFETY: `packed` is only built when the CPU supports AVX2.
        unsafe { avx2::horizontal(src, width, &plan.axis, p, dst) };
        return;
    }
    horizontal_reference(src, width, &plan.axis, dst);
}

/// One axis's weights, and their AVX2 layout when the CPU has AVX2 and the input is wide enough.
struct Plan {
    in_size: usize,
    axis: Axis,
    packed: Option<Packed>,
}

impl Plan {
    fn new(in_size: usize, out_size: usize, vector: bool) -> Self {
        let axis = Axis::new(in_size, out_size);
        let packed = if vector && has_avx2() { Packed::new(&axis, in_size) } else { None };
        Plan { in_size, axis, packed }
    }
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{clip8, Axis, Packed, HALF, PRECISION_BITS};
    use std::arch::x86_64::*;

    const Z: i8 = -1; // pshufb: a set high bit writes zero
    /// From 16 RGB bytes: pixel 0 (low half) and pixel 1 (high half), one i32 lane per byte.
    const PIXELS_01: [i8; 32] = [
        0, Z, Z, Z, 1, Z, Z, Z, 2, Z, Z, Z, Z, Z, Z, Z, 3, Z, Z, Z, 4, Z, Z, Z, 5, Z, Z, Z, Z, Z,
        Z, Z,
    ];
    /// Pixels 2 and 3 likewise.
    const PIXELS_23: [i8; 32] = [
        6, Z, Z, Z, 7, Z, Z, Z, 8, Z, Z, Z, Z, Z, Z, Z, 9, Z, Z, Z, 10, Z, Z, Z, 11, Z, Z, Z, Z, Z,
        Z, Z,
    ];

    /// Four taps per step: one 16-byte load, two shuffles to i32 lanes, two 32-bit multiplies.
    /// A row whose last window would read past the end of `src` goes through the reference loop.
    #[target_feature(enable = "avx2")]
    pub(super) fn horizontal(src: &[u8], width: usize, axis: &Axis, p: &Packed, dst: &mut [u8]) {
        let stride = width * 3;
        let out_stride = p.start.len() * 3;
        // SAFETY: reading 32 bytes from 32-byte constant arrays.
        let (m01, m23) = unsafe {
            (
                _mm256_loadu_si256(PIXELS_01.as_ptr().cast()),
                _mm256_loadu_si256(PIXELS_23.as_ptr().cast()),
            )
        };
        let lanes = p.taps * 4;
        for (r, out) in dst.chunks_exact_mut(out_stride).enumerate().take(src.len() / stride) {
            let rest = &src[r * stride..];
            // Every window ends at or before pixel `width`; its last load reads 4 bytes beyond.
            if rest.len() < stride + 4 {
                super::horizontal_reference(&rest[..stride], width, axis, out);
                continue;
            }
            for ((px, &s), w) in
                out.chunks_exact_mut(3).zip(&p.start).zip(p.weights.chunks_exact(lanes))
            {
                let mut acc = _mm256_setzero_si256();
                for (q, wq) in w.chunks_exact(16).enumerate() {
                    let at = (s + 4 * q) * 3;
                    debug_assert!(at + 16 <= rest.len());
                    // SAFETY: at + 16 <= (s + taps) * 3 + 4 <= stride + 4 <= rest.len(); the
                    // weights chunk holds 16 i32.
                    let (x, w01, w23) = unsafe {
                        (
                            _mm256_broadcastsi128_si256(_mm_loadu_si128(
                                rest.as_ptr().add(at).cast(),
                            )),
                            _mm256_loadu_si256(wq.as_ptr().cast()),
                            _mm256_loadu_si256(wq.as_ptr().add(8).cast()),
                        )
                    };
                    acc =
                        _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_shuffle_epi8(x, m01), w01));
                    acc =
                        _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_shuffle_epi8(x, m23), w23));
                }
                let sum =
                    _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256::<1>(acc));
                let sum = _mm_add_epi32(sum, _mm_set1_epi32(HALF));
                // clip8 = clamp(acc >> 22, 0, 255): signed then unsigned saturating packs.
                let v = _mm_srai_epi32::<{ PRECISION_BITS as i32 }>(sum);
                let b = _mm_packus_epi16(_mm_packs_epi32(v, v), v);
                px.copy_from_slice(&_mm_cvtsi128_si32(b).to_le_bytes()[..3]);
                debug_assert_eq!(px[0], clip8(_mm_cvtsi128_si32(sum)));
            }
        }
    }
}

/// One output row of the vertical pass: `rows[t]` are the input rows, `k[t]` their weights.
#[inline(always)]
fn vertical_row(rows: &[u8], stride: usize, k: &[i32], acc: &mut [i32], dst: &mut [u8]) {
    acc.fill(HALF);
    for (row, &w) in rows.chunks_exact(stride).zip(k) {
        for (a, &x) in acc.iter_mut().zip(row) {
            *a += x as i32 * w;
        }
    }
    for (d, &a) in dst.iter_mut().zip(acc.iter()) {
        *d = clip8(a);
    }
}

/// [`vertical_row`] compiled for AVX2 when the CPU has it (the compiler vectorises the loop).
fn vertical(rows: &[u8], stride: usize, k: &[i32], acc: &mut [i32], dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx2(rows: &[u8], stride: usize, k: &[i32], acc: &mut [i32], dst: &mut [u8]) {
            vertical_row(rows, stride, k, acc, dst)
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { avx2(rows, stride, k, acc, dst) };
        }
    }
    vertical_row(rows, stride, k, acc, dst)
}

/// Pillow's bicubic resize with its scratch buffers and weights kept between images.
#[derive(Default)]
pub struct Resampler {
    /// Weights by axis (horizontal plans carry the vector layout), a few sizes at most.
    plans: Vec<(bool, Plan)>,
    horiz: Vec<u8>,
    acc: Vec<i32>,
    line: Vec<u8>,
}

impl Resampler {
    /// Frees the row buffer if it grew beyond `bytes` (a very large image).
    pub fn trim(&mut self, bytes: usize) {
        if self.horiz.capacity() > bytes {
            self.horiz = Vec::new();
        }
    }

    fn plan(&mut self, horizontal: bool, in_size: usize, out_size: usize) -> usize {
        let found = self.plans.iter().position(|(h, p)| {
            *h == horizontal && p.in_size == in_size && p.axis.bounds.len() == out_size
        });
        found.unwrap_or_else(|| {
            self.plans.push((horizontal, Plan::new(in_size, out_size, horizontal)));
            self.plans.len() - 1
        })
    }

    /// Resizes 8-bit RGB (`width × height`, HWC) to `out_w × out_h` like Pillow's
    /// `Image.resize((out_w, out_h), BICUBIC)`, handing each output row (`out_w × 3` bytes) to
    /// `sink(y, row)` in order. A pass whose size does not change is skipped, as Pillow does.
    pub fn resize_rows(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
        out_w: usize,
        out_h: usize,
        mut sink: impl FnMut(usize, &[u8]),
    ) {
        assert_eq!(rgb.len(), width * height * 3, "RGB buffer size");
        let stride = out_w * 3;
        if self.plans.len() > 6 {
            self.plans.clear(); // before taking indices: at most two plans are added below
        }
        let vert = (out_h != height).then(|| self.plan(false, height, out_h));
        let (first, last) = vert.map_or((0, height), |v| self.plans[v].1.axis.span());
        let (rows, row0): (&[u8], usize) = if out_w != width {
            let h = self.plan(true, width, out_w);
            self.horiz.resize((last - first) * stride, 0);
            horizontal(
                &rgb[first * width * 3..last * width * 3],
                width,
                &self.plans[h].1,
                &mut self.horiz,
            );
            (&self.horiz, first)
        } else {
            (rgb, 0)
        };
        let Some(v) = vert else {
            for (y, row) in rows.chunks_exact(stride).enumerate() {
                sink(y, row);
            }
            return;
        };
        self.acc.resize(stride, 0);
        self.line.resize(stride, 0);
        let axis = &self.plans[v].1.axis;
        for y in 0..out_h {
            let (ymin, k) = axis.taps(y);
            let window = &rows[(ymin - row0) * stride..(ymin - row0 + k.len()) * stride];
            vertical(window, stride, k, &mut self.acc, &mut self.line);
            sink(y, &self.line);
        }
    }
}

/// The horizontal pass in Pillow's loop shape (any width).
fn horizontal_reference(src: &[u8], width: usize, axis: &Axis, dst: &mut [u8]) {
    let out_w = axis.bounds.len();
    for (row, out) in src.chunks_exact(width * 3).zip(dst.chunks_exact_mut(out_w * 3)) {
        for (o, px) in out.chunks_exact_mut(3).enumerate() {
            let (first, k) = axis.taps(o);
            let mut a = [HALF; 3];
            for (x, &w) in row[first * 3..].chunks_exact(3).zip(k) {
                for c in 0..3 {
                    a[c] += x[c] as i32 * w;
                }
            }
            for c in 0..3 {
                px[c] = clip8(a[c]);
            }
        }
    }
}

/// Pillow's resize in Pillow's own loop order, without vector layouts: the test oracle.
#[cfg(test)]
fn resize_reference(
    rgb: &[u8],
    width: usize,
    height: usize,
    out_w: usize,
    out_h: usize,
) -> Vec<u8> {
    let vert = (out_h != height).then(|| Axis::new(height, out_h));
    let (first, last) = vert.as_ref().map_or((0, height), Axis::span);
    let (rows, row0) = if out_w != width {
        let axis = Axis::new(width, out_w);
        let mut out = vec![0u8; (last - first) * out_w * 3];
        horizontal_reference(&rgb[first * width * 3..last * width * 3], width, &axis, &mut out);
        (out, first)
    } else {
        (rgb.to_vec(), 0)
    };
    let Some(v) = vert else { return rows };
    let stride = out_w * 3;
    let mut out = vec![0u8; out_h * stride];
    for (y, dst) in out.chunks_exact_mut(stride).enumerate() {
        let (ymin, k) = v.taps(y);
        for (j, d) in dst.iter_mut().enumerate() {
            let mut a = HALF;
            for (t, &w) in k.iter().enumerate() {
                a += rows[(ymin + t - row0) * stride + j] as i32 * w;
            }
            *d = clip8(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Smooth gradients plus noise and saturated runs: exercises the clip at both ends.
    fn noise(w: usize, h: usize, seed: u64) -> Vec<u8> {
        let mut rng = crate::rng::SplitMix64::new(seed);
        (0..w * h * 3)
            .map(|i| match rng.below(5) {
                0 => 0,
                1 => 255,
                _ => ((i / 3 % w * 255 / w + rng.below(64)) % 256) as u8,
            })
            .collect()
    }

    fn fast(r: &mut Resampler, rgb: &[u8], w: usize, h: usize, ow: usize, oh: usize) -> Vec<u8> {
        let mut out = vec![0u8; ow * oh * 3];
        let mut next = 0;
        r.resize_rows(rgb, w, h, ow, oh, |y, row| {
            assert_eq!(y, next);
            next += 1;
            out[y * ow * 3..(y + 1) * ow * 3].copy_from_slice(row);
        });
        assert_eq!(next, oh);
        out
    }

    #[test]
    fn vector_kernels_equal_the_reference_loop() {
        let sizes = [
            (640, 480, 224, 224),
            (480, 640, 224, 224),
            (500, 375, 224, 224),
            (1386, 924, 224, 224),
            (224, 300, 224, 224),
            (300, 224, 224, 224),
            (100, 80, 224, 224),
            (7, 5, 224, 224),
            (23, 19, 4, 3),
            (224, 224, 224, 224),
            (3, 1, 1, 1),
        ];
        // One resampler throughout, twice over: its cached weights and buffers must not leak
        // from one size into the next.
        let mut r = Resampler::default();
        for (i, &(w, h, ow, oh)) in sizes.iter().chain(sizes.iter().rev()).enumerate() {
            let img = noise(w, h, i as u64);
            assert_eq!(
                fast(&mut r, &img, w, h, ow, oh),
                resize_reference(&img, w, h, ow, oh),
                "{w}x{h} -> {ow}x{oh}"
            );
        }
    }

    #[test]
    fn vector_horizontal_pass_equals_the_reference_on_every_row() {
        let (w, h) = (641, 37);
        let img = noise(w, h, 9);
        let plan = Plan::new(w, 224, true);
        assert_eq!(plan.packed.is_some(), has_avx2());
        let (mut a, mut b) = (vec![0u8; h * 224 * 3], vec![0u8; h * 224 * 3]);
        horizontal_reference(&img, w, &plan.axis, &mut a);
        horizontal(&img, w, &plan, &mut b);
        assert_eq!(a, b);
        // A sub-slice of rows (the vertical span): the last row has no bytes after it.
        horizontal(&img[w * 3..w * 3 * 5], w, &plan, &mut b[..224 * 3 * 4]);
        assert_eq!(a[224 * 3..224 * 3 * 5], b[..224 * 3 * 4]);
    }

    #[test]
    fn packed_windows_stay_inside_the_row() {
        for (w, ow) in [(640, 224), (17, 224), (224 + 1, 224), (9, 2)] {
            let axis = Axis::new(w, ow);
            if let Some(p) = Packed::new(&axis, w) {
                assert!(p.start.iter().all(|&s| s + p.taps <= w));
                assert_eq!(p.taps % 4, 0);
                assert_eq!(p.weights.len(), ow * p.taps * 4);
            }
        }
    }
}
