//! Exact (erf) GELU, `x · Φ(x)` with `Φ(x) = erfc(−x/√2) / 2`, for contiguous f32 tensors on
//! the CPU, written so that the compiler vectorises it: candle 0.11's `gelu_erf` calls the scalar,
//! branchy `libm::erff` per element and rounds `1 + erf` in f32.
//!
//! Per element, in f64 (8 lanes with AVX-512, 4 with AVX2, chosen at run time, else the baseline
//! 2 lanes):
//! `erfc(z) = t · exp(h(t) − z²)` with `z = |x|/√2` and `t = 1 / (1 + z/2)`, where `h` is a
//! degree-14 polynomial fit on `t ∈ [0.07, 1]` (`z ≤ 26.6`; max |error| of the fit 3.4e-11,
//! `scripts/gelu_erfc_fit.py` re-derives it) and `exp` is a range reduction plus a Taylor
//! polynomial, as fused multiply-adds under AVX2. `Φ(x)` is `erfc/2` for `x < 0` (no
//! cancellation in the negative tail) and `1 − erfc/2` otherwise. The result is rounded once to
//! f32: within 1 ulp of `x · erfc(−x/√2) / 2` evaluated in f64 by libm over the whole f32 range
//! (tests below). [`gelu_erf`] takes this path for f32 on the CPU (strided inputs are copied
//! first); other dtypes and devices use candle's `gelu_erf`.
use candle_core::{CpuStorage, CustomOp1, DType, InplaceOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `h(t) = ln(erfc(z) / t) + z²`, `t = 1 / (1 + z/2)`, as a polynomial in
/// `s = (2t − T_LO − T_HI) / (T_HI − T_LO) ∈ [−1, 1]`: the degree-14 Chebyshev fit of
/// `scripts/gelu_erfc_fit.py` converted to monomials (`numpy.polynomial.chebyshev.cheb2poly`;
/// the two forms agree to 4.4e-16 on [−1, 1]), lowest degree first.
const H: [f64; 15] = [
    -0.6244933834242634,
    0.6310695898403923,
    0.03220524020418159,
    -0.03958840673904682,
    -0.004999278290030418,
    0.006484902419878001,
    0.0003942223688720423,
    -0.0013926980199406025,
    0.0001362640116263056,
    0.0002963185812724266,
    -9.181062537269882e-05,
    -5.037425250886347e-05,
    2.889136431677184e-05,
    4.84596782537927e-06,
    -4.323431817625669e-06,
];
const T_LO: f64 = 0.07;
const T_HI: f64 = 1.0;

/// `a · b + c`, fused where the caller is compiled with FMA.
#[inline(always)]
fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `exp(a)` for `a ≤ 709`; 0 below −708 (where the f32 result is 0 anyway). Branch-free.
#[inline(always)]
fn exp_f64<const FMA: bool>(a: f64) -> f64 {
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    // 1.5 · 2^52: adding it rounds to an integer held in the low mantissa bits.
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    // 1/k!, k = 0..=9: the Taylor series to r^9/9!, truncation below 1e-11 relative for
    // |r| ≤ ln2/2.
    const INV_FACT: [f64; 10] = [
        1.0,
        1.0,
        0.5,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40320.0,
        1.0 / 362_880.0,
    ];
    let ac = a.max(-708.0);
    let shifted = madd::<FMA>(ac, std::f64::consts::LOG2_E, MAGIC);
    let n = shifted - MAGIC;
    let r = madd::<FMA>(-n, LN2_LO, madd::<FMA>(-n, LN2_HI, ac)); // |r| ≤ ln2/2 (+ rounding)
    let mut p = INV_FACT[9];
    for &c in INV_FACT[..9].iter().rev() {
        p = madd::<FMA>(p, r, c);
    }
    // The low bits of `shifted` are n (|n| ≤ 1022); (n + 1023) << 52 is 2^n.
    let scale = f64::from_bits(shifted.to_bits().wrapping_add(1023) << 52);
    if a < -708.0 {
        0.0
    } else {
        p * scale
    }
}

/// `x · Φ(x)` for one f32, computed in f64.
#[inline(always)]
fn gelu_one<const FMA: bool>(x: f32) -> f32 {
    let xd = x as f64;
    let z = xd.abs() * std::f64::consts::FRAC_1_SQRT_2;
    let t = 1.0 / madd::<FMA>(0.5, z, 1.0);
    let s = madd::<FMA>(t, 2.0 / (T_HI - T_LO), -(T_LO + T_HI) / (T_HI - T_LO)).max(-1.0);
    let mut h = H[14];
    for &c in H[..14].iter().rev() {
        h = madd::<FMA>(h, s, c);
    }
    let half_erfc = 0.5 * t * exp_f64::<FMA>(madd::<FMA>(-z, z, h));
    let phi = if xd < 0.0 { half_erfc } else { 1.0 - half_erfc };
    (xd * phi) as f32
}

/// `x · Φ(x)` for one f32 (the portable form, without FMA).
pub fn gelu_erf_scalar(x: f32) -> f32 {
    gelu_one::<false>(x)
}

/// Elements per unrolled block: several independent vectors in flight hide the latency of the
/// dependent multiply-add chains.
const BLOCK: usize = 16;

#[inline(always)]
fn gelu_loop<const FMA: bool>(src: &[f32], dst: &mut [f32]) {
    let mut d = dst.chunks_exact_mut(BLOCK);
    let mut s = src.chunks_exact(BLOCK);
    for (o, x) in (&mut d).zip(&mut s) {
        for j in 0..BLOCK {
            o[j] = gelu_one::<FMA>(x[j]);
        }
    }
    for (o, &x) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *o = gelu_one::<FMA>(x);
    }
}

fn gelu_slice_generic(src: &[f32], dst: &mut [f32]) {
    gelu_loop::<false>(src, dst)
}

/// The same loop compiled for AVX2 + FMA (4 f64 lanes, fused multiply-adds).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_slice_avx2(src: &[f32], dst: &mut [f32]) {
    gelu_loop::<true>(src, dst)
}

/// The same loop compiled for AVX-512 (8 f64 lanes): the same operations in the same order as
/// [`gelu_slice_avx2`], so the same bits.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn gelu_slice_avx512(src: &[f32], dst: &mut [f32]) {
    gelu_loop::<true>(src, dst)
}

/// `dst[i] = gelu(src[i])`, with the widest vector code this CPU runs.
pub fn gelu_erf_slice(src: &[f32], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
    {
        // SAFETY: the three features were just detected.
        unsafe { gelu_slice_avx512(src, dst) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: both features were just detected.
        unsafe { gelu_slice_avx2(src, dst) };
        return;
    }
    gelu_slice_generic(src, dst)
}

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

struct GeluErfF32;

impl CustomOp1 for GeluErfF32 {
    fn name(&self) -> &'static str {
        "gelu-erf-f32"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = crate::contiguous_f32(storage, layout, self.name())?;
        let mut out = vec![0f32; src.len()];
        out.par_chunks_mut(CHUNK)
            .zip(src.par_chunks(CHUNK))
            .for_each(|(d, s)| gelu_erf_slice(s, d));
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// `xs[i] = gelu(xs[i])`, through [`gelu_erf_slice`] a cache-sized block at a time.
fn gelu_erf_slice_in_place(xs: &mut [f32]) {
    let mut src = [0f32; 1024];
    for block in xs.chunks_mut(src.len()) {
        let src = &mut src[..block.len()];
        src.copy_from_slice(block);
        gelu_erf_slice(src, block);
    }
}

struct GeluErfF32InPlace;

impl InplaceOp1 for GeluErfF32InPlace {
    fn name(&self) -> &'static str {
        "gelu-erf-f32-in-place"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        match (storage, layout.contiguous_offsets()) {
            (CpuStorage::F32(data), Some((start, end))) => {
                data[start..end].par_chunks_mut(CHUNK).for_each(gelu_erf_slice_in_place);
                Ok(())
            }
            _ => candle_core::bail!("{}: contiguous float32 CPU tensors only", self.name()),
        }
    }
}

/// [`gelu_erf`] of a tensor that shares its storage with no other live tensor (a layer's fresh
/// output): f32 on the CPU is overwritten in place, saving a buffer as large as the input.
pub fn gelu_erf_owned(xs: Tensor) -> Result<Tensor> {
    if xs.dtype() == DType::F32 && xs.device().is_cpu() && xs.is_contiguous() {
        xs.inplace_op1(&GeluErfF32InPlace)?;
        Ok(xs)
    } else {
        gelu_erf(&xs)
    }
}

/// Exact GELU: the vectorised path for f32 on the CPU, candle's `gelu_erf` otherwise.
pub fn gelu_erf(xs: &Tensor) -> Result<Tensor> {
    if xs.dtype() == DType::F32 && xs.device().is_cpu() {
        xs.contiguous()?.apply_op1_no_bwd(&GeluErfF32)
    } else {
        xs.gelu_erf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// `x · erfc(−x/√2) / 2` in f64 (libm's erfc, < 1 ulp in f64), rounded to f32.
    fn reference(x: f32) -> f32 {
        let xd = x as f64;
        (0.5 * xd * candle_core::cpu::erf::erfc_f64(-xd * std::f64::consts::FRAC_1_SQRT_2)) as f32
    }

    /// Distance in representable f32 values (same sign assumed by the caller's inputs).
    fn ulps(a: f32, b: f32) -> u64 {
        let key = |v: f32| {
            let i = v.to_bits() as i32;
            if i < 0 {
                i64::from(i32::MIN) - i64::from(i)
            } else {
                i64::from(i)
            }
        };
        (key(a) - key(b)).unsigned_abs()
    }

    /// Every 257th f32 bit pattern (both signs; ~33 M values, incl. denormals and the tails), plus
    /// a dense grid on [-10, 10] and the special values.
    fn sweep() -> Vec<f32> {
        let mut xs: Vec<f32> = (0..=u32::MAX / 257).map(|i| f32::from_bits(i * 257)).collect();
        xs.extend((-2_000_000..=2_000_000).map(|i| i as f32 * 5e-6));
        xs.extend([0.0, -0.0, 1e-30, -1e-30, 37.5, -37.5, 1e30, -1e30, f32::MAX, f32::MIN]);
        xs.extend([f32::INFINITY, f32::NEG_INFINITY, f32::MIN_POSITIVE, -f32::MIN_POSITIVE]);
        xs.retain(|x| !x.is_nan());
        xs
    }

    #[test]
    fn in_place_gives_the_bits_of_the_copying_op() {
        let v: Vec<f32> = (0..5000).map(|i| (i as f32 * 0.731).sin() * 6.0).collect();
        let x = Tensor::from_vec(v, (2, 2500), &Device::Cpu).unwrap();
        let want = gelu_erf(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let owned = (x * 1.0).unwrap();
        let got = gelu_erf_owned(owned).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));
    }

    #[test]
    fn within_one_ulp_of_libm_erfc_over_the_f32_range() {
        let xs = sweep();
        let mut out = vec![0f32; xs.len()];
        gelu_erf_slice(&xs, &mut out);
        let mut portable = vec![0f32; xs.len()];
        gelu_slice_generic(&xs, &mut portable);
        // The fused and unfused forms round differently, by at most 1 ulp of each other.
        for ((&x, &a), &b) in xs.iter().zip(&out).zip(&portable) {
            assert!(ulps(a, b) <= 1 || (a.is_nan() && b.is_nan()), "x = {x:e}: {a:e} vs {b:e}");
        }
        let (mut worst_ulps, mut worst_at, mut worst_abs) = (0u64, 0f32, 0f32);
        for (&x, &y) in xs.iter().zip(&out) {
            let r = reference(x);
            if r.is_nan() {
                // -inf · 0: both sides NaN.
                assert!(y.is_nan(), "gelu({x}) = {y}, reference NaN");
                continue;
            }
            let d = ulps(y, r);
            if d > worst_ulps {
                (worst_ulps, worst_at) = (d, x);
            }
            if x.abs() <= 10.0 {
                worst_abs = worst_abs.max((y - r).abs());
            }
        }
        eprintln!(
            "{} values: max {worst_ulps} ulp (at x = {worst_at:e}), max |err| {worst_abs:e} for |x| ≤ 10",
            xs.len()
        );
        assert!(worst_ulps <= 1, "{worst_ulps} ulp at x = {worst_at:e}");
        assert!(worst_abs <= 1e-6, "max |err| {worst_abs:e}");
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_and_avx2_forms_give_the_same_bits() {
        let has = |f: &str| match f {
            "avx512f" => std::is_x86_feature_detected!("avx512f"),
            _ => std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"),
        };
        if !has("avx2") {
            eprintln!("no AVX2 + FMA here: nothing to compare");
            return;
        }
        let xs: Vec<f32> = sweep().into_iter().step_by(7).collect();
        let (mut a, mut b) = (vec![0f32; xs.len()], vec![0f32; xs.len()]);
        // SAFETY: AVX2 + FMA detected above.
        unsafe { gelu_slice_avx2(&xs, &mut a) };
        if has("avx512f") {
            // SAFETY: AVX-512F detected (AVX2 + FMA above).
            unsafe { gelu_slice_avx512(&xs, &mut b) };
        } else {
            eprintln!("no AVX-512 here: the dispatching entry point against AVX2 only");
            gelu_erf_slice(&xs, &mut b);
        }
        for ((x, p), q) in xs.iter().zip(&a).zip(&b) {
            assert_eq!(p.to_bits(), q.to_bits(), "x = {x:e}: AVX2 {p:e}, AVX-512 {q:e}");
        }
    }

    #[test]
    fn special_values() {
        let cases: [(f32, f32); 6] = [
            (0.0, 0.0),
            (f32::INFINITY, f32::INFINITY),
            (1e30, 1e30),
            (-1e30, -0.0),
            (-40.0, -0.0),
            (40.0, 40.0),
        ];
        for (x, want) in cases {
            let got = gelu_erf_scalar(x);
            assert_eq!(got.to_bits(), want.to_bits(), "gelu({x}) = {got:e}, want {want:e}");
        }
        assert_eq!(gelu_erf_scalar(-0.0).to_bits(), (-0.0f32).to_bits());
        assert!(gelu_erf_scalar(f32::NAN).is_nan());
        // -inf · Φ(-inf) = -inf · 0, as in candle's `gelu_erf`.
        assert!(gelu_erf_scalar(f32::NEG_INFINITY).is_nan());
        assert!(gelu_erf_scalar(-1e-30) <= 0.0 && gelu_erf_scalar(-1e-30) > -1e-30);
    }

    #[test]
    fn matches_candle_gelu_erf() -> Result<()> {
        let dev = Device::Cpu;
        let xs: Vec<f32> = (-300_000..300_000).map(|i| i as f32 * 1e-4).collect();
        let t = Tensor::from_vec(xs.clone(), (600, 1000), &dev)?;
        let ours = gelu_erf(&t)?.flatten_all()?.to_vec1::<f32>()?;
        let theirs = t.gelu_erf()?.flatten_all()?.to_vec1::<f32>()?;
        // candle rounds 1 + erf(x/√2) in f32: up to ~|x|·2^-24 apart, nothing more.
        let mut worst = 0f32;
        for ((&x, &a), &b) in xs.iter().zip(&ours).zip(&theirs) {
            let d = (a - b).abs();
            assert!(d <= 1.2e-7 * x.abs().max(1.0), "x = {x}: ours {a:e}, candle {b:e}");
            worst = worst.max(d);
        }
        eprintln!("max |ours - candle gelu_erf| on [-30, 30]: {worst:e}");
        // A strided input (a transposed view) and a bf16 input take the copies/fallback.
        let tt = t.t()?;
        let a = gelu_erf(&tt)?.contiguous()?;
        let b = gelu_erf(&t)?.t()?.contiguous()?;
        assert_eq!(a.flatten_all()?.to_vec1::<f32>()?, b.flatten_all()?.to_vec1::<f32>()?);
        let h = t.to_dtype(DType::BF16)?;
        assert_eq!(
            gelu_erf(&h)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
            h.gelu_erf()?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?
        );
        Ok(())
    }
}
