//! Parity of the GEMM convolution with candle's `conv2d` on Inception-, UNet- and VAE-like shapes.
use candle_core::{DType, Device, Tensor};

use super::*;
use crate::rng::SplitMix64;

fn random(shape: (usize, usize, usize, usize), seed: u64) -> Tensor {
    let mut r = SplitMix64::new(seed);
    let n = shape.0 * shape.1 * shape.2 * shape.3;
    let v: Vec<f32> = (0..n).map(|_| (r.uniform() * 2.0 - 1.0) as f32).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Largest difference relative to the largest magnitude of the reference.
fn rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (values(a), values(b));
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-30);
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max) / scale
}

/// (input, weight, stride, padding, dilation)
type Case =
    ((usize, usize, usize, usize), (usize, usize, usize, usize), usize, (usize, usize), usize);

const CASES: [Case; 9] = [
    ((2, 3, 37, 41), (32, 3, 3, 3), 2, (0, 0), 1), // Inception stem, stride 2, no padding
    ((1, 32, 20, 19), (64, 32, 3, 3), 1, (1, 1), 1), // 3×3 "same"
    ((2, 40, 17, 17), (48, 40, 1, 7), 1, (0, 3), 1), // factorised 1×7
    ((2, 40, 17, 17), (48, 40, 7, 1), 1, (3, 0), 1), // factorised 7×1
    ((3, 96, 8, 8), (80, 96, 1, 1), 1, (0, 0), 1), // pointwise, small maps
    ((1, 8, 40, 40), (16, 8, 1, 1), 1, (0, 0), 1), // pointwise, more positions than a block
    ((1, 8, 45, 40), (8, 8, 3, 3), 1, (1, 1), 1),  // 3×3 over several blocks
    ((1, 16, 16, 16), (16, 16, 3, 3), 2, (1, 1), 1), // UNet downsampler
    ((1, 4, 15, 15), (6, 4, 3, 3), 1, (2, 2), 2),  // dilation
];

#[test]
fn matches_candle_conv2d() {
    for (i, &(xs, ws, stride, pad, dil)) in CASES.iter().enumerate() {
        let (x, w) = (random(xs, 2 * i as u64), random(ws, 2 * i as u64 + 1));
        let op = Conv2dGemm::new(stride, pad, dil);
        let ours = op.forward(&x, &w).unwrap();
        let theirs = op.fallback(&x, &w).unwrap();
        let d = rel_diff(&ours, &theirs);
        assert!(d < 1e-5, "case {i} {xs:?} * {ws:?}: relative difference {d}");
    }
}

#[test]
fn bias_and_folded_batchnorm_relu_match_the_fallback() {
    let (x, w) = (random((2, 64, 11, 13), 1), random((24, 64, 3, 3), 2));
    let bias: Vec<f32> = (0..24).map(|c| c as f32 * 0.1 - 1.0).collect();
    let mut op = Conv2dGemm::new(1, (1, 1), 1);
    op.epilogue = Epilogue::Bias(&bias);
    let d = rel_diff(&op.forward(&x, &w).unwrap(), &op.fallback(&x, &w).unwrap());
    assert!(d < 1e-5, "bias: {d}");

    let alpha: Vec<f64> = (0..24).map(|c| 0.5 + c as f64 * 0.05).collect();
    let beta: Vec<f64> = (0..24).map(|c| c as f64 * 0.2 - 2.0).collect();
    // 64 channels × 9 taps in chunks of 20 channels (180 terms): four float32 partial sums.
    op.epilogue = Epilogue::AffineRelu { alpha: &alpha, beta: &beta };
    op.k_chunk = Some(180);
    let ours = op.forward(&x, &w).unwrap();
    let d = rel_diff(&ours, &op.fallback(&x, &w).unwrap());
    assert!(d < 1e-5, "affine + relu: {d}");
    let v = values(&ours);
    assert!(v.iter().all(|&x| x >= 0.0) && v.contains(&0.0) && v.iter().any(|&x| x > 0.0));
}

#[test]
fn other_dtypes_fall_back_and_bad_shapes_are_errors() {
    let (x, w) = (random((1, 5, 9, 9), 3), random((7, 5, 3, 3), 4));
    let op = Conv2dGemm::new(1, (1, 1), 1);
    let f32_out = op.forward(&x, &w).unwrap();
    let (x64, w64) = (x.to_dtype(DType::F64).unwrap(), w.to_dtype(DType::F64).unwrap());
    let f64_out = op.forward(&x64, &w64).unwrap().to_dtype(DType::F32).unwrap();
    assert!(rel_diff(&f32_out, &f64_out) < 1e-5);
    // A strided (transposed) input takes candle's path and agrees.
    let xt = x.transpose(2, 3).unwrap();
    let d = rel_diff(
        &op.forward(&xt, &w).unwrap(),
        &op.forward(&xt.contiguous().unwrap(), &w).unwrap(),
    );
    assert!(d < 1e-6);
    let too_big = random((7, 5, 12, 12), 5);
    assert!(Conv2dGemm::new(1, (0, 0), 1).forward(&x, &too_big).is_err());
}
