//! The run folder as the contract between commands: run → shards → merge (no flags but the
//! folders) → report → compare, for an understanding task and for coco_t2i, on every kind of
//! folder (single, shard, merged, the parent of a multi-task run); provenance in every table;
//! `compare` refusing other data and disjoint samples, and comparing models on the same data.
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::common::{copy_fixture, emu_eval, shared};
use crate::run::{lines, metrics, ok, read_json};

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("contract-tests").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `run` on the fixtures with the tiny parity model, into `out`.
fn run(root: &Path, out: &Path, data: &Path, extra: &[&str]) -> Output {
    let (d, m, o, c) =
        (s(data), s(&shared().join("fixtures/emu-tiny")), s(out), s(&root.join("cache")));
    let mut args = vec!["run", "--data-root", &d, "--model", &m, "--output", &o, "--cache", &c];
    args.extend_from_slice(extra);
    emu_eval(&args, None)
}

fn fixtures() -> PathBuf {
    shared().join("fixtures/datasets")
}

fn fails_with(o: &Output, needle: &str) -> String {
    let out =
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(!o.status.success(), "expected a failure with {needle:?}: {out}");
    assert!(out.contains(needle), "expected {needle:?} in: {out}");
    out
}

/// Shards, `merge` with only the folders, then `report` on the merged folder and on the parent
/// of all of them, then `compare` of the merged folder against the single run.
fn shards_merge_report_compare(name: &str, task: &str, extra: &[&str]) {
    let root = tmp(name);
    let single = root.join("runs/single");
    let mut args = vec!["--task", task];
    args.extend_from_slice(extra);
    ok(&run(&root, &single, &fixtures(), &args));
    let mut shards = Vec::new();
    for i in 1..=2 {
        let dir = root.join(format!("runs/shard{i}"));
        let shard = format!("{i}/2");
        let mut a = args.clone();
        a.extend(["--shard", shard.as_str()]);
        ok(&run(&root, &dir, &fixtures(), &a));
        shards.push(s(&dir));
    }
    let merged = root.join("runs/merged");
    let ms = s(&merged);
    let o = emu_eval(&["merge", &shards[0], &shards[1], "--output", &ms], None);
    ok(&o);
    let sorted = |d: &Path| {
        let mut l = lines(d);
        l.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        l
    };
    assert_eq!(sorted(&merged), sorted(&single), "{task}: merged lines");
    let mut mm = metrics(&merged);
    let mut ms_ = metrics(&single);
    for m in [&mut mm, &mut ms_] {
        m["config"].as_object_mut().unwrap().remove("device");
    }
    assert_eq!(mm, ms_, "{task}: merged metrics");
    assert!(read_json(&merged.join("metrics.json"))["timing"]["merged_shards"] == 2);

    // report reads a merged folder, a shard, and the parent of all of them.
    for (what, dir) in [("merged", merged.clone()), ("parent", root.join("runs"))] {
        let out = root.join(format!("report-{what}"));
        let o = emu_eval(&["report", &s(&dir), "--out", &s(&out)], None);
        ok(&o);
        let md = std::fs::read_to_string(out.join("results.md")).unwrap();
        assert!(md.contains(task), "{what}: {md}");
    }
    let o = emu_eval(&["compare", "--baseline", &s(&single), "--candidate", &ms], None);
    ok(&o);
    // The parent folders of two sides compare task by task.
    let o = emu_eval(
        &["compare", "--baseline", &s(&single), "--candidate", &s(&root.join("runs/merged"))],
        None,
    );
    ok(&o);
}

#[test]
fn understanding_task_shards_merge_report_compare() {
    shards_merge_report_compare("vqav2", "vqav2", &["--shots", "2"]);
}

#[test]
fn text_to_image_shards_merge_report_compare() {
    let decoder = s(&shared().join("fixtures/visual-decoder-tiny"));
    let inception = s(&shared().join("fixtures/fid-inception/inception_weights.safetensors"));
    shards_merge_report_compare(
        "coco_t2i",
        "coco_t2i",
        &["--decoder", &decoder, "--inception", &inception, "--prompts", "4", "--steps", "2"],
    );
}

#[test]
fn parent_of_a_multi_task_run_is_read_and_unfinished_runs_are_left_out() {
    let root = tmp("parent");
    let parent = root.join("runs");
    ok(&run(&root, &parent, &fixtures(), &["--task", "vqav2", "--task", "okvqa", "--limit", "3"]));
    // An unfinished run beside them: a note, not an error.
    let unfinished = parent.join("zz-unfinished");
    std::fs::create_dir_all(&unfinished).unwrap();
    std::fs::copy(parent.join("vqav2-emu-0shot/run.json"), unfinished.join("run.json")).unwrap();
    let out = root.join("report");
    ok(&emu_eval(&["report", &s(&parent), "--out", &s(&out)], None));
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("| vqav2-emu-0shot |") && md.contains("| okvqa-emu-0shot |"), "{md}");
    assert!(md.contains("zz-unfinished: left out: the run has not finished"), "{md}");
    let o = emu_eval(&["compare", "--baseline", &s(&parent), "--candidate", &s(&parent)], None);
    ok(&o);
}

/// A sample that cannot be decoded stays in the official result file (empty answer), and
/// `score` on that file gives `metrics.json`'s number.
#[test]
fn a_failed_sample_stays_in_the_official_file_and_score_agrees() {
    let root = tmp("failed");
    let dst = copy_fixture(&root, "vqav2");
    let img = dst.join("val2014/COCO_val2014_000000262148.jpg");
    let bytes = std::fs::read(&img).unwrap();
    std::fs::write(&img, &bytes[..200]).unwrap();
    let out = root.join("run");
    ok(&run(&root, &out, &root.join("data"), &["--task", "vqav2", "--max-failures", "10"]));
    let m = read_json(&out.join("metrics.json"));
    let failed = m["counts"]["failed"].as_u64().unwrap();
    assert!(failed >= 1, "{m}");
    let result = read_json(&out.join("vqav2_answer.json"));
    let result = result.as_array().unwrap();
    assert_eq!(result.len() as u64, m["counts"]["samples"].as_u64().unwrap());
    let all: Vec<Value> = lines(&out);
    for l in all.iter().filter(|l| !l["error"].is_null()) {
        let qid = l["id"].as_str().unwrap().parse::<u64>().unwrap();
        let rec = result.iter().find(|r| r["question_id"] == qid).expect("failed question listed");
        assert_eq!(rec["answer"], "");
        // The failed line keeps the stage it failed in, and every line its ground truth.
        let st = &l["stages"][0];
        assert!(st["text"].as_str().unwrap().contains("[IMG]"), "{l}");
        assert!(!st["error"].is_null(), "{l}");
    }
    assert!(all.iter().all(|l| l["ground_truth"]["answers"].is_array()));
    let score = crate::common::json_out(&emu_eval(
        &[
            "score",
            "--task",
            "vqav2",
            "--data-root",
            &s(&root.join("data")),
            "--predictions",
            &s(&out.join("vqav2_answer.json")),
        ],
        None,
    ));
    let head = m["headline"]["value"].as_f64().unwrap();
    let scored = score["metric"]["overall"].as_f64().unwrap();
    assert!((head - scored).abs() < 1e-9, "metrics.json {head} vs score {scored}: {score}");
}

#[test]
fn compare_refuses_other_data_and_disjoint_samples() {
    let root = tmp("compare-data");
    let a = root.join("a");
    ok(&run(&root, &a, &fixtures(), &["--task", "vqav2"]));
    // The same task over data whose question file differs.
    let dst = copy_fixture(&root, "vqav2");
    let q = dst.join("v2_OpenEnded_mscoco_val2014_questions.json");
    let mut v: Value = read_json(&q);
    v["questions"][0]["question"] = Value::from("What is it?");
    std::fs::write(&q, serde_json::to_vec(&v).unwrap()).unwrap();
    let b = root.join("b");
    ok(&run(&root, &b, &root.join("data"), &["--task", "vqav2"]));
    let o = emu_eval(&["compare", "--baseline", &s(&a), "--candidate", &s(&b)], None);
    fails_with(&o, "DATA CHANGED");
    // No sample in common: the two shards of one run.
    let (s1, s2) = (root.join("s1"), root.join("s2"));
    ok(&run(&root, &s1, &fixtures(), &["--task", "vqav2", "--shard", "1/2"]));
    ok(&run(&root, &s2, &fixtures(), &["--task", "vqav2", "--shard", "2/2"]));
    let o = emu_eval(&["compare", "--baseline", &s(&s1), "--candidate", &s(&s2)], None);
    fails_with(&o, "TOO LITTLE OVERLAP");
    let o = emu_eval(
        &["compare", "--baseline", &s(&s1), "--candidate", &s(&s2), "--min-overlap", "0"],
        None,
    );
    ok(&o);
}

/// Two seeds of the built-in random model on the same built-in data: model mode answers with a
/// paired interval per task, where the plain gate can only say the configuration changed.
#[test]
fn compare_models_on_the_same_data_gives_paired_intervals() {
    let root = tmp("compare-models");
    let cache = root.join("cache");
    let side = |seed: &str| {
        let out = root.join(format!("seed{seed}"));
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_emu-eval"))
            .args(["run", "--task", "vqav2", "--task", "okvqa", "--limit", "6", "--seed", seed])
            .arg("--output")
            .arg(&out)
            .env("EMU_EVAL_CACHE", &cache)
            .env_remove("EMU_EVAL_DATA")
            .output()
            .unwrap();
        ok(&o);
        out
    };
    let (a, b) = (side("0"), side("1"));
    let o = emu_eval(&["compare", "--baseline", &s(&a), "--candidate", &s(&b)], None);
    fails_with(&o, "CONFIG CHANGED");
    let o = emu_eval(
        &["compare", "--baseline", &s(&a), "--candidate", &s(&b), "--models", "--json"],
        None,
    );
    assert!(o.status.code().is_some());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let lines = v["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    for l in lines {
        let b = &l["bootstrap"];
        assert_eq!(b["pairs"], 6, "{l}");
        assert!(b["ci_low"].as_f64().unwrap() <= b["ci_high"].as_f64().unwrap());
        assert!(l["verdict"] != "config_changed", "{l}");
    }
    let text =
        emu_eval(&["compare", "--baseline", &s(&a), "--candidate", &s(&b), "--models"], None);
    assert!(String::from_utf8_lossy(&text.stdout).contains("paired mean [95% CI]"));
}

/// A run over the built-in sample data is marked as such wherever a report shows it, and never
/// stands beside a published number.
#[test]
fn report_marks_builtin_sample_data() {
    let root = tmp("builtin-report");
    let out = root.join("run");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_emu-eval"))
        .args(["run", "--task", "vqav2", "--limit", "3", "--output"])
        .arg(&out)
        .env("EMU_EVAL_CACHE", root.join("cache"))
        .env_remove("EMU_EVAL_DATA")
        .output()
        .unwrap();
    ok(&o);
    let cfg = read_json(&out.join("run.json"));
    assert_eq!(cfg["data"]["builtin"], true, "{cfg}");
    assert_eq!(cfg["schema"], 2);
    let rep = root.join("report");
    ok(&emu_eval(&["report", &s(&out), "--out", &s(&rep)], None));
    let md = std::fs::read_to_string(rep.join("results.md")).unwrap();
    assert!(md.contains("built-in sample data"), "{md}");
    let html = std::fs::read_to_string(rep.join("index.html")).unwrap();
    assert!(html.contains("built-in sample data"));
    let results = read_json(&rep.join("results.json"));
    let run = &results["runs"][0];
    assert!(run["paper"].is_null(), "a built-in run is never beside a paper number: {run}");
}

/// Mistakes are one-line errors found before the model loads (the built-in model would print
/// its banner when loaded; none of these get that far) and before any run folder is written.
#[test]
fn mistakes_are_refused_before_the_model_loads() {
    let root = tmp("preflight");
    let data = fixtures();
    let missing = copy_fixture(&root, "okvqa");
    std::fs::remove_file(missing.join("OpenEnded_mscoco_val2014_questions.json")).unwrap();
    let cases: Vec<(Vec<&str>, &str, PathBuf)> = vec![
        (
            vec!["--task", "vqav2", "--limit", "0"],
            "--limit <LIMIT>': must be at least 1",
            data.clone(),
        ),
        (
            vec!["--task", "vqav2", "--batch-size", "0"],
            "--batch-size <BATCH_SIZE>': must be at least 1",
            data.clone(),
        ),
        (vec!["--task", "vqav2", "--task", "vqav2"], "--task vqav2: given twice", data.clone()),
        (
            vec!["--task", "vqav2", "--shots", "2", "--shots", "2"],
            "--shots 2: given twice",
            data.clone(),
        ),
        (vec!["--task", "vqav2", "--shots", "100"], "100 support examples asked", data.clone()),
        (vec!["--task", "coco_caption", "--cot"], "--cot: coco_caption", data.clone()),
        (vec!["--task", "okvqa"], "OpenEnded_mscoco_val2014_questions.json", root.join("data")),
    ];
    for (i, (args, needle, data)) in cases.into_iter().enumerate() {
        let out = root.join(format!("out{i}"));
        let (d, o) = (s(&data), s(&out));
        let mut a = vec!["run", "--data-root", &d, "--output", &o];
        a.extend(args.iter().copied());
        let r = emu_eval(&a, None);
        let err = fails_with(&r, needle);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(!stderr.contains("RANDOM model"), "{args:?}: the model was loaded first: {err}");
        assert!(!out.exists(), "{args:?}: a run folder was written");
    }
}

/// VizWiz writes the gate's probability of "answerable" in its result file and line, and
/// `metrics.json` carries the challenge's unanswerability AP and F1, as `score` computes them
/// from that file.
#[test]
fn vizwiz_writes_answerable_and_scores_answerability() {
    let root = tmp("vizwiz");
    let out = root.join("run");
    ok(&run(&root, &out, &fixtures(), &["--task", "vizwiz"]));
    let result = read_json(&out.join("vizwiz_answer.json"));
    let result = result.as_array().unwrap();
    assert!(!result.is_empty());
    for r in result {
        let p = r["answerable"].as_f64().unwrap_or_else(|| panic!("no answerable: {r}"));
        assert!((0.0..=1.0).contains(&p), "{r}");
    }
    for l in lines(&out) {
        assert!(l["answerable"].is_f64(), "{l}");
    }
    let m = read_json(&out.join("metrics.json"));
    let u = &m["metric"]["unanswerability"];
    assert!(u["average_precision"].is_f64() && u["f1_score"].is_f64(), "{m}");
    let score = crate::common::json_out(&emu_eval(
        &[
            "score",
            "--task",
            "vizwiz",
            "--data-root",
            &s(&fixtures()),
            "--predictions",
            &s(&out.join("vizwiz_answer.json")),
        ],
        None,
    ));
    assert_eq!(score["metric"]["unanswerability"], *u, "{score}");
    assert_eq!(score["metric"]["overall"], m["metric"]["overall"]);
}
