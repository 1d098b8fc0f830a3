//! `emu-eval report` and `emu-eval compare` on synthetic run folders (the run schema v1).
use std::path::{Path, PathBuf};
use std::process::Output;

use reports::runs::Family;
use reports::synthetic::{self, Spec};

use crate::common::{emu_eval, shared};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reports-cli").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, specs: &[Spec]) -> Vec<PathBuf> {
    synthetic::write_runs(dir, specs, &shared().join("fixtures")).unwrap()
}

fn run(args: &[&str]) -> (Output, String, String) {
    let out = emu_eval(args, None);
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    (out, so, se)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn report_writes_every_format() {
    let dir = scratch("report");
    let runs = write(&dir.join("runs"), &synthetic::default_specs());
    let out_dir = dir.join("out");
    let mut args = vec!["report", "--out", s(&out_dir)];
    args.extend(runs.iter().map(|p| s(p)));
    let (out, so, se) = run(&args);
    assert!(out.status.success(), "{se}");
    assert!(so.contains(&format!("{} run(s)", runs.len())), "{so}");
    assert!(
        so.contains("not comparable to full-set CIDEr"),
        "the CIDEr subset note is printed: {so}"
    );
    for f in [
        "results.md",
        "results.csv",
        "results.json",
        "index.html",
        "plots/shots_vqav2.svg",
        "plots/shots_vqav2.png",
        "plots/bars_coco_t2i.png",
    ] {
        assert!(out_dir.join(f).is_file(), "{f}");
    }
    let md = std::fs::read_to_string(out_dir.join("results.md")).unwrap();
    assert!(
        md.contains("## Table 1: zero-shot")
            && md.contains("## Table 3: few-shot")
            && md.contains("## Table 2")
    );
}

#[test]
fn report_errors_are_one_line_naming_file_and_field() {
    let dir = scratch("bad");
    let runs = write(&dir, &[Spec::new("vqav2", Family::Emu, 0)]);
    let metrics = runs[0].join("metrics.json");
    let text =
        std::fs::read_to_string(&metrics).unwrap().replace("\"shots\": 0", "\"shots\": \"zero\"");
    std::fs::write(&metrics, text).unwrap();
    let (out, _, se) = run(&["report", "--out", s(&dir.join("out")), s(&runs[0])]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(se.lines().count(), 1, "{se}");
    assert!(se.contains("metrics.json: config.shots:"), "{se}");
    let (out, _, se) = run(&["report", s(&dir.join("nope"))]);
    assert_eq!(out.status.code(), Some(1));
    assert!(se.contains("nope: not found (expected a run folder or a folder of runs)"), "{se}");
}

#[test]
fn report_fails_clearly_without_a_font() {
    let dir = scratch("font");
    let runs = write(&dir, &[Spec::new("vqav2", Family::Emu, 0)]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_emu-eval"))
        .args(["report", "--out", s(&dir.join("out")), s(&runs[0])])
        .env("EMU_EVAL_FONT", dir.join("missing.ttf"))
        .output()
        .unwrap();
    let se = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(se.contains("missing.ttf") && se.contains("fonts-dejavu-core"), "{se}");
}

/// Baseline and candidate folders; `tweak` changes the candidate's specs.
fn pair(name: &str, tweak: impl Fn(&mut Vec<Spec>)) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    let base: Vec<Spec> =
        synthetic::default_specs().into_iter().filter(|s| s.task != "okvqa").collect();
    let mut cand = base.clone();
    tweak(&mut cand);
    write(&dir.join("baseline"), &base);
    write(&dir.join("candidate"), &cand);
    (dir.join("baseline"), dir.join("candidate"))
}

#[test]
fn compare_identical_runs_passes() {
    let (b, c) = pair("identical", |_| {});
    let (out, so, se) = run(&["compare", "--baseline", s(&b), "--candidate", s(&c), "--paired"]);
    assert!(out.status.success(), "{so}{se}");
    assert!(!so.contains("REGRESSION") && so.contains("vqav2 emu 4-shot"), "{so}");
    // A report's results.json works as a side too.
    let rep = b.parent().unwrap().join("report");
    let mut args = vec!["report", "--out", s(&rep)];
    let dirs: Vec<PathBuf> = std::fs::read_dir(&b).unwrap().map(|e| e.unwrap().path()).collect();
    args.extend(dirs.iter().map(|d| s(d)));
    assert!(run(&args).0.status.success());
    let (out, so, _) = run(&[
        "compare",
        "--baseline",
        s(&rep.join("results.json")),
        "--candidate",
        s(&c),
        "--paired",
    ]);
    assert!(out.status.success(), "{so}");
}

fn vqa4(specs: &mut [Spec]) -> &mut Spec {
    specs.iter_mut().find(|s| s.task == "vqav2" && s.shots == 4).unwrap()
}

#[test]
fn compare_flags_a_regression_beyond_tolerance() {
    let (_, c) = pair("regression", |c| {
        let v = vqa4(c);
        v.skill = 0.1;
        v.samples = 40;
    });
    // Make the baseline the same size so all samples pair.
    let base_dir = c.parent().unwrap().join("baseline40");
    let mut base: Vec<Spec> =
        synthetic::default_specs().into_iter().filter(|s| s.task != "okvqa").collect();
    vqa4(&mut base).samples = 40;
    write(&base_dir, &base);
    let (out, so, se) = run(&[
        "compare",
        "--baseline",
        s(&base_dir),
        "--candidate",
        s(&c),
        "--paired",
        "--seed",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(1), "{so}");
    let line = so.lines().find(|l| l.starts_with("vqav2 emu 4-shot")).unwrap();
    assert!(line.contains("REGRESSION"), "{line}");
    assert_eq!(se.lines().count(), 1);
    assert!(se.contains("compare: 1 failing line(s): vqav2 emu 4-shot (REGRESSION)"), "{se}");
    // The same drop within a generous tolerance passes.
    let (out, so, _) = run(&[
        "compare",
        "--baseline",
        s(&base_dir),
        "--candidate",
        s(&c),
        "--paired",
        "--tolerance",
        "vqav2=90",
    ]);
    assert!(out.status.success(), "{so}");
    // Deterministic for a seed: the JSON output (bootstrap interval and p) is identical.
    let a = run(&[
        "compare",
        "--baseline",
        s(&base_dir),
        "--candidate",
        s(&c),
        "--paired",
        "--seed",
        "3",
        "--json",
    ])
    .1;
    let again = run(&[
        "compare",
        "--baseline",
        s(&base_dir),
        "--candidate",
        s(&c),
        "--paired",
        "--seed",
        "3",
        "--json",
    ])
    .1;
    assert_eq!(a, again);
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    let l = v["lines"].as_array().unwrap().iter().find(|l| l["key"] == "vqav2 emu 4-shot").unwrap();
    assert!(
        l["bootstrap"]["p_worse"].as_f64().unwrap() < 0.05
            && l["bootstrap"]["ci_high"].as_f64().unwrap() < 0.0,
        "{l}"
    );
}

/// Copies a run folder, lowering the score of its first sample scored 100 to 0 (and the headline
/// accordingly): a one-sample drop.
fn drop_one_sample(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join("run.json"), to.join("run.json")).unwrap();
    let text = std::fs::read_to_string(from.join("predictions.jsonl")).unwrap();
    let mut lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let hit = lines.iter_mut().find(|l| l["score"] == 100.0).expect("a sample scored 100");
    hit["score"] = 0.0.into();
    let n = lines.len() as f64;
    let out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    std::fs::write(to.join("predictions.jsonl"), out.join("\n") + "\n").unwrap();
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(from.join("metrics.json")).unwrap()).unwrap();
    let v = m["headline"]["value"].as_f64().unwrap() - 100.0 / n;
    m["headline"]["value"] = v.into();
    std::fs::write(to.join("metrics.json"), m.to_string()).unwrap();
}

#[test]
fn compare_paired_requires_significance() {
    let dir = scratch("significance");
    let base = write(&dir.join("base"), &[Spec::new("vqav2", Family::Emu, 4)]).remove(0);
    let cand = dir.join("cand");
    drop_one_sample(&base, &cand);
    // Worse by 100/12 points: beyond a zero tolerance, so the tolerance alone flags it …
    let (out, so, _) = run(&["compare", "--baseline", s(&base), "--candidate", s(&cand)]);
    assert_eq!(out.status.code(), Some(1), "{so}");
    assert!(so.contains("REGRESSION"), "{so}");
    // … but one sample of twelve is not a significant drop under the paired bootstrap.
    let (out, so, _) =
        run(&["compare", "--baseline", s(&base), "--candidate", s(&cand), "--paired"]);
    assert!(out.status.success(), "{so}");
    assert!(so.contains("not significant"), "{so}");
}

#[test]
fn compare_reports_a_missing_task_and_a_changed_config() {
    let (b, c) = pair("missing", |c| {
        c.retain(|s| s.task != "vizwiz");
        c.iter_mut().find(|s| s.task == "coco_caption").unwrap().limit = Some(4);
    });
    let (out, so, se) = run(&["compare", "--baseline", s(&b), "--candidate", s(&c)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        so.lines()
            .any(|l| l.starts_with("vizwiz emu 4-shot") && l.contains("MISSING in candidate")),
        "{so}"
    );
    assert!(
        so.lines()
            .any(|l| l.starts_with("coco_caption emu-i 0-shot") && l.contains("CONFIG CHANGED")),
        "{so}"
    );
    assert!(so.contains("coco_caption emu-i 0-shot: limit: 8 → 4"), "{so}");
    assert!(so.contains("not comparable to full-set CIDEr"), "{so}");
    assert!(se.contains("MISSING in candidate") && se.contains("CONFIG CHANGED"), "{se}");
}

#[test]
fn compare_bad_input_is_one_line() {
    let (b, _) = pair("badinput", |_| {});
    let (out, _, se) = run(&["compare", "--baseline", s(&b), "--candidate", s(&b.join("nope"))]);
    assert_eq!(out.status.code(), Some(1));
    assert!(se.contains("nope: not found") && se.lines().count() == 1, "{se}");
    let (out, _, se) =
        run(&["compare", "--baseline", s(&b), "--candidate", s(&b), "--tolerance", "vqav2=lots"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(se.contains("--tolerance: `vqav2=lots`"), "{se}");
}

/// `emu-eval run` on the dataset fixtures with the tiny model (both families, zero and two
/// shots, an image, a captioning and a video task), then `report` and `compare` on its folders.
#[test]
fn report_and_compare_on_fixture_runs() {
    let dir = scratch("fixture-runs");
    let (data, model) = (shared().join("fixtures/datasets"), shared().join("fixtures/emu-tiny"));
    let runs = dir.join("runs");
    for family in ["emu", "emu-i"] {
        let mut args = vec![
            "run",
            "--data-root",
            s(&data),
            "--model",
            s(&model),
            "--output",
            s(&runs),
            "--model-family",
            family,
        ];
        args.extend([
            "--task",
            "vqav2",
            "--task",
            "coco_caption",
            "--task",
            "msvd_qa",
            "--shots",
            "0",
            "--shots",
            "2",
        ]);
        let (out, so, se) = run(&args);
        assert!(out.status.success(), "run: {so}{se}");
    }
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(&runs).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    assert_eq!(dirs.len(), 12, "{dirs:?}");
    let out_dir = dir.join("report");
    let mut args = vec!["report", "--out", s(&out_dir)];
    args.extend(dirs.iter().map(|d| s(d)));
    let (out, so, se) = run(&args);
    assert!(out.status.success(), "report: {se}");
    assert!(so.contains("12 run(s)"), "{so}");
    for f in [
        "results.md",
        "results.csv",
        "results.json",
        "index.html",
        "plots/shots_vqav2.svg",
        "plots/shots_vqav2.png",
        "plots/bars_msvd_qa.png",
    ] {
        assert!(out_dir.join(f).is_file(), "{f}");
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["runs"].as_array().unwrap().len(), 12);
    for r in results["runs"].as_array().unwrap() {
        let metrics: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(runs.join(r["name"].as_str().unwrap()).join("metrics.json"))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            r["headline"], metrics["headline"],
            "the report carries the run's headline unchanged"
        );
        // Per-sample scores except for the corpus-level CIDEr.
        assert_eq!(r["sample_scores"].is_null(), r["task"] == "coco_caption", "{}", r["name"]);
    }
    let md = std::fs::read_to_string(out_dir.join("results.md")).unwrap();
    // Zero-shot rows of both families sit in Table 1, the 2-shot pretrained rows in Table 3; the
    // few-shot runs used RICES (run's default), as the paper rows did, so no support note.
    assert!(
        md.contains("**ours: Emu [emu-tiny, f32, seed 0]**")
            && md.contains("**ours: Emu-I [emu-tiny, f32, seed 0]**"),
        "{md}"
    );
    assert!(
        md.contains("| rices |") && !md.contains("paper row used RICES support examples"),
        "{md}"
    );
    let html = std::fs::read_to_string(out_dir.join("index.html")).unwrap();
    for d in &dirs {
        let name = d.file_name().unwrap().to_str().unwrap();
        assert!(html.contains(&format!("<tr data-run=\"{name}\">")), "{name}");
    }
    assert!(
        html.matches("<img class=\"thumb\"").count() >= 12,
        "thumbnails of the fixture images and video frames"
    );
    // The same runs compared with themselves (as folder and as report) pass the gate.
    let (out, so, se) = run(&[
        "compare",
        "--baseline",
        s(&out_dir.join("results.json")),
        "--candidate",
        s(&runs),
        "--paired",
    ]);
    assert!(out.status.success(), "{so}{se}");
    assert_eq!(so.lines().filter(|l| l.ends_with(" ok")).count(), 12, "{so}");
}
