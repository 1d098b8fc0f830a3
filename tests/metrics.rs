//! `emu-eval metric …` reproduces the golden vectors through the binary.
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::common::{emu_eval, json_out, shared};

fn golden(rel: &str) -> PathBuf {
    shared().join("golden").join(rel)
}

fn load(rel: &str) -> Value {
    serde_json::from_slice(&std::fs::read(golden(rel)).expect("read golden")).expect("golden JSON")
}

/// Writes `v` to a fresh temp file and returns its path.
fn temp_json(name: &str, v: &Value) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("emu-eval-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec(v).unwrap()).unwrap();
    p
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: got {a}, want {b}");
}

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{what}: not a number: {v}"))
}

#[test]
fn caption_two_images_and_duplicates() {
    for file in ["cider/two_images.json", "cider/duplicates_and_empty.json"] {
        let g = load(file);
        let out = json_out(&emu_eval(
            &["metric", "caption", "--input", golden(file).to_str().unwrap(), "--per-image"],
            None,
        ));
        // Per-image detail is opt-in: without the flag, the same corpus scores and no images.
        let corpus_only = json_out(&emu_eval(
            &["metric", "caption", "--input", golden(file).to_str().unwrap()],
            None,
        ));
        assert!(corpus_only.get("images").is_none(), "{file}: images printed without --per-image");
        assert_eq!(corpus_only["corpus"], out["corpus"], "{file}");
        for key in ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"] {
            close(
                num(&out["corpus"][key], key),
                num(&g["corpus"][key], key),
                1e-9,
                &format!("{file} corpus {key}"),
            );
        }
        let imgs = out["images"].as_array().expect("images");
        assert_eq!(imgs.len(), g["images"].as_array().unwrap().len());
        for (o, e) in imgs.iter().zip(g["images"].as_array().unwrap()) {
            assert_eq!(o["image_id"], e["image_id"]);
            assert_eq!(o["candidate_tokenized"], e["candidate_tokenized"], "{file}");
            assert_eq!(o["references_tokenized"], e["references_tokenized"], "{file}");
            for key in ["Bleu_4", "ROUGE_L", "CIDEr"] {
                close(
                    num(&o["scores"][key], key),
                    num(&e["scores"][key], key),
                    1e-9,
                    &format!("{file} image {key}"),
                );
            }
        }
    }
}

#[test]
fn tokenize_matches_tokenizer_cases() {
    let cases = load("cider/tokenizer_cases.json");
    let cases = cases.as_array().unwrap();
    let input: String =
        cases.iter().map(|c| format!("{}\n", c["input"].as_str().unwrap())).collect();
    let out = emu_eval(&["metric", "tokenize"], Some(input.as_bytes()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.split('\n').collect();
    for (i, c) in cases.iter().enumerate() {
        assert_eq!(lines[i], c["tokenized"].as_str().unwrap(), "input {:?}", c["input"]);
    }
}

fn vqa_run(variant: &str, file: &str) -> Value {
    json_out(&emu_eval(
        &["metric", "vqa", "--variant", variant, "--input", golden(file).to_str().unwrap()],
        None,
    ))
}

#[test]
fn vqa_official_and_emu_variants() {
    let g = load("vqa/vqa_accuracy.json");
    for (variant, acc_key) in [("official", "acc_official"), ("emu", "acc_emu")] {
        let out = vqa_run(variant, "vqa/vqa_accuracy.json");
        let agg = &g[variant];
        close(
            num(&out["overall"], "overall"),
            100.0 * num(&agg["unrounded_overall"], "u"),
            1e-9,
            variant,
        );
        for (t, v) in agg["unrounded_perAnswerType"].as_object().unwrap() {
            close(
                num(&out["perAnswerType"][t], t),
                100.0 * num(v, t),
                1e-9,
                &format!("{variant} {t}"),
            );
        }
        for (t, v) in agg["unrounded_perQuestionType"].as_object().unwrap() {
            close(
                num(&out["perQuestionType"][t], t),
                100.0 * num(v, t),
                1e-9,
                &format!("{variant} {t}"),
            );
        }
        let qs = out["questions"].as_array().unwrap();
        for (o, e) in qs.iter().zip(g["questions"].as_array().unwrap()) {
            assert_eq!(o["question_id"], e["question_id"]);
            close(
                num(&o["accuracy"], "acc"),
                100.0 * num(&e[acc_key], "acc"),
                1e-9,
                &format!("{variant} q {}", e["question_id"]),
            );
        }
    }
}

#[test]
fn vqa_okvqa_variant() {
    let g = load("vqa/okvqa_accuracy.json");
    let out = vqa_run("okvqa", "vqa/okvqa_accuracy.json");
    close(
        num(&out["overall"], "overall"),
        100.0 * num(&g["okvqa_emu"]["unrounded_overall"], "u"),
        1e-9,
        "okvqa overall",
    );
    for (o, e) in
        out["questions"].as_array().unwrap().iter().zip(g["questions"].as_array().unwrap())
    {
        close(
            num(&o["accuracy"], "acc"),
            100.0 * num(&e["acc_okvqa_emu"], "acc"),
            1e-9,
            &format!("okvqa q {}", e["question_id"]),
        );
    }
}

#[test]
fn vqa_vizwiz_variant() {
    let g = load("vqa/vizwiz_accuracy.json");
    let out = vqa_run("vizwiz", "vqa/vizwiz_accuracy.json");
    close(
        num(&out["overall"], "overall"),
        100.0 * num(&g["overall_unrounded"], "u"),
        1e-9,
        "vizwiz overall",
    );
    for (t, v) in g["perAnswerType_unrounded"].as_object().unwrap() {
        close(num(&out["perAnswerType"][t], t), 100.0 * num(v, t), 1e-9, &format!("vizwiz {t}"));
    }
    for (o, e) in
        out["questions"].as_array().unwrap().iter().zip(g["questions"].as_array().unwrap())
    {
        assert_eq!(o["image"], e["image"]);
        close(num(&o["accuracy"], "acc"), 100.0 * num(&e["acc"], "acc"), 1e-9, "vizwiz q");
    }
    let text = serde_json::to_string(&out).unwrap();
    for key in ["average_precision", "f1_score"] {
        let want = num(&g["unanswerability"][key], key);
        assert!(
            find_number(&out, key)
                .map(|x| (x - want).abs() < 1e-9 || (x - 100.0 * want).abs() < 1e-7)
                .unwrap_or(false),
            "{key} missing or wrong in {text}"
        );
    }
}

/// Finds the first number under `key` anywhere in `v`.
fn find_number(v: &Value, key: &str) -> Option<f64> {
    match v {
        Value::Object(m) => m
            .get(key)
            .and_then(Value::as_f64)
            .or_else(|| m.values().find_map(|x| find_number(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find_number(x, key)),
        _ => None,
    }
}

#[test]
fn stem_matches_porter_golden() {
    let cases = load("vqa/porter_stem.json");
    let cases = cases.as_array().unwrap();
    let input: String =
        cases.iter().map(|c| format!("{}\n", c["input"].as_str().unwrap())).collect();
    let out = emu_eval(&["metric", "stem"], Some(input.as_bytes()));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for (l, c) in lines.iter().zip(cases) {
        assert_eq!(*l, c["stem"].as_str().unwrap(), "stem of {:?}", c["input"]);
    }
}

#[test]
fn postprocess_matches_golden() {
    let cases = load("vqa/emu_answer_postprocess.json");
    for kind in ["vqa_short_answer", "coco_caption"] {
        let sel: Vec<&Value> =
            cases.as_array().unwrap().iter().filter(|c| c["kind"] == kind).collect();
        if sel.is_empty() {
            continue;
        }
        let inputs: Vec<&Value> = sel.iter().map(|c| &c["input"]).collect();
        let out = json_out(&emu_eval(
            &["metric", "postprocess", "--kind", kind],
            Some(&serde_json::to_vec(&inputs).unwrap()),
        ));
        let got = out.as_array().unwrap();
        for (g, c) in got.iter().zip(&sel) {
            assert_eq!(g, &c["output"], "{kind} {:?}", c["input"]);
        }
    }
}

#[test]
fn wups_pairs_and_nextqa() {
    let out = json_out(&emu_eval(
        &["metric", "wups", "--input", golden("wups/wups_pairs.json").to_str().unwrap()],
        None,
    ));
    let g = load("wups/wups_pairs.json");
    let got = out.as_array().expect("list");
    assert_eq!(got.len(), g.as_array().unwrap().len());
    for (o, e) in got.iter().zip(g.as_array().unwrap()) {
        for k in ["wups_0.0", "wups_0.9"] {
            close(
                num(&o[k], k),
                num(&e[k], k),
                1e-12,
                &format!("{k} {} vs {}", e["prediction"], e["answer"]),
            );
        }
    }
    let n = load("wups/nextqa_eval.json");
    let input = temp_json("nextqa.json", &n["questions"]);
    let out = json_out(&emu_eval(
        &["metric", "wups", "--nextqa", "--input", input.to_str().unwrap()],
        None,
    ));
    for (k, v) in n["aggregate"].as_object().unwrap() {
        if let Some(m) = v.as_object() {
            for (t, x) in m {
                close(num(&out["aggregate"][k][t], t), num(x, t), 1e-9, &format!("{k}.{t}"));
            }
        } else {
            close(num(&out["aggregate"][k], k), num(v, k), 1e-9, k);
        }
    }
}

#[test]
fn visdial_matches_golden() {
    let g = load("ndcg/visdial_rounds.json");
    let rounds: Vec<Value> = g["rounds"].as_array().unwrap().iter()
        .map(|r| json!({"ranks": r["ranks"], "gt_index": r["gt_index"], "gt_relevance": r["gt_relevance"]}))
        .collect();
    let input = temp_json("visdial.json", &json!({ "rounds": rounds }));
    let out = json_out(&emu_eval(&["metric", "visdial", "--input", input.to_str().unwrap()], None));
    for k in ["r@1", "r@5", "r@10", "mean", "mrr", "ndcg"] {
        close(num(&out[k], k), num(&g["metrics"][k], k), 1e-6, k);
    }
}

#[test]
fn fid_matches_golden() {
    let g = load("fid/fid_cases.json");
    for case in g["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let a = golden("fid").join(case["a"].as_str().unwrap());
        let b = golden("fid").join(case["b"].as_str().unwrap());
        let out = json_out(&emu_eval(
            &["metric", "fid", "--a", a.to_str().unwrap(), "--b", b.to_str().unwrap()],
            None,
        ));
        let got = num(&out["fid"], "fid");
        let want = num(&case["fid_eigh_reference"], "fid");
        if name.starts_with("identical") {
            assert!(got.abs() < 1e-6, "{name}: {got}");
        } else {
            assert!(((got - want) / want).abs() < 1e-6, "{name}: got {got}, want {want}");
        }
    }
}

/// Malformed input: one line naming the file and the field or position, non-zero exit, no panic.
#[test]
fn malformed_inputs_give_one_line_errors() {
    let bad_json = std::env::temp_dir().join(format!("emu-eval-bad-{}.json", std::process::id()));
    std::fs::write(&bad_json, b"{\"images\": [ {\"candidate\": \"a\",, }").unwrap();
    let missing =
        temp_json("missing.json", &json!({"images": [{"image_id": 1, "candidate": "a dog"}]}));
    let wrong = temp_json(
        "wrong.json",
        &json!({"questions": [{"question_id": 1, "answers": "yes", "prediction": "yes"}]}),
    );
    let cases: Vec<(Vec<String>, String, &str)> = vec![
        (
            vec![
                "metric".into(),
                "caption".into(),
                "--input".into(),
                bad_json.display().to_string(),
            ],
            bad_json.display().to_string(),
            "line 1",
        ),
        (
            vec![
                "metric".into(),
                "caption".into(),
                "--input".into(),
                missing.display().to_string(),
            ],
            missing.display().to_string(),
            "images[0].references",
        ),
        (
            vec![
                "metric".into(),
                "vqa".into(),
                "--variant".into(),
                "official".into(),
                "--input".into(),
                wrong.display().to_string(),
            ],
            wrong.display().to_string(),
            "questions[0].answers",
        ),
        (
            vec!["metric".into(), "caption".into(), "--input".into(), "/nonexistent/x.json".into()],
            "/nonexistent/x.json".into(),
            "cannot read",
        ),
    ];
    for (args, file, field) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = emu_eval(&args, None);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.contains(&file) && err.contains(field), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
