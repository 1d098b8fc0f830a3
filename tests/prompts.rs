//! `emu-eval prompt` on the dataset fixtures: exact Emu-I token ids (emu-model.md 7.1), JSON shape,
//! stages, frames, and one-line errors.
use serde_json::Value;

use crate::common::{emu_eval, json_out, shared};

/// A model folder with the real Emu-I configuration (32 `<image>` slots, `[USER]`/`[ASSISTANT]`)
/// and the fixture's LLaMA tokenizer: `prompt` reads only these two files.
fn emu_i_14b() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("emu-i-14b-config");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), r#"{"preset": "emu-i-14b"}"#).unwrap();
        std::fs::copy(
            shared().join("fixtures/emu-tiny/tokenizer.json"),
            dir.join("tokenizer.json"),
        )
        .unwrap();
        dir
    })
    .clone()
}

/// `<image>` slots come from the model's config: 4 for the tiny fixture, whose `generate` then
/// accepts the printed text.
#[test]
fn image_slots_follow_the_model_config() {
    let data = shared().join("fixtures/datasets");
    let tiny = shared().join("fixtures/emu-tiny");
    let (d, m) = (data.to_str().unwrap(), tiny.to_str().unwrap());
    let out = json_out(&emu_eval(
        &[
            "prompt",
            "--task",
            "vqav2",
            "--model-family",
            "emu",
            "--data-root",
            d,
            "--model",
            m,
            "--json",
        ],
        None,
    ));
    let text = out["prompts"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("[IMG]<image><image><image><image>[/IMG]")
            && !text.contains("<image><image><image><image><image>"),
        "{text}"
    );
    let image = out["prompts"][0]["images"][0].as_str().unwrap();
    let g = json_out(&emu_eval(
        &["generate", "--model", m, "--prompt", text, "--image", image, "--max-new-tokens", "3"],
        None,
    ));
    assert_eq!(g["results"].as_array().unwrap().len(), 1);
}

fn prompt_json(extra: &[&str]) -> Value {
    let data = shared().join("fixtures/datasets");
    let model = emu_i_14b();
    let mut args = vec![
        "prompt",
        "--data-root",
        data.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    json_out(&emu_eval(&args, None))
}

fn ids(v: &Value) -> Vec<u64> {
    v["ids"].as_array().expect("ids").iter().map(|i| i.as_u64().unwrap()).collect()
}

fn list(s: &str) -> Vec<u64> {
    s.split(',').map(|x| x.trim().parse().unwrap()).collect()
}

/// IMAGE_SYSTEM_MSG with BOS (emu-model.md 7.1, 39 ids).
const SYSTEM: &str = "1,887,674,367,9132,411,385,1967,29901,32001,7084,3916,32002,869,887,674,367,2221,304,1074,278,1967,1156,306,3867,372,304,366,29889,3529,1234,590,5155,2729,373,278,2183,1967,29889";

fn user_image() -> Vec<u64> {
    let mut v = vec![32004, 584, 32001];
    v.extend(std::iter::repeat_n(32003, 32));
    v.push(32002);
    v
}

#[test]
fn emu_i_caption_prompt_ids_match_the_reference() {
    let out = prompt_json(&["--task", "coco_caption", "--model-family", "emu-i", "--ids"]);
    let p = &out["prompts"][0];
    let mut want = list(SYSTEM);
    want.extend(user_image());
    want.extend(list("3113,3867,385,16232,322,3022,895,6139,310,278,2183,1967,29889,32005,584,278,1967,1401,919,29879,263,15373,310"));
    assert_eq!(want.len(), 98);
    assert_eq!(ids(p), want);
    assert_eq!(p["images"].as_array().unwrap().len(), 1);
}

#[test]
fn emu_i_vqa_prompt_ids_match_the_reference_layout() {
    let out = prompt_json(&["--task", "vqav2", "--model-family", "emu-i", "--ids"]);
    let got = ids(&out["prompts"][0]);
    let mut head = list(SYSTEM);
    head.extend(user_image());
    head.extend(list("2729,373,278,2793,310,278,1967,322,3619,4060,29892,3113,3867,385,16232,1234,19849,310,871,697,1734,470,16549,29889"));
    assert_eq!(&got[..head.len()], &head[..]);
    assert!(got.ends_with(&[32005, 584, 278, 1234, 338, 29901]));
}

#[test]
fn vizwiz_has_answerability_then_answer_stage() {
    let out = prompt_json(&["--task", "vizwiz", "--model-family", "emu-i", "--ids"]);
    let stages: Vec<&str> =
        out["prompts"].as_array().unwrap().iter().map(|p| p["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["answerability", "answer"]);
    let gate = ids(&out["prompts"][0]);
    assert!(gate.ends_with(&[338, 278, 1234, 2998, 29973, 32005, 584]), "{gate:?}");
}

#[test]
fn visdial_prompt_has_history_turns_closed_by_eos() {
    let out = prompt_json(&[
        "--task",
        "visdial",
        "--model-family",
        "emu-i",
        "--sample",
        "185565#3",
        "--ids",
    ]);
    let text = out["prompts"][0]["text"].as_str().unwrap();
    assert_eq!(text.matches("</s>").count(), 3, "{text}"); // image turn + 2 history rounds
    assert_eq!(ids(&out["prompts"][0]).iter().filter(|&&i| i == 2).count(), 3);
}

#[test]
fn video_few_shot_uses_8_query_and_2_support_frames() {
    let out = prompt_json(&[
        "--task",
        "msvd_qa",
        "--model-family",
        "emu",
        "--shots",
        "2",
        "--support",
        "random",
    ]);
    let p = &out["prompts"][0];
    let text = p["text"].as_str().unwrap();
    assert_eq!(text.matches("[IMG]").count(), 12);
    assert_eq!(text.matches("<image>").count(), 12 * 32);
    let frames: Vec<u64> =
        p["frames"].as_array().unwrap().iter().map(|f| f[1].as_u64().unwrap()).collect();
    assert_eq!(frames, [2, 2, 2, 2, 8, 8, 8, 8, 8, 8, 8, 8]);
    assert_eq!(p["images"].as_array().unwrap().len(), 12);
    assert!(out["support"]["method"].as_str().unwrap().contains("not RICES"));
}

#[test]
fn cot_plan_has_caption_stage_first() {
    let out = prompt_json(&["--task", "okvqa", "--model-family", "emu", "--cot"]);
    let p = out["prompts"].as_array().unwrap();
    assert_eq!(p[0]["stage"], "cot.caption");
    assert!(p[0]["text"]
        .as_str()
        .unwrap()
        .ends_with("describing the image in detail. the image shows"));
    assert!(p[1]["text"]
        .as_str()
        .unwrap()
        .contains("a picture of {cot.caption}. based on the picture, "));
}

#[test]
fn errors_are_one_line() {
    let data = shared().join("fixtures/datasets");
    for args in [
        vec![
            "prompt",
            "--task",
            "nope",
            "--model-family",
            "emu",
            "--data-root",
            data.to_str().unwrap(),
        ],
        vec![
            "prompt",
            "--task",
            "vqav2",
            "--model-family",
            "emu-i",
            "--cot",
            "--data-root",
            data.to_str().unwrap(),
        ],
        vec![
            "prompt",
            "--task",
            "vqav2",
            "--model-family",
            "emu",
            "--sample",
            "0",
            "--data-root",
            data.to_str().unwrap(),
        ],
    ] {
        let out = emu_eval(&args, None);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}
