//! Helpers of the parity tests (this crate's and the harness's command-level ones): fixture paths
//! and tolerance checks. Compiled for tests and with the `testing` feature only.
use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};

/// `../shared/fixtures/NAME` beside the repository root.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures").join(name)
}

pub fn vectors(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture(name).join("vectors.safetensors"), &Device::Cpu)
        .expect("fixture vectors")
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
    assert!(
        worst <= 1.0,
        "{what}: element {at}: ours {} vs ref {} (error {worst:.2}x the tolerance)",
        a[at],
        b[at]
    );
}

/// `max |ours - ref| <= rel * max |ref|` (the fixtures' chained-step criterion).
pub fn assert_close_max(what: &str, ours: &Tensor, reference: &Tensor, rel: f32) {
    assert_eq!(ours.dims(), reference.dims(), "{what}: shape");
    let (a, b) = (f32s(ours), f32s(reference));
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
    let diff = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff <= rel * scale, "{what}: max |diff| {diff:e} > {rel:e} x max|ref| {scale}");
}

/// `|ours − ref| ≤ tol + tol·|ref|` elementwise over the flattened tensors (emu-tiny's README);
/// only the element counts must agree.
pub fn assert_close_flat(what: &str, ours: &Tensor, reference: &Tensor, tol: f32) {
    assert_eq!(
        ours.elem_count(),
        reference.elem_count(),
        "{what}: element count (ref shape {:?})",
        reference.dims()
    );
    let (a, b) = (f32s(ours), f32s(reference));
    let mut worst = (0.0f32, 0usize);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let excess = (x - y).abs() - (tol + tol * y.abs());
        if excess > worst.0 || !x.is_finite() {
            worst = (excess.max(f32::MIN_POSITIVE), i);
        }
    }
    assert!(
        worst.0 <= 0.0,
        "{what}: element {} ours {} ref {} beyond tol {tol}",
        worst.1,
        a[worst.1],
        b[worst.1]
    );
}

/// The `strings` object of a fixture's `vectors.json` (prompts and expected generations).
pub fn strings(name: &str) -> serde_json::Value {
    let text =
        std::fs::read_to_string(fixture(name).join("vectors.json")).expect("fixture vectors.json");
    serde_json::from_str::<serde_json::Value>(&text).expect("vectors.json is JSON")["strings"]
        .clone()
}

/// The elements of an integer tensor.
pub fn ids_of(t: &Tensor) -> Vec<i64> {
    t.flatten_all().unwrap().to_vec1::<i64>().unwrap()
}

/// A fresh folder under the system temp folder, unique to this process and `tag`.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("emu-models-test-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
