//! `convert` and `inspect` from the command line, against `shared/fixtures/emu-tiny` (the model's
//! own parity tests are in `models/tests/emu.rs`).
use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use models::testing::{assert_close_flat as assert_close, ids_of, temp_dir};

use crate::common::emu_eval;

fn fixture() -> PathBuf {
    models::testing::fixture("emu-tiny")
}

fn vectors() -> HashMap<String, Tensor> {
    models::testing::vectors("emu-tiny")
}

fn strings() -> serde_json::Value {
    models::testing::strings("emu-tiny")
}

fn fixture_tensors() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture().join("model.safetensors"), &Device::Cpu).unwrap()
}

#[test]
fn convert_pt_to_safetensors() {
    let dir = temp_dir("convert");
    let out = dir.join("model.safetensors");
    let pt = fixture().join("model.pt");
    let o = emu_eval(
        &["convert", "--weights", pt.to_str().unwrap(), "--out", out.to_str().unwrap()],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ours = candle_core::safetensors::load(&out, &Device::Cpu).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let reference = fixture_tensors();
    assert_eq!(ours.len(), reference.len());
    for (k, t) in &reference {
        let o = &ours[k];
        assert_eq!(o.dtype(), DType::BF16, "{k}");
        if k.ends_with("inv_freq") {
            continue; // bf16-rounded buffers, recomputed by the model
        }
        let a = o.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a, b, "{k}");
    }
}

fn run_inspect(tag: &str, input: &[&str]) -> HashMap<String, Tensor> {
    let dir = temp_dir(tag);
    let out = dir.join("t.safetensors");
    let s = strings();
    let model = fixture();
    let mut args = vec![
        "inspect",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        s["PROMPT_SINGLE"].as_str().unwrap(),
    ];
    args.extend_from_slice(input);
    args.extend_from_slice(&["--out", out.to_str().unwrap(), "--dtype", "f32"]);
    let o = emu_eval(&args, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = candle_core::safetensors::load(&out, &Device::Cpu).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    t
}

const INSPECT_PAIRS: [(&str, &str); 11] = [
    ("vision_patch_embed", "vision_patch_embed_cat"),
    ("vision_blocks", "vision_blocks_cat"),
    ("vision_features", "vision_features_cat"),
    ("ln_visual", "ln_visual_cat"),
    ("cformer_hidden_states", "cformer_t5_hidden_states_all"),
    ("cformer_hidden", "cformer_hidden_cat"),
    ("cformer_out", "cformer_out_cat"),
    ("inputs_embeds", "prompt_inputs_embeds"),
    ("hidden_states_all", "prompt_hidden_states_all"),
    ("final_hidden", "prompt_final_hidden"),
    ("logits", "prompt_logits"),
];

fn check_inspect(t: &HashMap<String, Tensor>, tol: f32) {
    let v = vectors();
    assert_eq!(ids_of(&t["input_ids"]), ids_of(&v["prompt_input_ids"]));
    for (ours, theirs) in INSPECT_PAIRS {
        assert_eq!(t[ours].dtype(), DType::F32, "{ours}");
        assert_eq!(t[ours].elem_count(), v[theirs].elem_count(), "{ours}");
        assert_close(ours, &t[ours], &v[theirs], tol);
    }
    assert_eq!(t["vision_blocks"].dims(), v["vision_blocks_cat"].dims());
    assert_eq!(t["hidden_states_all"].dims(), v["prompt_hidden_states_all"].dims());
}

/// `emu-eval inspect` with PROMPT_SINGLE and the fixture's pixel tensor: every tensor at 1e-4.
#[test]
fn inspect_command_with_fixture_pixels() {
    let px = format!("{}:pixel_values_cat", fixture().join("vectors.safetensors").display());
    let t = run_inspect("inspect-px", &["--pixels", &px]);
    check_inspect(&t, 1e-4);
}

/// `emu-eval inspect` with PROMPT_SINGLE and cat.jpg: libjpeg-turbo decoding and Pillow's resize
/// give the reference pixels, so everything after them holds at the parity tolerance.
#[test]
fn inspect_command_with_cat_jpg() {
    let image = fixture().join("cat.jpg");
    let t = run_inspect("inspect-jpg", &["--image", image.to_str().unwrap()]);
    let v = vectors();
    assert_close("pixel_values", &t["pixel_values"], &v["pixel_values_cat"], 1e-6);
    check_inspect(&t, 1e-4);
}

/// `models` repeats a few facts so that it depends on no project crate; they must equal the
/// originals: the PRNG stream and name hash (built-in weights, sampling), the CLIP normalisation,
/// and the image placeholder the prompts use.
#[test]
fn models_facts_equal_the_project_originals() {
    let (mut a, mut b) = (models::rng::SplitMix64::new(42), tasks::rng::SplitMix64::new(42));
    for _ in 0..1000 {
        assert_eq!(a.next_u64(), b.next_u64());
    }
    assert_eq!(a.uniform().to_bits(), b.uniform().to_bits());
    for s in ["", "visual.blocks.0.attn.qkv.weight", "décodeur"] {
        assert_eq!(models::rng::fnv1a(s), retrieval::fallback::fnv1a(s), "{s}");
    }
    assert_eq!(models::emu::config::clip_mean(), tasks::media::image::CLIP_MEAN);
    assert_eq!(models::emu::config::clip_std(), tasks::media::image::CLIP_STD);
    for n in [0, 1, 32] {
        assert_eq!(models::emu::tokenizer::image_block(n), prompts::image_block(n));
    }
}
