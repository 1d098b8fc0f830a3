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

/// Winograd F(2×2, 3×3) against candle's direct `conv2d` (with the bias added): even and odd
/// sizes (partial tiles in both directions), maps smaller than a tile, several blocks per image
/// and batches; the error stays at float32 rounding of the direct sum.
#[test]
fn winograd_matches_candle_conv2d() {
    let cases = [
        ((2, 8, 16, 16), 12),
        ((1, 5, 9, 7), 3),
        ((3, 4, 1, 1), 2),
        ((1, 3, 2, 5), 4),
        ((1, 16, 70, 66), 8), // more tiles than one block
        ((2, 64, 8, 8), 64),
    ];
    for (i, &(xs, cout)) in cases.iter().enumerate() {
        let (x, w) = (random(xs, 10 + i as u64), random((cout, xs.1, 3, 3), 20 + i as u64));
        let bias: Vec<f32> = (0..cout).map(|c| c as f32 * 0.25 - 1.0).collect();
        let u = winograd::transform_weights(&values(&w), cout, xs.1);
        let op = winograd::Winograd3x3 { u: &u, bias: Some(&bias) };
        let ours = x.apply_op2_no_bwd(&w, &op).unwrap();
        let b = Tensor::from_slice(&bias, (1, cout, 1, 1), &Device::Cpu).unwrap();
        let theirs = x.conv2d(&w, 1, 1, 1, 1).unwrap().broadcast_add(&b).unwrap();
        let d = rel_diff(&ours, &theirs);
        assert!(d < 2e-6, "case {i} {xs:?} -> {cout}: relative difference {d}");
    }
    // Wrong transform length or bias length: errors.
    let (x, w) = (random((1, 4, 6, 6), 1), random((5, 4, 3, 3), 2));
    let short = vec![0f32; 10];
    assert!(x.apply_op2_no_bwd(&w, &winograd::Winograd3x3 { u: &short, bias: None }).is_err());
    let u = winograd::transform_weights(&values(&w), 5, 4);
    let op = winograd::Winograd3x3 { u: &u, bias: Some(&[1.0]) };
    assert!(x.apply_op2_no_bwd(&w, &op).is_err());
}

/// The layer takes the Winograd path from 128 channels and 256 positions (3×3, stride 1,
/// padding 1) and agrees with its im2col path (a clone of the layer included); not below.
#[test]
fn conv2d_layer_winograd_agrees_with_im2col() {
    let (x, w) = (random((2, 128, 18, 15), 7), random((136, 128, 3, 3), 8));
    let bias = random((1, 1, 1, 136), 9).flatten_all().unwrap();
    let layer = Conv2d::new(w.clone(), Some(bias.clone()), 1, 1).unwrap();
    assert_eq!(layer.winograd_applies(&x).unwrap(), winograd_enabled());
    let small = random((1, 128, 15, 15), 10);
    assert!(!layer.winograd_applies(&small).unwrap(), "225 positions");
    let narrow = Conv2d::new(random((136, 64, 3, 3), 11), None, 1, 1).unwrap();
    assert!(!narrow.winograd_applies(&random((1, 64, 16, 16), 12)).unwrap(), "64 channels");
    let ours = candle_core::Module::forward(&layer.clone(), &x).unwrap();
    let mut op = Conv2dGemm::new(1, (1, 1), 1);
    let b = values(&bias);
    op.epilogue = Epilogue::Bias(&b);
    let d = rel_diff(&ours, &op.forward(&x, &w).unwrap());
    assert!(d < 2e-6, "{d}");
}
