//! `emu-eval run` / `merge` end to end on the dataset fixtures with the tiny parity model:
//! outputs, parity of stage texts and outputs with `prompt` / `generate` / `rank`, scoring,
//! resume after SIGKILL and torn lines, shards + merge, batch-size invariance, failures.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::{copy_fixture, emu_eval, json_out, shared};

const UNDERSTANDING: [&str; 8] =
    ["coco_caption", "vqav2", "okvqa", "vizwiz", "visdial", "msvd_qa", "msrvtt_qa", "nextqa"];

fn data() -> String {
    shared().join("fixtures/datasets").display().to_string()
}

fn model() -> String {
    shared().join("fixtures/emu-tiny").display().to_string()
}

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("run-tests").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `run` with the fixtures and the tiny model; extra args appended.
fn run(out: &Path, extra: &[&str]) -> std::process::Output {
    let out_s = out.display().to_string();
    let (d, m) = (data(), model());
    // One RICES feature cache per test folder (tests run in parallel; runs of one test in order).
    let cache = out.parent().unwrap().join("rices-cache").display().to_string();
    let mut args =
        vec!["run", "--data-root", &d, "--model", &m, "--output", &out_s, "--cache", &cache];
    args.extend_from_slice(extra);
    emu_eval(&args, None)
}

pub(crate) fn ok(o: &std::process::Output) {
    assert!(o.status.success(), "emu-eval failed: {}", String::from_utf8_lossy(&o.stderr));
}

pub(crate) fn read_json(p: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

/// Prediction lines without their timing fields.
pub(crate) fn lines(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("predictions.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("time_seconds");
            v
        })
        .collect()
}

/// metrics.json without the fields that record time, the device or the shard.
pub(crate) fn metrics(dir: &Path) -> Value {
    let mut m = read_json(&dir.join("metrics.json"));
    m.as_object_mut().unwrap().remove("timing");
    m["config"].as_object_mut().unwrap().remove("shard");
    m
}

fn check_outputs(dir: &Path, task: &str) -> Value {
    let m = read_json(&dir.join("metrics.json"));
    assert_eq!(m["task"], task);
    let result = dir.join(m["result_file"].as_str().unwrap());
    assert!(result.is_file(), "{}", result.display());
    let n = lines(dir).len();
    assert!(n > 0);
    assert_eq!(m["counts"]["samples"], n);
    assert_eq!(m["counts"]["failed"], 0, "{task}: {m}");
    for l in lines(dir) {
        assert!(l["error"].is_null(), "{task}: {l}");
        assert!(!l["stages"].as_array().unwrap().is_empty());
        assert!(!l["prediction"].is_null());
    }
    m
}

#[test]
fn every_understanding_task_both_families_zero_and_two_shots_and_cot() {
    let root = tmp("matrix");
    let tasks: Vec<&str> = UNDERSTANDING.iter().flat_map(|t| ["--task", t]).collect();
    for (family, cot) in [("emu", false), ("emu-i", false)] {
        let out = root.join(format!("{family}-{cot}"));
        let mut args = tasks.clone();
        args.extend(["--shots", "0", "--shots", "2", "--model-family", family, "--limit", "3"]);
        if cot {
            args.push("--cot");
        }
        let o = run(&out, &args);
        ok(&o);
        let table = String::from_utf8_lossy(&o.stdout);
        for t in UNDERSTANDING {
            assert!(table.contains(&format!("| {t} |")), "{table}");
            for shots in [0, 2] {
                let dir = out.join(format!("{t}-{family}-{shots}shot"));
                let m = check_outputs(&dir, t);
                assert_eq!(m["config"]["shots"], shots);
                assert_eq!(m["config"]["model_family"], family);
                if shots == 2 {
                    let l = &lines(&dir)[0];
                    assert_eq!(l["support"]["ids"].as_array().unwrap().len(), 2);
                    assert_eq!(l["support"]["method"], "rices");
                    assert_eq!(l["support"]["similarities"].as_array().unwrap().len(), 2);
                }
            }
        }
    }
    // Chain-of-thought (pretrained family, QA tasks): a caption stage fills the answer stage.
    let out = root.join("cot");
    let qa: Vec<&str> = UNDERSTANDING[1..].iter().flat_map(|t| ["--task", t]).collect();
    let mut args = qa;
    args.extend(["--shots", "0", "--shots", "2", "--cot", "--limit", "3"]);
    ok(&run(&out, &args));
    for t in &UNDERSTANDING[1..] {
        for shots in [0, 2] {
            let dir = out.join(format!("{t}-emu-{shots}shot-cot"));
            check_outputs(&dir, t);
            let l = &lines(&dir)[0];
            let stages = l["stages"].as_array().unwrap();
            let caption =
                stages.iter().find(|s| s["stage"] == "cot.caption").expect("cot caption stage");
            let answer = stages.last().unwrap();
            let cap = caption["output"].as_str().unwrap();
            assert!(!answer["text"].as_str().unwrap().contains("{cot.caption}"));
            let filled = tasks::metrics::postprocess::coco_caption(cap);
            assert!(
                answer["text"].as_str().unwrap().contains(&filled),
                "{t}: caption {filled:?} not in {answer}"
            );
        }
    }
}

/// Out of the box (no `--data-root`, no `--model`): every task at 0, 2 and 4 shots on the built-in
/// sample data with the built-in random model finishes with no failed sample (video few-shot
/// included: a random model may generate `<image>`, an ordinary token while decoding).
#[test]
fn every_task_and_shot_count_on_builtin_data_and_model_has_no_failure() {
    let root = tmp("builtin-matrix");
    let out = root.join("runs");
    let mut args: Vec<String> = vec!["run".into(), "--output".into(), out.display().to_string()];
    for t in UNDERSTANDING {
        args.extend(["--task".into(), t.to_string()]);
    }
    args.extend(["--shots", "0", "--shots", "2", "--shots", "4", "--limit", "4"].map(String::from));
    let o = Command::new(env!("CARGO_BIN_EXE_emu-eval"))
        .args(&args)
        .env("EMU_EVAL_CACHE", root.join("cache"))
        .env_remove("EMU_EVAL_DATA")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ok(&o);
    for t in UNDERSTANDING {
        for shots in [0, 2, 4] {
            check_outputs(&out.join(format!("{t}-emu-{shots}shot")), t);
        }
    }
    let t2i = root.join("t2i");
    let o = Command::new(env!("CARGO_BIN_EXE_emu-eval"))
        .args(["run", "--task", "coco_t2i", "--prompts", "3", "--steps", "2", "--output"])
        .arg(&t2i)
        .env("EMU_EVAL_CACHE", root.join("cache"))
        .env_remove("EMU_EVAL_DATA")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(read_json(&t2i.join("metrics.json"))["counts"]["failed"], 0);
}

/// The stage text equals `prompt --json`'s; its output equals `generate` / `rank` with the
/// task's settings on that text and those images; `score` on the result file gives `metric`.
#[test]
fn stages_match_prompt_generate_rank_and_score_matches_metrics() {
    let root = tmp("parity");
    let (d, m) = (data(), model());
    // vqav2: generation (5 beams, 20 tokens, min_length 1, lp -1); vizwiz: gate + answer;
    // visdial: ranking with 100 segments.
    for task in ["vqav2", "vizwiz", "visdial"] {
        let out = root.join(task);
        ok(&run(&out, &["--task", task, "--shots", "2", "--limit", "2", "--support", "random"]));
        let mets = read_json(&out.join("metrics.json"));
        for l in lines(&out) {
            let id = l["id"].as_str().unwrap();
            let p = json_out(&emu_eval(
                &[
                    "prompt",
                    "--task",
                    task,
                    "--model-family",
                    "emu",
                    "--shots",
                    "2",
                    "--data-root",
                    &d,
                    "--model",
                    &m,
                    "--sample",
                    id,
                    "--support",
                    "random",
                    "--json",
                ],
                None,
            ));
            assert_eq!(p["support"]["ids"], l["support"]["ids"], "{task} {id}");
            let stages = l["stages"].as_array().unwrap();
            let pstages = p["prompts"].as_array().unwrap();
            assert_eq!(stages.len(), pstages.len());
            for (s, ps) in stages.iter().zip(pstages) {
                assert_eq!(s["text"], ps["text"], "{task} {id} {}", s["stage"]);
                assert_eq!(s["images"], ps["images"]);
                let text = s["text"].as_str().unwrap();
                let images: Vec<&str> =
                    s["images"].as_array().unwrap().iter().map(|i| i.as_str().unwrap()).collect();
                let mut args: Vec<String> = Vec::new();
                let want = match (task, s["stage"].as_str().unwrap()) {
                    ("visdial", _) => {
                        args.extend(
                            ["rank", "--model", m.as_str(), "--prompt", text, "--segments", "100"]
                                .map(String::from),
                        );
                        for im in &images {
                            args.extend(["--image".into(), im.to_string()]);
                        }
                        let sample = tasks_sample_options(task, id);
                        for c in sample {
                            args.extend(["--candidate".into(), c]);
                        }
                        let a: Vec<&str> = args.iter().map(String::as_str).collect();
                        let r = json_out(&emu_eval(&a, None));
                        assert_eq!(r["visdial_ranks"], s["output"], "{task} {id}");
                        // The same with the stage object instead of --prompt/--image.
                        let mut a: Vec<&str> = vec![
                            "rank",
                            "--model",
                            m.as_str(),
                            "--stage",
                            "-",
                            "--segments",
                            "100",
                        ];
                        a.extend(
                            args.iter().skip_while(|x| *x != "--candidate").map(String::as_str),
                        );
                        let r = json_out(&emu_eval(&a, Some(&serde_json::to_vec(ps).unwrap())));
                        assert_eq!(r["visdial_ranks"], s["output"], "{task} {id} (--stage)");
                        continue;
                    }
                    (_, "answerability") => vec![
                        "--num-beams",
                        "5",
                        "--max-new-tokens",
                        "50",
                        "--min-length",
                        "1",
                        "--length-penalty",
                        "0",
                        "--allowed",
                        "yes.,no.",
                    ],
                    _ => vec![
                        "--num-beams",
                        "5",
                        "--max-new-tokens",
                        "20",
                        "--min-length",
                        "1",
                        "--length-penalty",
                        "-1",
                    ],
                };
                args.extend(
                    ["generate", "--model", m.as_str(), "--prompt", text].map(String::from),
                );
                for im in &images {
                    args.extend(["--image".into(), im.to_string()]);
                }
                args.extend(want.iter().map(|s| s.to_string()));
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                let g = json_out(&emu_eval(&a, None));
                assert_eq!(g["results"][0]["text"], s["output"], "{task} {id} {}", s["stage"]);
            }
        }
        // `score` on the result file gives metrics.json's metric (limit 2: the others are absent).
        let result = out.join(mets["result_file"].as_str().unwrap()).display().to_string();
        let s = json_out(&emu_eval(
            &[
                "score",
                "--task",
                task,
                "--data-root",
                &d,
                "--predictions",
                &result,
                "--allow-partial",
            ],
            None,
        ));
        let mut metric = s["metric"].clone();
        for k in ["images", "questions", "rounds"] {
            metric.as_object_mut().unwrap().remove(k);
        }
        assert_eq!(metric, mets["metric"], "{task}");
    }
}

/// Video tasks: each stage's text, images and frames equal `prompt --json`'s; its output equals
/// `generate --stage` on that stage object (the query's 8 frames and each support example's 2
/// decoded as `run` decodes them) with the short-answer settings of §3.4.
#[test]
fn video_stages_match_prompt_and_generate() {
    let root = tmp("video-parity");
    let (d, m) = (data(), model());
    for task in ["msvd_qa", "nextqa"] {
        for shots in ["0", "2"] {
            let out = root.join(format!("{task}-{shots}"));
            ok(&run(
                &out,
                &["--task", task, "--shots", shots, "--limit", "2", "--support", "random"],
            ));
            for l in lines(&out) {
                let id = l["id"].as_str().unwrap();
                let p = json_out(&emu_eval(
                    &[
                        "prompt",
                        "--task",
                        task,
                        "--model-family",
                        "emu",
                        "--shots",
                        shots,
                        "--data-root",
                        &d,
                        "--model",
                        &m,
                        "--sample",
                        id,
                        "--support",
                        "random",
                        "--json",
                    ],
                    None,
                ));
                let stages = l["stages"].as_array().unwrap();
                let pstages = p["prompts"].as_array().unwrap();
                assert_eq!(stages.len(), pstages.len(), "{task} {id}");
                for (s, ps) in stages.iter().zip(pstages) {
                    for k in ["text", "images", "frames"] {
                        assert_eq!(s[k], ps[k], "{task} {shots}-shot {id}: {k}");
                    }
                    let frames = ps["frames"].as_array().unwrap();
                    let want_frames = 8 + 2 * shots.parse::<usize>().unwrap();
                    assert_eq!(frames.len(), want_frames, "{task} {id}");
                    assert!(frames.iter().all(|f| f.is_array()), "{task} {id}: {ps}");
                    let stage = serde_json::to_vec(ps).unwrap();
                    let g = json_out(&emu_eval(
                        &[
                            "generate",
                            "--model",
                            &m,
                            "--stage",
                            "-",
                            "--num-beams",
                            "5",
                            "--max-new-tokens",
                            "20",
                            "--min-length",
                            "1",
                            "--length-penalty",
                            "-1",
                        ],
                        Some(&stage),
                    ));
                    assert_eq!(
                        g["results"][0]["text"], s["output"],
                        "{task} {shots}-shot {id} {}",
                        s["stage"]
                    );
                    // The frames are honoured: every slot showing frame 0 instead scores differently.
                    let mut first = ps.clone();
                    for f in first["frames"].as_array_mut().unwrap() {
                        f[0] = 0.into();
                    }
                    let g0 = json_out(&emu_eval(
                        &[
                            "generate",
                            "--model",
                            &m,
                            "--stage",
                            "-",
                            "--num-beams",
                            "5",
                            "--max-new-tokens",
                            "20",
                            "--min-length",
                            "1",
                            "--length-penalty",
                            "-1",
                        ],
                        Some(&serde_json::to_vec(&first).unwrap()),
                    ));
                    assert_ne!(
                        g0["results"][0]["score"], g["results"][0]["score"],
                        "{task} {id}: frames ignored"
                    );
                }
            }
        }
    }
}

/// The answer options of a VisDial round, as the loader resolves them.
fn tasks_sample_options(task: &str, id: &str) -> Vec<String> {
    let t = tasks::registry::get(task).unwrap();
    let split = t.load(&t.dir(Path::new(&data())), t.eval_split).unwrap();
    let s = split.samples.iter().find(|s| s.id.to_string() == id).unwrap();
    match &s.content {
        tasks::datasets::Content::Dialog { options, .. } => options.clone(),
        _ => panic!("not a dialog"),
    }
}

/// `neighbours` retrieves what `run --shots 2` logs (most similar first there, last in the prompt).
#[test]
fn rices_support_of_run_equals_neighbours() {
    let root = tmp("rices");
    let out = root.join("okvqa");
    ok(&run(&out, &["--task", "okvqa", "--shots", "2"]));
    let (d, m) = (data(), model());
    let cache = root.join("rices-cache").display().to_string();
    for l in lines(&out) {
        let id = l["id"].as_str().unwrap();
        let n = json_out(&emu_eval(
            &[
                "neighbours",
                "--task",
                "okvqa",
                "--data-root",
                &d,
                "--model",
                &m,
                "--cache",
                &cache,
                "--sample",
                id,
                "-k",
                "2",
                "--json",
            ],
            None,
        ));
        let mut ids: Vec<Value> =
            n["neighbours"].as_array().unwrap().iter().map(|x| x["id"].clone()).collect();
        ids.reverse();
        assert_eq!(Value::Array(ids), l["support"]["ids"], "{id}");
        // `prompt` with run's defaults shows the support examples run used (RICES, same cache).
        let p = json_out(&emu_eval(
            &[
                "prompt",
                "--task",
                "okvqa",
                "--shots",
                "2",
                "--data-root",
                &d,
                "--model",
                &m,
                "--cache",
                &cache,
                "--sample",
                id,
                "--json",
            ],
            None,
        ));
        assert_eq!(p["support"]["ids"], l["support"]["ids"], "prompt vs run: {id}");
        assert_eq!(p["support"]["method"], "rices");
        assert_eq!(l["support"]["method"], "rices");
    }
}

#[test]
fn full_run_score_equals_metrics_json() {
    let out = tmp("score");
    let d = data();
    for task in ["coco_caption", "okvqa", "msvd_qa", "nextqa"] {
        let dir = out.join(task);
        ok(&run(&dir, &["--task", task]));
        let mets = read_json(&dir.join("metrics.json"));
        let result = dir.join(mets["result_file"].as_str().unwrap()).display().to_string();
        let s = json_out(&emu_eval(
            &["score", "--task", task, "--data-root", &d, "--predictions", &result],
            None,
        ));
        let mut metric = s["metric"].clone();
        for k in ["images", "questions", "rounds"] {
            metric.as_object_mut().unwrap().remove(k);
        }
        assert_eq!(metric, mets["metric"], "{task}");
        assert!(mets["headline"]["value"].is_number(), "{task}: {mets}");
    }
}

#[test]
fn sigkill_and_torn_line_resume_to_identical_files() {
    let root = tmp("resume");
    let full = root.join("full");
    let args = ["--task", "okvqa", "--shots", "2", "--batch-size", "1"];
    ok(&run(&full, &args));
    let want_lines = lines(&full);
    let want_metrics = metrics(&full);
    let want_result = std::fs::read(full.join("okvqa_answer.json")).unwrap();

    // SIGKILL once the first line is there.
    let killed = root.join("killed");
    let out_s = killed.display().to_string();
    let (d, m) = (data(), model());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_emu-eval"));
    cmd.args(["run", "--data-root", &d, "--model", &m, "--output", &out_s])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let pred = killed.join("predictions.jsonl");
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&pred).map(|s| s.lines().count()).unwrap_or(0) < 1
        && t0.elapsed().as_secs() < 120
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = std::fs::read_to_string(&pred).unwrap().lines().count();
    assert!(partial >= 1 && partial <= want_lines.len());
    ok(&run(&killed, &args));
    assert_eq!(lines(&killed), want_lines);
    assert_eq!(metrics(&killed), want_metrics);
    assert_eq!(std::fs::read(killed.join("okvqa_answer.json")).unwrap(), want_result);

    // A predictions file torn in the middle of a line: the line is redone.
    let torn = root.join("torn");
    std::fs::create_dir_all(&torn).unwrap();
    std::fs::copy(full.join("run.json"), torn.join("run.json")).unwrap();
    let text = std::fs::read_to_string(full.join("predictions.jsonl")).unwrap();
    let cut = text.lines().take(2).map(|l| l.len() + 1).sum::<usize>() + 17;
    std::fs::write(torn.join("predictions.jsonl"), &text[..cut]).unwrap();
    ok(&run(&torn, &args));
    assert_eq!(lines(&torn), want_lines);
    assert_eq!(metrics(&torn), want_metrics);

    // A different configuration refuses to mix in, unless --overwrite.
    let o = run(&torn, &["--task", "okvqa", "--shots", "0"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("shots") && err.lines().count() == 1, "{err}");
    ok(&run(&torn, &["--task", "okvqa", "--shots", "0", "--overwrite"]));
    // Options the prompts cannot honour are refused before any model time is spent.
    let o = run(&root.join("cot-caption"), &["--task", "coco_caption", "--cot"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("chain-of-thought"));
}

#[test]
fn shards_merge_to_the_single_run_and_batch_size_does_not_matter() {
    let root = tmp("shards");
    let single = root.join("single");
    ok(&run(&single, &["--task", "vqav2", "--shots", "2", "--batch-size", "4"]));
    let one = root.join("batch1");
    ok(&run(&one, &["--task", "vqav2", "--shots", "2", "--batch-size", "1"]));
    assert_eq!(lines(&one), lines(&single), "batch sizes 1 and 4 differ");

    let (a, b) = (root.join("s1"), root.join("s2"));
    ok(&run(&a, &["--task", "vqav2", "--shots", "2", "--shard", "1/2"]));
    ok(&run(&b, &["--task", "vqav2", "--shots", "2", "--shard", "2/2", "--batch-size", "3"]));
    let merged = root.join("merged");
    let (a_s, b_s, m_s, d) =
        (a.display().to_string(), b.display().to_string(), merged.display().to_string(), data());
    ok(&emu_eval(&["merge", &a_s, &b_s, "--output", &m_s, "--data-root", &d], None));
    assert_eq!(lines(&merged), lines(&single));
    assert_eq!(metrics(&merged), metrics(&single));
    assert_eq!(
        std::fs::read(merged.join("vqav2_answer.json")).unwrap(),
        std::fs::read(single.join("vqav2_answer.json")).unwrap()
    );
    // A missing shard is an error, never a partial result.
    let o = emu_eval(&["merge", &a_s, "--output", &m_s, "--data-root", &d], None);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing shard"));
}

#[test]
fn corrupt_image_is_recorded_counted_and_gates_the_exit_status() {
    let root = tmp("corrupt");
    // A copy of the vqav2 fixture with one evaluation image truncated.
    let dst = copy_fixture(&root, "vqav2");
    let img = dst.join("val2014/COCO_val2014_000000262148.jpg");
    let bytes = std::fs::read(&img).unwrap();
    std::fs::write(&img, &bytes[..bytes.len().min(200)]).unwrap();
    let d = root.join("data").display().to_string();
    let m = model();
    let strict = root.join("strict").display().to_string();
    let o = emu_eval(
        &["run", "--task", "vqav2", "--data-root", &d, "--model", &m, "--output", &strict],
        None,
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--max-failures"), "{err}");
    let lenient = root.join("lenient");
    let ls = lenient.display().to_string();
    let o = emu_eval(
        &[
            "run",
            "--task",
            "vqav2",
            "--data-root",
            &d,
            "--model",
            &m,
            "--output",
            &ls,
            "--max-failures",
            "5",
        ],
        None,
    );
    ok(&o);
    let mets = read_json(&lenient.join("metrics.json"));
    let failed = mets["counts"]["failed"].as_u64().unwrap();
    assert!(failed >= 1, "{mets}");
    let bad: Vec<Value> = lines(&lenient).into_iter().filter(|l| !l["error"].is_null()).collect();
    assert_eq!(bad.len() as u64, failed);
    for l in &bad {
        assert!(l["error"].as_str().unwrap().contains("COCO_val2014_000000262148.jpg"), "{l}");
        assert!(l["prediction"].is_null() && l["score"].is_null());
    }
    // The result file lists every sample, a failed one with the empty answer.
    let result = read_json(&lenient.join("vqav2_answer.json"));
    assert_eq!(
        result.as_array().unwrap().len() as u64,
        mets["counts"]["samples"].as_u64().unwrap()
    );
    let empty = result.as_array().unwrap().iter().filter(|r| r["answer"] == "").count() as u64;
    assert!(empty >= failed, "{result}");
}
