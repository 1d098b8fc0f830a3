//! Parity with every case of `shared/golden/vqa/*_accuracy.json` (README: per-question and
//! unrounded means 1e-12 absolute on the 0–1 scale, rounded percentages exact).
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;

const TOL: f64 = 1e-12;

fn golden(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden/vqa")).join(name)
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(golden(name)).expect("golden file");
    serde_json::from_str(&text).expect("golden json")
}

/// `score_file` with per-question detail, as the JSON the command prints.
fn score_json(path: &Path, variant: Variant) -> Result<Value, InputError> {
    score_file(path, variant, Detail::PerSample)
        .map(|r| serde_json::to_value(r).expect("serialize"))
}

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{what}: not a number: {v}"))
}

/// Per-question accuracies (output 0–100) against golden field `field` (0–1); every case.
fn check_questions(out: &Value, gold: &Value, id_key: &str, field: &str) {
    let got = out["questions"].as_array().expect("questions");
    let want = gold["questions"].as_array().expect("golden questions");
    assert_eq!(got.len(), want.len());
    let mut bad = Vec::new();
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g[id_key], w[id_key]);
        let (a, b) = (num(&g["accuracy"], "accuracy") / 100.0, num(&w[field], field));
        if (a - b).abs() > TOL {
            bad.push(format!(
                "{}={}: got {a}, want {b} (answers {}, prediction {})",
                id_key, w[id_key], w["answers"], w["prediction"]
            ));
        }
    }
    assert!(bad.is_empty(), "{field}: {} of {} differ:\n{}", bad.len(), want.len(), bad.join("\n"));
}

/// Unrounded mean (output 0–100) against the golden 0–1 value.
fn check_unrounded(got: &Value, want: &Value, what: &str) {
    let (a, b) = (num(got, what) / 100.0, num(want, what));
    assert!((a - b).abs() <= TOL, "{what}: got {a}, want {b}");
}

/// A map of unrounded means against the golden map: same keys, values within tolerance.
fn check_unrounded_map(got: &Value, want: &Value, what: &str) {
    let (g, w) = (got.as_object().expect(what), want.as_object().expect(what));
    let mut gk: Vec<_> = g.keys().collect();
    let mut wk: Vec<_> = w.keys().collect();
    gk.sort();
    wk.sort();
    assert_eq!(gk, wk, "{what}: keys");
    for (k, v) in w {
        check_unrounded(&g[k], v, &format!("{what}.{k}"));
    }
}

/// Rounded values must match exactly (same keys).
fn check_rounded(got: &Value, want: &Value, what: &str) {
    match want {
        Value::Object(w) => {
            let g = got.as_object().unwrap_or_else(|| panic!("{what}: not an object"));
            assert_eq!(
                g.len(),
                w.len(),
                "{what}: keys {:?} vs {:?}",
                g.keys().collect::<Vec<_>>(),
                w.keys().collect::<Vec<_>>()
            );
            for (k, v) in w {
                check_rounded(&g[k], v, &format!("{what}.{k}"));
            }
        }
        _ => assert_eq!(num(got, what), num(want, what), "{what}"),
    }
}

#[test]
fn vqa_official_every_case() {
    let gold = load("vqa_accuracy.json");
    let out = score_json(&golden("vqa_accuracy.json"), Variant::Official).expect("score");
    check_questions(&out, &gold, "question_id", "acc_official");
    let g = &gold["official"];
    check_unrounded(&out["overall"], &g["unrounded_overall"], "overall");
    check_unrounded_map(&out["perAnswerType"], &g["unrounded_perAnswerType"], "perAnswerType");
    check_unrounded_map(
        &out["perQuestionType"],
        &g["unrounded_perQuestionType"],
        "perQuestionType",
    );
    check_rounded(&out["rounded"], &g["rounded"], "rounded");
}

#[test]
fn vqa_emu_every_case() {
    let gold = load("vqa_accuracy.json");
    let out = score_json(&golden("vqa_accuracy.json"), Variant::Emu).expect("score");
    check_questions(&out, &gold, "question_id", "acc_emu");
    let g = &gold["emu"];
    check_unrounded(&out["overall"], &g["unrounded_overall"], "overall");
    check_unrounded_map(&out["perAnswerType"], &g["unrounded_perAnswerType"], "perAnswerType");
    check_unrounded_map(
        &out["perQuestionType"],
        &g["unrounded_perQuestionType"],
        "perQuestionType",
    );
    check_rounded(&out["rounded"], &g["rounded"], "rounded");
}

#[test]
fn okvqa_every_case() {
    let gold = load("okvqa_accuracy.json");
    let out = score_json(&golden("okvqa_accuracy.json"), Variant::Okvqa).expect("score");
    check_questions(&out, &gold, "question_id", "acc_okvqa_emu");
    let g = &gold["okvqa_emu"];
    check_unrounded(&out["overall"], &g["unrounded_overall"], "overall");
    check_unrounded_map(
        &out["perQuestionType"],
        &g["unrounded_perQuestionType"],
        "perQuestionType",
    );
    check_rounded(&out["rounded"], &g["rounded"], "rounded");
    // Same data with Emu's plain VQAEval.
    let plain = score_json(&golden("okvqa_accuracy.json"), Variant::Emu).expect("score");
    check_questions(&plain, &gold, "question_id", "acc_without_stemming");
}

#[test]
fn vizwiz_every_case() {
    let gold = load("vizwiz_accuracy.json");
    let out = score_json(&golden("vizwiz_accuracy.json"), Variant::Vizwiz).expect("score");
    check_questions(&out, &gold, "image", "acc");
    for q in gold["questions"].as_array().expect("questions") {
        let pred = q["prediction"].as_str().expect("prediction");
        assert_eq!(
            vizwiz_prediction(pred),
            q["processed_prediction"].as_str().expect("processed"),
            "{pred:?}"
        );
    }
    check_unrounded(&out["overall"], &gold["overall_unrounded"], "overall");
    check_rounded(&out["rounded"]["overall"], &gold["overall_rounded"], "rounded.overall");
    check_unrounded_map(&out["perAnswerType"], &gold["perAnswerType_unrounded"], "perAnswerType");
    check_rounded(
        &out["rounded"]["perAnswerType"],
        &gold["perAnswerType_rounded"],
        "rounded.perAnswerType",
    );
    assert!(out.get("perQuestionType").is_none());
    let (u, gu) = (&out["unanswerability"], &gold["unanswerability"]);
    check_unrounded(&u["average_precision"], &gu["average_precision"], "average_precision");
    check_unrounded(&u["f1_score"], &gu["f1_score"], "f1_score");
    check_rounded(
        &out["rounded"]["unanswerability"]["average_precision"],
        &gu["average_precision_rounded"],
        "ap rounded",
    );
    check_rounded(
        &out["rounded"]["unanswerability"]["f1_score"],
        &gu["f1_score_rounded"],
        "f1 rounded",
    );
}

#[test]
fn malformed_input_names_file_and_field() {
    let dir = std::env::temp_dir().join(format!("vqa-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let cases = [
        (
            r#"{"questions":[{"question_id":1,"answers":["a"],"prediction":"a"},{"question_id":2,"answers":"a","prediction":"a"}]}"#,
            "questions[1].answers: expected an array",
        ),
        (
            r#"{"questions":[{"question_id":1,"answers":["a",3],"prediction":"a"}]}"#,
            "questions[0].answers[1]: expected a string",
        ),
        (
            r#"{"questions":[{"question_id":1,"answers":["a"]}]}"#,
            "questions[0].prediction: missing field",
        ),
        (
            r#"{"questions":[{"answers":["a"],"prediction":"a"}]}"#,
            "questions[0]: missing field question_id (or image)",
        ),
        (
            r#"{"questions":[{"image":"x.jpg","answers":[],"prediction":"a"}]}"#,
            "questions[0].answers: no ground-truth answers",
        ),
        (
            r#"{"questions":[{"image":"x.jpg","answers":["a"],"prediction":"a","answerable":2}]}"#,
            "questions[0].answerable: expected 0 or 1",
        ),
        (r#"{"questions":[]}"#, "questions: no questions"),
        (r#"{"q":[]}"#, "questions: missing field"),
        (
            r#"{"questions":[{"question_id":1,"answers":["a"],"prediction":"a","answerable_pred":"x"}]}"#,
            "questions[0].answerable_pred: expected a number",
        ),
        (
            r#"{"questions":[{"question_id":1,"answers":["a"],"prediction":"a"}"#,
            "malformed JSON at line 1",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let path = dir.join(format!("case{i}.json"));
        std::fs::write(&path, text).expect("write");
        let err = score_json(&path, Variant::Official).expect_err(want).to_string();
        assert!(err.starts_with(&format!("{}: {want}", path.display())), "{err}");
    }
    let path = dir.join("partial.json");
    std::fs::write(&path, r#"{"questions":[{"image":"a","answers":["a"],"prediction":"a","answerable":1,"answerable_pred":0.9},{"image":"b","answers":["a"],"prediction":"a","answerable":0}]}"#).expect("write");
    let err = score_json(&path, Variant::Vizwiz).expect_err("partial answerability").to_string();
    assert!(
        err.starts_with(&format!(
            "{}: questions[1].answerable_pred: missing field",
            path.display()
        )),
        "{err}"
    );
    // Duplicate keys: the last one wins (like Python's json), not an error.
    let path = dir.join("dup.json");
    std::fs::write(&path, r#"{"questions":[{"question_id":1,"answers":["b"],"answers":["a","a","a","a"],"prediction":"a"}]}"#).expect("write");
    let out = score_json(&path, Variant::Official).expect("duplicate keys");
    assert_eq!(out["overall"], serde_json::json!(100.0));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn fast_and_checked_parsers_agree() {
    for name in ["vqa_accuracy.json", "okvqa_accuracy.json", "vizwiz_accuracy.json"] {
        let path = golden(name);
        let text = std::fs::read_to_string(&path).expect("golden file");
        let fast = parse_items_fast(&text).expect("fast path accepts golden file");
        let checked =
            parse_items(&path, &serde_json::from_str(&text).expect("json")).expect("checked");
        assert_eq!(fast, checked, "{name}");
    }
}
