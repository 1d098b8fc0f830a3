//! Decoding parity against the emu-tiny fixtures (official generate / predict / generate_image,
//! transformers 4.29.2, f32 CPU): `emu-eval generate`, `rank`, `regress` and the library paths.
use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use crate::common::{emu_eval, json_out, shared};

fn tiny() -> PathBuf {
    shared().join("fixtures/emu-tiny")
}

fn vectors() -> Value {
    let text = std::fs::read_to_string(tiny().join("vectors.json")).expect("vectors.json");
    serde_json::from_str(&text).expect("vectors.json is JSON")
}

fn tensors() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(tiny().join("vectors.safetensors"), &Device::Cpu)
        .expect("vectors.safetensors")
}

/// Writes one fixture pixel tensor to a temporary safetensors file (exact pixels, no JPEG decode).
fn pixel_file(name: &str) -> String {
    let t = tensors().remove(name).expect("pixel tensor");
    let path = std::env::temp_dir()
        .join(format!("emu-eval-decode-{}-{name}.safetensors", std::process::id()));
    candle_core::safetensors::save(&HashMap::from([("pixel_values".to_string(), t)]), &path)
        .expect("write pixels");
    path.to_string_lossy().into_owned()
}

fn model_dir() -> String {
    tiny().to_string_lossy().into_owned()
}

/// HF output row → new ids: drop the dummy BOS, cut after the first EOS (pads follow it).
fn new_ids(row: &Value) -> Vec<u64> {
    let ids: Vec<u64> = row.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    let mut out = Vec::new();
    for &t in &ids[1..] {
        out.push(t);
        if t == 2 {
            break;
        }
    }
    out
}

fn close(ours: f64, reference: f64, rel: f64) -> bool {
    (ours - reference).abs() <= rel * reference.abs().max(1.0)
}

/// Runs `generate` for a fixture result and checks ids (exact) and beam scores (1e-4 relative).
fn check_generate(result: &str, prompts: &[(&str, &str)]) {
    let v = vectors();
    let r = &v["results"][result];
    let kw = &r["kwargs"];
    let pixel_paths: Vec<String> = prompts.iter().map(|(_, img)| pixel_file(img)).collect();
    let mut args: Vec<String> = vec!["generate".into(), "--model".into(), model_dir()];
    for ((p, _), img) in prompts.iter().zip(&pixel_paths) {
        args.extend(["--prompt".into(), p.to_string(), "--image".into(), img.clone()]);
    }
    args.extend([
        "--num-beams".into(),
        kw["num_beams"].to_string(),
        "--max-new-tokens".into(),
        kw["max_new_tokens"].to_string(),
    ]);
    if let Some(lp) = kw.get("length_penalty") {
        args.extend(["--length-penalty".into(), lp.to_string()]);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = json_out(&emu_eval(&argv, None));
    let results = out["results"].as_array().unwrap();
    let expected = r["output_ids"].as_array().unwrap();
    assert_eq!(results.len(), expected.len());
    for (i, (got, want)) in results.iter().zip(expected).enumerate() {
        let ids: Vec<u64> =
            got["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(ids, new_ids(want), "{result} row {i} ids");
        assert_eq!(
            got["text"].as_str().unwrap(),
            r["decoded"][i].as_str().unwrap(),
            "{result} row {i} text"
        );
        match r.get("sequences_scores") {
            Some(s) => {
                let (ours, reference) = (got["score"].as_f64().unwrap(), s[i].as_f64().unwrap());
                assert!(
                    close(ours, reference, 1e-4),
                    "{result} row {i} score {ours} vs {reference}"
                );
            }
            None => assert!(got["score"].is_null()),
        }
    }
}

fn single() -> Vec<(&'static str, &'static str)> {
    vec![(
        "[IMG]<image><image><image><image>[/IMG]There is a cat in the picture. The cat is",
        "pixel_values_cat",
    )]
}

fn batch() -> Vec<(&'static str, &'static str)> {
    vec![
        ("[IMG]<image><image><image><image>[/IMG]A short caption:", "pixel_values_cat"),
        (
            "[IMG]<image><image><image><image>[/IMG]Here is a much longer prompt describing what can be seen in this image:",
            "pixel_values_tiger",
        ),
    ]
}

#[test]
fn prompt_strings_match_the_fixture() {
    let v = vectors();
    assert_eq!(v["strings"]["PROMPT_SINGLE"].as_str().unwrap(), single()[0].0);
    let b = v["strings"]["PROMPTS_BATCH"].as_array().unwrap();
    for (i, (p, _)) in batch().iter().enumerate() {
        assert_eq!(b[i].as_str().unwrap(), *p);
    }
}

#[test]
fn generate_greedy() {
    check_generate("greedy", &single());
}

#[test]
fn generate_beam5_length_penalty_0() {
    check_generate("beam5_lp0", &single());
}

#[test]
fn generate_beam5_length_penalty_minus_1() {
    check_generate("beam5_lpm1", &single());
}

#[test]
fn generate_beam5_length_penalty_plus_1() {
    check_generate("beam5_lpp1", &single());
}

#[test]
fn generate_batch_greedy() {
    check_generate("batch_greedy", &batch());
}

#[test]
fn generate_batch_beam5_length_penalty_0() {
    check_generate("batch_beam5_lp0", &batch());
}

#[test]
fn generate_batch_beam5_length_penalty_minus_1() {
    check_generate("batch_beam5_lpm1", &batch());
}

fn check_rank(segments: usize, losses_key: &str, ranks_key: &str, naive: bool) {
    let v = vectors();
    let p = &v["results"]["predict"];
    let img = pixel_file("pixel_values_cat");
    let seg = segments.to_string();
    let md = model_dir();
    let mut args = vec![
        "rank",
        "--model",
        &md,
        "--prompt",
        p["prompt"].as_str().unwrap(),
        "--image",
        &img,
        "--segments",
        &seg,
    ];
    for c in p["candidates"].as_array().unwrap() {
        args.extend(["--candidate", c.as_str().unwrap()]);
    }
    if naive {
        args.push("--naive");
    }
    let out = json_out(&emu_eval(&args, None));
    let losses = out["losses"].as_array().unwrap();
    let want = p[losses_key].as_array().unwrap();
    assert_eq!(losses.len(), want.len());
    for (i, (a, b)) in losses.iter().zip(want).enumerate() {
        let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "loss {i}: {a} vs {b}");
    }
    assert_eq!(out["ranks"], p[ranks_key][0], "ranks");
}

#[test]
fn rank_one_segment() {
    check_rank(1, "losses", "ranks", false);
}

#[test]
fn rank_two_segments() {
    check_rank(2, "losses_nseg2", "ranks_nseg2", false);
}

#[test]
fn rank_naive_two_segments() {
    check_rank(2, "losses_nseg2", "ranks_nseg2", true);
}

fn check_regress(prompt: &str, image: Option<&str>, key: &str) {
    let out = std::env::temp_dir()
        .join(format!("emu-eval-decode-{}-{key}.safetensors", std::process::id()));
    let out_s = out.to_string_lossy().into_owned();
    let md = model_dir();
    let mut args = vec!["regress", "--model", &md, "--prompt", prompt, "--out", &out_s];
    let img;
    if let Some(name) = image {
        img = pixel_file(name);
        args.extend(["--image", &img]);
    }
    let res = emu_eval(&args, None);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let got = candle_core::safetensors::load(&out, &Device::Cpu).unwrap().remove("embeds").unwrap();
    let want = tensors().remove(key).unwrap();
    assert_eq!(got.dims(), want.dims());
    let g = got.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let w = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!((a - b).abs() <= 1e-4 + 1e-4 * b.abs(), "{key}[{i}]: {a} vs {b}");
    }
}

#[test]
fn regress_text_only() {
    let v = vectors();
    check_regress(v["strings"]["GENIMG_TEXT_ONLY"][0].as_str().unwrap(), None, "genimg_text_only");
}

#[test]
fn regress_with_image() {
    let v = vectors();
    check_regress(
        v["strings"]["GENIMG_WITH_IMAGE"][0].as_str().unwrap(),
        Some("pixel_values_cat"),
        "genimg_with_image",
    );
}
