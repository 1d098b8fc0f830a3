//! Helpers of the parity tests: fixture paths and tolerance checks.
use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};

/// `../shared/fixtures/NAME` beside the repository root.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures").join(name)
}

pub fn vectors(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture(name).join("vectors.safetensors"), &Device::Cpu).expect("fixture vectors")
}

pub fn f32s(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

/// Elementwise `|ours - ref| <= rtol * |ref| + atol`; returns the worst excess ratio for messages.
pub fn assert_close(what: &str, ours: &Tensor, reference: &Tensor, rtol: f32, atol: f32) {
    assert_eq!(ours.dims(), reference.dims(), "{what}: shape");
    let (a, b) = (f32s(ours), f32s(reference));
    let (mut worst, mut at) = (0f32, 0);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let r = (x - y).abs() / (rtol * y.abs() + atol);
        if r > worst || r.is_nan() {
            (worst, at) = (r, i);
        }
    }
    assert!(worst <= 1.0, "{what}: element {at}: ours {} vs ref {} (error {worst:.2}x the tolerance)", a[at], b[at]);
}

/// `max |ours - ref| <= rel * max |ref|` (the fixtures' chained-step criterion).
pub fn assert_close_max(what: &str, ours: &Tensor, reference: &Tensor, rel: f32) {
    assert_eq!(ours.dims(), reference.dims(), "{what}: shape");
    let (a, b) = (f32s(ours), f32s(reference));
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
    let diff = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff <= rel * scale, "{what}: max |diff| {diff:e} > {rel:e} x max|ref| {scale}");
}
