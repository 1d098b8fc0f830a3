//! `emu-eval tasks`, `data check` and `score` on shared/fixtures/datasets (counts from expected.json).
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::common::{emu_eval, json_out, shared};

fn root() -> PathBuf {
    shared().join("fixtures/datasets")
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("expected.json")).unwrap()).unwrap()
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// `(samples, media, pool)` of the default split, from expected.json.
fn counts(task: &str, e: &Value) -> Value {
    let t = &e["tasks"][task];
    let (a, b, c) = match task {
        "coco_caption" => ("test_samples", "test_samples", Some("train_pool")),
        "coco_t2i" => ("captions", "reference_images", None),
        "vqav2" | "okvqa" => ("val_samples", "val_images", Some("train_pool")),
        "vizwiz" => ("val_samples", "val_samples", Some("train_pool")),
        "visdial" => ("val_rounds", "val_dialogs", Some("train_dialogs")),
        _ => ("test_samples", "test_videos", Some("train_pool")),
    };
    json!([t[a], t[b], c.map_or(json!(0), |c| t[c].clone())])
}

#[test]
fn data_check_every_task_reports_expected_counts() {
    let e = expected();
    for task in e["tasks"].as_object().unwrap().keys() {
        let out =
            emu_eval(&["data", "check", "--task", task, "--data-root", s(&root()), "--json"], None);
        let v = json_out(&out);
        assert_eq!(v["task"], json!(task));
        assert_eq!(v["problems"], json!([]), "{task}");
        assert_eq!(json!([v["samples"], v["media"], v["pool"]]), counts(task, &e), "{task}");
    }
}

#[test]
fn data_check_broken_cases_fail_with_one_line() {
    let e = expected();
    for (case, info) in e["broken"].as_object().unwrap() {
        let task =
            e["tasks"].as_object().unwrap().keys().find(|t| case.starts_with(t.as_str())).unwrap();
        let dir = root().join("_broken").join(case);
        let out = emu_eval(&["data", "check", "--task", task, "--task-dir", s(&dir)], None);
        assert!(!out.status.success(), "{case}: exit 0");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{case}: {err}");
        let last = err.lines().last().unwrap_or("");
        assert!(last.starts_with("emu-eval: error: "), "{case}: {err}");
        let file = info["file"].as_str().unwrap().split(' ').next().unwrap();
        let base = file.rsplit('/').next().unwrap();
        assert!(last.contains(base), "{case}: {last:?} does not name {base}");
        // JSON mode lists the same problems with file and message.
        let out =
            emu_eval(&["data", "check", "--task", task, "--task-dir", s(&dir), "--json"], None);
        assert!(!out.status.success());
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let problems = v["problems"].as_array().unwrap();
        assert!(
            !problems.is_empty()
                && problems.iter().all(|p| p["file"].is_string() && p["message"].is_string()),
            "{case}"
        );
    }
}

#[test]
fn tasks_lists_nine_with_sizes() {
    let out = emu_eval(&["tasks", "--data-root", s(&root()), "--json"], None);
    let v = json_out(&out);
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 9);
    let vqa = rows.iter().find(|r| r["task"] == "vqav2").unwrap();
    let e = expected();
    assert_eq!(vqa["sizes"]["val"], e["tasks"]["vqav2"]["val_samples"]);
    assert_eq!(vqa["sizes"]["test-dev"], e["tasks"]["vqav2"]["testdev_samples"]);
    assert_eq!(vqa["metric"], "VQA accuracy");
}

fn write(dir: &std::path::Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec(v).unwrap()).unwrap();
    p
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("emu-eval-datasets-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn score(task: &str, preds: &std::path::Path, extra: &[&str]) -> Value {
    let r = root();
    let mut args = vec!["score", "--task", task, "--data-root", s(&r), "--predictions", s(preds)];
    args.extend_from_slice(extra);
    json_out(&emu_eval(&args, None))
}

/// MSRVTT-QA: 3 right, 1 wrong, 1 missing → 60 % (missing counts as wrong), 75 % partial.
#[test]
fn score_video_qa_with_missing_and_unknown_ids() {
    let qa: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("msrvtt_qa/test_qa.json")).unwrap(),
    )
    .unwrap();
    let qa = qa.as_array().unwrap();
    let mut preds: Vec<Value> =
        qa[..3].iter().map(|q| json!({"question_id": q["id"], "answer": q["answer"]})).collect();
    preds.push(json!({"question_id": qa[3]["id"], "answer": "zzzz"}));
    preds.push(json!({"question_id": 999999, "answer": "x"}));
    preds.push(json!({"question_id": qa[0]["id"], "answer": "dup"}));
    let dir = tmpdir("vqa");
    let p = write(&dir, "msrvtt.json", &Value::from(preds));
    let full = score("msrvtt_qa", &p, &[]);
    assert_eq!(full["scored"], 5);
    assert_eq!(full["missing"], 1);
    assert_eq!(full["unknown"], 1);
    assert_eq!(full["duplicates"], 1);
    assert_eq!(full["metric"]["accuracy"], json!(100.0 * 3.0 / 5.0));
    let part = score("msrvtt_qa", &p, &["--allow-partial"]);
    assert_eq!(part["scored"], 4);
    assert_eq!(part["metric"]["accuracy"], json!(100.0 * 3.0 / 4.0));
}

/// VQAv2 val: leave-one-out accuracy computed here from the annotation file.
#[test]
fn score_vqav2_matches_leave_one_out() {
    let ann: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("vqav2/v2_mscoco_val2014_annotations.json")).unwrap(),
    )
    .unwrap();
    let mut preds = Vec::new();
    let mut accs = Vec::new();
    for a in ann["annotations"].as_array().unwrap() {
        let answers: Vec<&str> = a["answers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["answer"].as_str().unwrap())
            .collect();
        // Predict the first answer, except where digit/article normalisation would merge answers.
        let pred = if answers.contains(&"one") { "zzzz" } else { answers[0] };
        let acc: f64 = (0..answers.len())
            .map(|i| {
                let m = answers.iter().enumerate().filter(|(j, x)| *j != i && **x == pred).count();
                (m as f64 / 3.0).min(1.0)
            })
            .sum::<f64>()
            / answers.len() as f64;
        accs.push(acc);
        preds.push(json!({"question_id": a["question_id"], "answer": pred}));
    }
    let dir = tmpdir("vqav2");
    let p = write(&dir, "vqav2.json", &Value::from(preds));
    let v = score("vqav2", &p, &[]);
    assert_eq!(v["scored"], 6);
    let want = 100.0 * accs.iter().sum::<f64>() / accs.len() as f64;
    let got = v["metric"]["overall"].as_f64().unwrap();
    assert!((got - want).abs() < 1e-9, "{got} vs {want}");
}

/// VisDial: perfect ranking of the dense rounds gives R@1 = 1 and NDCG = 1 with --allow-partial;
/// bad ranks are refused.
#[test]
fn score_visdial_ranks() {
    let dense: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("visdial/visdial_1.0_val_dense_annotations.json"))
            .unwrap(),
    )
    .unwrap();
    let preds: Vec<Value> = dense
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let rel: Vec<f64> =
                d["gt_relevance"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            let mut order: Vec<usize> = (0..rel.len()).collect();
            order.sort_by(|&a, &b| rel[b].total_cmp(&rel[a]).then(a.cmp(&b)));
            let mut ranks = vec![0u32; rel.len()];
            for (pos, &o) in order.iter().enumerate() {
                ranks[o] = pos as u32 + 1;
            }
            json!({"image_id": d["image_id"], "round_id": d["round_id"], "ranks": ranks})
        })
        .collect();
    let dir = tmpdir("visdial");
    let p = write(&dir, "visdial.json", &Value::from(preds));
    let v = score("visdial", &p, &["--allow-partial"]);
    assert_eq!(v["scored"], 3);
    assert_eq!(v["missing"], 27);
    assert!((v["metric"]["ndcg"].as_f64().unwrap() - 1.0).abs() < 1e-6);
    assert_eq!(v["metric"]["r@1"].as_f64().unwrap(), 1.0);
    let bad =
        write(&dir, "bad.json", &json!([{"image_id": 185565, "round_id": 6, "ranks": [1, 1]}]));
    let out = emu_eval(
        &["score", "--task", "visdial", "--data-root", s(&root()), "--predictions", s(&bad)],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("[0].ranks"));
}

/// Consistency problems found after loading name the file, the field and the sample
/// (`FILE: path.to.field: problem (sample id)`), for every loader; the first two cases are the
/// issue's (a VizWiz answer list that is `null`, VisDial dense relevances of the wrong length).
#[test]
fn consistency_problems_name_file_field_and_sample() {
    type Edit = fn(&mut Value);
    let cases: [(&str, &str, Edit, &[&str]); 8] = [
        (
            "vizwiz",
            "annotations/val.json",
            |v| v[1]["answers"] = Value::Null,
            &[
                "annotations/val.json: [1].answers: no ground-truth answers",
                "(sample VizWiz_val_00000001.jpg)",
            ],
        ),
        (
            "visdial",
            "visdial_1.0_val_dense_annotations.json",
            |v| {
                let rel = v[0]["gt_relevance"].as_array_mut().unwrap();
                rel.truncate(99);
            },
            &["dense_annotations.json: [0].gt_relevance: 99 values for 100 options", "(sample "],
        ),
        (
            "visdial",
            "visdial_1.0_val_dense_annotations.json",
            |v| v[1]["gt_relevance"][0] = json!(1.7e308),
            &["dense_annotations.json: [1].gt_relevance: [0] = 1.7e308 is over", "(sample "],
        ),
        (
            "vqav2",
            "v2_OpenEnded_mscoco_val2014_questions.json",
            |v| v["questions"][0]["question"] = json!(" "),
            &["val2014_questions.json: questions[0].question: empty question (sample "],
        ),
        (
            "vqav2",
            "v2_mscoco_val2014_annotations.json",
            |v| v["annotations"][2]["answers"] = json!([]),
            &["val2014_annotations.json: annotations[2].answers: no ground-truth answers"],
        ),
        (
            "msvd_qa",
            "test_qa.json",
            |v| v[0]["answer"] = json!(""),
            &["test_qa.json: [0].answer: empty answer"],
        ),
        (
            "coco_t2i",
            "annotations/captions_val2014.json",
            |v| v["annotations"][0]["caption"] = json!(" "),
            &["captions_val2014.json: annotations[0].caption: empty caption (sample "],
        ),
        (
            "coco_caption",
            "dataset_coco.json",
            |v| {
                for s in v["images"][1]["sentences"].as_array_mut().unwrap() {
                    s["raw"] = json!("");
                }
            },
            &["dataset_coco.json: images[1].sentences: no non-empty reference caption"],
        ),
    ];
    for (n, (task, file, edit, want)) in cases.iter().enumerate() {
        let root = tmpdir(&format!("consistency_{n}"));
        let dir = crate::common::copy_fixture(&root, task);
        let path = dir.join(file);
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        edit(&mut v);
        std::fs::write(&path, v.to_string()).unwrap();
        let out = emu_eval(&["data", "check", "--task", task, "--task-dir", s(&dir)], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{task} {file}: exit 0");
        let last = err.lines().last().unwrap_or("");
        for w in *want {
            assert!(last.contains(w), "{task} {file}: {last:?} lacks {w:?}");
        }
    }
    // NExT-QA's CSV: the line and column.
    let root = tmpdir("consistency_nextqa");
    let dir = crate::common::copy_fixture(&root, "nextqa");
    let csv = std::fs::read_to_string(dir.join("test.csv")).unwrap();
    let edited = csv.replacen("what is moving across the video", " ", 1);
    std::fs::write(dir.join("test.csv"), edited).unwrap();
    let out = emu_eval(&["data", "check", "--task", "nextqa", "--task-dir", s(&dir)], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("test.csv: line 2.question: empty question (sample "), "{err}");
}
