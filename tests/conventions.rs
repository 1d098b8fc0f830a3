//! Habits users bring from lmms-eval and lm-evaluation-harness: task lists and groups, `--limit`
//! as a fraction, decoding overrides recorded in `run.json`, and messages (`--log-level error`,
//! a CPU build asked for CUDA).
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("emu-eval-conv-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emu-eval"))
        .args(args)
        .env("EMU_EVAL_CACHE", root.join("cache"))
        .env_remove("EMU_EVAL_DATA")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn config(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("run.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()
}

#[test]
fn task_groups_and_lists_run_each_task_once_with_a_fractional_limit() {
    let root = tmp("groups");
    let out = root.join("runs");
    let o = run(
        &root,
        &[
            "run",
            "--task",
            "image-qa,vqav2",
            "--limit",
            "0.5",
            "--output",
            out.to_str().unwrap(),
            "--log-level",
            "error",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // --log-level error: nothing on stderr (no notes, banners or progress).
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
    let mut made: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    assert_eq!(made, ["okvqa-emu-0shot", "vizwiz-emu-0shot", "vqav2-emu-0shot"]);
    for d in &made {
        let cfg = config(&out.join(d));
        let n =
            std::fs::read_to_string(out.join(d).join("predictions.jsonl")).unwrap().lines().count();
        assert_eq!(cfg["limit_fraction"], 0.5, "{d}");
        assert_eq!(cfg["limit"], n, "{d}: the first ⌈0.5·n⌉ samples");
        assert!(n >= 1);
    }
    let bad = run(&root, &["run", "--task", "vqa", "--output", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("image-qa") && err.contains("all"), "{err}");
    let listed = run(&root, &["tasks", "--json"]);
    let tasks: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let vqav2 = tasks.as_array().unwrap().iter().find(|t| t["task"] == "vqav2").unwrap();
    assert!(vqav2["groups"].as_array().unwrap().iter().any(|g| g == "table3"));
    assert!(!vqav2["files"].as_array().unwrap().is_empty());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn decoding_overrides_are_recorded_and_change_the_run_fingerprint() {
    let root = tmp("gen");
    let dir = root.join("run");
    let d = dir.to_str().unwrap();
    let base = ["run", "--task", "vqav2", "--limit", "2", "--output", d];
    let o =
        run(&root, &[&base[..], &["--max-new-tokens", "answer=2", "--num-beams", "1"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let g = &config(&dir)["generation"];
    assert_eq!(g["answer"]["max_new_tokens"], 2);
    assert_eq!(g["answer"]["num_beams"], 1);
    assert_eq!(g["caption"]["num_beams"], 1);
    assert!(g["caption"].get("max_new_tokens").is_none());
    // The paper's settings are another configuration: the folder refuses to mix them.
    let again = run(&root, &base);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && err.contains("generation"), "{err}");
    for (flag, v) in
        [("--max-new-tokens", "0"), ("--num-beams", "answer=65"), ("--length-penalty", "x")]
    {
        let bad = run(&root, &[&base[..], &[flag, v]].concat());
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(!bad.status.success() && err.contains(flag), "{flag} {v}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_cpu_build_asked_for_cuda_names_the_build_command() {
    if cfg!(feature = "cuda") {
        return;
    }
    let root = tmp("cuda");
    let o = run(
        &root,
        &[
            "run",
            "--task",
            "vqav2",
            "--device",
            "cuda:0",
            "--output",
            root.join("r").to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("--features cuda"), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}

/// `--sample`: seeded per sample and stage, so batch size and shards do not change the
/// predictions; another seed does; `run.json` records it.
#[test]
fn sampling_is_seeded_per_sample_whatever_the_batch_or_shard() {
    let root = tmp("sample");
    let dir = |n: &str| root.join(n);
    let go = |name: &str, extra: &[&str]| {
        let d = dir(name);
        let base = ["run", "--task", "vqav2", "--limit", "6", "--sample", "--temperature", "2"];
        let o = run(&root, &[&base[..], &["--output", d.to_str().unwrap()], extra].concat());
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
    };
    go("b1", &["--batch-size", "1"]);
    go("b4", &["--batch-size", "4"]);
    go("s1", &["--batch-size", "3", "--shard", "1/2"]);
    go("s2", &["--batch-size", "3", "--shard", "2/2"]);
    go("seed7", &["--batch-size", "4", "--seed", "7"]);
    let b1 = crate::run::lines(&dir("b1"));
    assert_eq!(b1.len(), 6);
    assert_eq!(crate::run::lines(&dir("b4")), b1, "batch 4 against batch 1");
    let mut shards = crate::run::lines(&dir("s1"));
    shards.extend(crate::run::lines(&dir("s2")));
    shards.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let mut sorted = b1.clone();
    sorted.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    assert_eq!(shards, sorted, "two shards against one run");
    let answers = |v: &[Value]| v.iter().map(|l| l["prediction"].clone()).collect::<Vec<_>>();
    assert_ne!(answers(&crate::run::lines(&dir("seed7"))), answers(&b1), "--seed 7 samples others");
    let g = &config(&dir("b1"))["generation"]["answer"];
    assert_eq!((g["sample"].clone(), g["num_beams"].clone()), (Value::Bool(true), 1.into()));
    assert_eq!(g["temperature"], 2.0);
    std::fs::remove_dir_all(&root).unwrap();
}

/// `--batch-size auto` on CPU: a batch per stage kind from the RAM budget, recorded in
/// `run.json`, and the predictions of batch 1; a tiny budget gives batch 1.
#[test]
fn auto_batch_size_fits_the_budget_and_predicts_as_batch_one() {
    let root = tmp("auto");
    let go = |name: &str, batch: &str, budget: Option<&str>| {
        let d = root.join(name);
        let mut c = Command::new(env!("CARGO_BIN_EXE_emu-eval"));
        c.args(["run", "--task", "vizwiz", "--limit", "6", "--batch-size", batch, "--output"])
            .arg(&d)
            .env("EMU_EVAL_CACHE", root.join("cache"))
            .env_remove("EMU_EVAL_DATA")
            .stdin(Stdio::null());
        match budget {
            Some(b) => c.env("EMU_EVAL_MEMORY_BUDGET", b),
            None => c.env_remove("EMU_EVAL_MEMORY_BUDGET"),
        };
        let o = c.output().unwrap();
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        d
    };
    let one = go("one", "1", None);
    let auto = go("auto", "auto", None);
    let small = go("small", "auto", Some("1K"));
    assert_eq!(crate::run::lines(&auto), crate::run::lines(&one), "auto against batch 1");
    let b = &config(&auto)["batch"];
    assert_eq!(b["requested"], "auto");
    assert!(b["method"].as_str().unwrap().starts_with("cpu ram budget"), "{b}");
    for kind in ["answerability", "answer"] {
        let n = b["by_stage"][kind].as_u64().unwrap();
        assert!((2..=64).contains(&n), "{kind}: {n} (the tiny model fits many rows)");
        assert!(b["row_bytes"][kind].as_u64().unwrap() > 0);
        assert_eq!(config(&small)["batch"]["by_stage"][kind], 1, "1 KiB budget");
    }
    assert_eq!(config(&one)["batch"]["by_stage"]["answer"], 1);
    assert_eq!(crate::run::lines(&small), crate::run::lines(&one));
    let bad = run(&root, &["run", "--task", "vqav2", "--batch-size", "0"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("--batch-size"), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}

/// `--threads N` sizes the CPU kernels' pools (recorded in `run.json`) and leaves the
/// predictions as they are; `--threads 0` is refused.
#[test]
fn threads_flag_is_recorded_and_does_not_change_predictions() {
    let root = tmp("threads");
    let go = |n: &str| {
        let d = root.join(format!("t{n}"));
        let o = run(
            &root,
            &[
                "--threads",
                n,
                "run",
                "--task",
                "vqav2",
                "--limit",
                "4",
                "--output",
                d.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "--threads {n}: {}", String::from_utf8_lossy(&o.stderr));
        d
    };
    let (one, two) = (go("1"), go("2"));
    assert_eq!(config(&one)["threads"], 1);
    assert_eq!(config(&two)["threads"], 2);
    let preds =
        |d: &Path| crate::run::lines(d).iter().map(|l| l["prediction"].clone()).collect::<Vec<_>>();
    assert_eq!(preds(&one), preds(&two));
    let bad = run(&root, &["--threads", "0", "run", "--task", "vqav2"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("--threads") && err.trim().lines().count() == 1,
        "{err}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}
