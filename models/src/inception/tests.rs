//! Parity with ../shared/fixtures/fid-inception (pytorch-fid 0.3.0, float32 CPU).
use std::collections::HashMap;
use std::sync::OnceLock;

use candle_core::{Device, IndexOp, Tensor};

use super::*;
use crate::testing::{assert_close, f32s, fixture, vectors};

fn v() -> &'static HashMap<String, Tensor> {
    static V: OnceLock<HashMap<String, Tensor>> = OnceLock::new();
    V.get_or_init(|| vectors("fid-inception"))
}

fn net() -> &'static FidInception {
    static N: OnceLock<FidInception> = OnceLock::new();
    N.get_or_init(|| {
        FidInception::load(&fixture("fid-inception/inception_weights.safetensors"), &Device::Cpu)
            .expect("fixture weights load strictly")
    })
}

/// (u8 HWC data, width, height) of a fixture image.
fn image(key: &str) -> (Vec<u8>, usize, usize) {
    let t = &v()[key];
    let (h, w, _) = t.dims3().unwrap();
    (t.flatten_all().unwrap().to_vec1().unwrap(), w, h)
}

fn preprocessed(key: &str) -> Tensor {
    let (data, w, h) = image(key);
    batch_tensor(&[preprocess(&data, w, h)], &Device::Cpu).unwrap()
}

/// The rows pytorch-fid's fixture keeps of the 256 and 512 cases.
const ROWS: [usize; 8] = [0, 1, 2, 149, 150, 296, 297, 298];

/// Asserts bit-for-bit equality (the fixture allows 1e-6 absolute).
fn assert_identical(what: &str, ours: &Tensor, reference: &Tensor) {
    assert_eq!(ours.dims(), reference.dims(), "{what}: shape");
    let (a, b) = (f32s(ours), f32s(reference));
    let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert_eq!(differ, 0, "{what}: {differ} of {} values differ", a.len());
}

#[test]
fn preprocessing_matches_for_every_size() {
    for name in ["img64", "img240x150"] {
        assert_identical(
            name,
            &preprocessed(&format!("{name}_u8")),
            &v()[&format!("{name}_preprocessed")],
        );
    }
    for name in ["img256", "img512"] {
        let x = preprocessed(&format!("{name}_u8"));
        let rows = Tensor::stack(&ROWS.map(|r| x.i((0, .., r, ..)).unwrap()), 1)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        assert_identical(name, &rows, &v()[&format!("{name}_preprocessed_rows")]);
    }
}

/// The fixture key `img64_{block}_*_{suffix}`.
fn block_key(block: usize, suffix: &str) -> &'static str {
    let prefix = format!("img64_block{block}_");
    v().keys().find(|k| k.starts_with(&prefix) && k.ends_with(suffix)).unwrap()
}

fn corner(b: &Tensor) -> Tensor {
    b.i((0..1, .., 0..4, 0..4)).unwrap()
}

/// The checks of the img64 block outputs that hold for a float32 or a float64 network: every
/// block's channel means and the corners of blocks 0 and 1, elementwise at the fixture tolerance.
fn check_blocks(what: &str, blocks: &[Tensor; 4]) {
    for (i, b) in blocks.iter().enumerate() {
        let key = block_key(i, "_chanmean");
        assert_close(
            &format!("{what} {key}"),
            &b.mean(3).unwrap().mean(2).unwrap(),
            &v()[key],
            1e-4,
            1e-5,
        );
    }
    for (i, block) in blocks.iter().enumerate().take(2) {
        let key = block_key(i, "_corner");
        assert_close(&format!("{what} {key}"), &corner(block), &v()[key], 1e-4, 1e-5);
    }
}

#[test]
fn block_outputs_of_img64() {
    let blocks = net().blocks(&v()["img64_preprocessed"]).unwrap();
    check_blocks("float32", &blocks);
    // Block 2's corner elementwise is out of reach (see `block2_corner_elementwise`); per spatial
    // position, the root mean square over the 768 channels must still meet the fixture's
    // 1e-4 relative + 1e-5, which any padding or border-pooling mistake breaks by far.
    let key = block_key(2, "_corner");
    let rms = |t: &Tensor| t.sqr().unwrap().mean(1).unwrap().sqrt().unwrap();
    let (ours, reference) = (corner(&blocks[2]), &v()[key]);
    let diff = rms(&(&ours - reference).unwrap());
    let bound = ((rms(reference) * 1e-4).unwrap() + 1e-5).unwrap();
    let excess =
        (diff / bound).unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    assert!(excess <= 1.0, "{key}: per-position RMS error {excess:.2}x the tolerance");
}

/// Block 2's corner elementwise at the fixture tolerance: unattainable without torch's own
/// convolution summation order. The float64 network (exact up to 1e-12 for this purpose, with
/// torch's float32 BatchNorm terms and bit-identical input) is 3.7x the bound away from the
/// reference, so the reference's float32 rounding alone exceeds it; the RMS of that rounding
/// over the corner is 7e-6 (1.2e-5 relative), the same as ours (9e-6), with the same spatial
/// and per-branch profile. Near-zero ReLU outputs leave only the 1e-5 absolute part.
#[test]
#[ignore = "unattainable: the reference's own float32 rounding is 3.7x this bound (float64 run)"]
fn block2_corner_elementwise() {
    let blocks = net().blocks(&v()["img64_preprocessed"]).unwrap();
    let key = block_key(2, "_corner");
    assert_close(key, &corner(&blocks[2]), &v()[key], 1e-4, 1e-5);
}

#[test]
fn float64_network_matches_as_far_as_the_reference_rounding_allows() {
    // The same code with float64 weights and activations: what remains is the reference's own
    // float32 rounding (pool3 within 0.5x the tolerance here, block-2 corner 3.7x).
    let w = Weights::open(&fixture("fid-inception/inception_weights.safetensors")).unwrap();
    let net64 = FidInception::new(w.var_builder(DType::F64, &Device::Cpu)).unwrap();
    let blocks = net64.blocks(&v()["img64_preprocessed"].to_dtype(DType::F64).unwrap()).unwrap();
    check_blocks("float64", &blocks);
}

#[test]
fn pool3_features_for_every_image_size() {
    // The network alone, on pytorch-fid's own input tensors.
    for name in ["img64", "img240x150"] {
        let f = net().pool3(&v()[&format!("{name}_preprocessed")]).unwrap();
        assert_close(
            &format!("{name} pool3 (reference input)"),
            &f,
            &v()[&format!("{name}_pool3")],
            1e-4,
            1e-5,
        );
    }
}

#[test]
fn pool3_features_from_uint8_for_every_image_size() {
    for name in ["img64", "img256", "img512", "img240x150"] {
        let f = net().pool3(&preprocessed(&format!("{name}_u8"))).unwrap();
        assert_close(&format!("{name} pool3"), &f, &v()[&format!("{name}_pool3")], 1e-4, 1e-5);
    }
}

#[test]
fn pool3_features_of_a_batch_of_group_images() {
    // The first 8 images of each group, in one batch of 16 (the groups' reference activations
    // are batch-size independent).
    let mut inputs = vec![];
    for g in ["groupA", "groupB"] {
        let t = &v()[&format!("{g}_u8")];
        for i in 0..8 {
            let img: Vec<u8> = t.get(i).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            inputs.push(preprocess(&img, 32, 32));
        }
    }
    let f = net().pool3(&batch_tensor(&inputs, &Device::Cpu).unwrap()).unwrap();
    let reference = Tensor::cat(
        &[v()["groupA_pool3"].i(0..8).unwrap(), v()["groupB_pool3"].i(0..8).unwrap()],
        0,
    )
    .unwrap();
    assert_close("group pool3", &f, &reference, 1e-4, 1e-5);
}

#[test]
fn real_checkpoint_key_set_is_accepted() {
    // Every key of the real file except `fc.*` is read by the network; `fc.*` and the counters
    // are the only ones allowed to be left over.
    let text = std::fs::read_to_string(fixture("fid-inception/checkpoint_keys.json")).unwrap();
    let keys: serde_json::Value = serde_json::from_str(&text).unwrap();
    let w = Weights::open(&fixture("fid-inception/inception_weights.safetensors")).unwrap();
    FidInception::new(w.var_builder(DType::F32, &Device::Cpu)).unwrap();
    let real: Vec<&str> =
        keys["keys"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(real.len(), 566);
    let fixture_keys: std::collections::HashSet<&String> = w.keys().collect();
    for k in &real {
        assert!(
            fixture_keys.contains(&k.to_string()) || k.starts_with("fc."),
            "{k} missing from the fixture"
        );
    }
    w.finish(|k| k.starts_with("fc.") || k.ends_with(".num_batches_tracked")).unwrap();
}

#[test]
fn one_pass_average_pool_equals_the_tensor_form_bit_for_bit() {
    // ReLU outputs (>= 0) with exact zeros, as the pool's inputs in the network.
    let n = 2 * 5 * 7 * 6;
    let v: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 / 37.0 - 8.0).max(0.0)).collect();
    let x = Tensor::from_vec(v, (2, 5, 7, 6), &Device::Cpu).unwrap();
    let fast = avg_pool_3x3_same(&x).unwrap();
    assert_identical("avg pool", &fast, &avg_pool_3x3_same_ops(&x).unwrap());
    // Corner (0, 0, 0, 0): mean of the 4 in-image pixels.
    let p = x.i((0, 0)).unwrap().to_vec2::<f32>().unwrap();
    let corner = (p[0][0] + p[0][1] + p[1][0] + p[1][1]) / 4.0;
    assert_eq!(fast.i((0, 0, 0, 0)).unwrap().to_scalar::<f32>().unwrap(), corner);
    for shape in [(1, 3, 1, 5), (1, 2, 4, 1), (1, 1, 2, 2)] {
        let x = relu_input(shape);
        let fast = avg_pool_3x3_same(&x).unwrap();
        assert_identical("avg pool", &fast, &avg_pool_3x3_same_ops(&x).unwrap());
    }
}

/// ReLU-like values (>= 0, with exact zeros) of `shape`.
fn relu_input(shape: (usize, usize, usize, usize)) -> Tensor {
    let n = shape.0 * shape.1 * shape.2 * shape.3;
    let v: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 / 37.0 - 8.0).max(0.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

#[test]
fn max_pool_op_equals_candles_max_pool() {
    for shape in [(2, 5, 7, 6), (1, 3, 9, 9), (1, 2, 3, 4), (1, 1, 1, 3), (2, 3, 35, 35)] {
        for (stride, pad) in [(1, 1), (2, 0), (2, 1), (3, 0)] {
            if pad == 0 && (shape.2 < 3 || shape.3 < 3) {
                continue;
            }
            let x = relu_input(shape);
            let what = format!("max pool {shape:?} stride {stride} pad {pad}");
            let fast = max_pool_3x3(&x, stride, pad).unwrap();
            assert_identical(&what, &fast, &max_pool_3x3_ops(&x, stride, pad).unwrap());
        }
    }
}
