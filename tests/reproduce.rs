//! `emu-eval reproduce`: the plan of the paper's tables, its scheduler files, one writer per run
//! folder, a stop on SIGTERM, and a real single-node Slurm cluster (`scripts/slurm-local.sh`,
//! packages from `scripts/setup.sh`) running the plan as a job array with a requeued unit.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("emu-eval-repro-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `emu-eval` on the built-in sample data, with the cache (and sample data) under `root`.
fn cmd(root: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_emu-eval"));
    c.args(args)
        .env("EMU_EVAL_CACHE", root.join("cache"))
        .env_remove("EMU_EVAL_DATA")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn run(root: &Path, args: &[&str]) -> Output {
    cmd(root, args).output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "emu-eval failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

fn lines(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn plan_lists_every_cell_or_says_why_not() {
    let root = tmp("plan");
    let out = root.join("r");
    let o = out.to_str().unwrap();
    let table = ok(&run(
        &root,
        &["reproduce", "--output", o, "--family", "emu", "--dry-run", "--no-calibrate"],
    ));
    let plan = read_json(&out.join("plan.json"));
    let cells = plan["cells"].as_array().unwrap();
    // Table 1: Emu on 8 tasks, Emu * on 7 (no COCO value); Table 2: 1; Table 3: 4 tasks × 3 shots.
    assert_eq!(cells.len(), 8 + 7 + 1 + 12, "{table}");
    let skipped = plan["skipped"].as_array().unwrap();
    assert!(skipped.iter().any(|s| s["row"] == "Emu *"
        && s["task"] == "coco_caption"
        && s["reason"] == "the paper gives no value"));
    assert_eq!(
        skipped.iter().filter(|s| s["reason"].as_str().unwrap().contains("--family")).count(),
        8 + 7,
        "the Emu-I rows are listed as skipped"
    );
    let cot: Vec<&str> = cells
        .iter()
        .filter(|c| c["row"] == "Emu" && c["table"] == "1")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(cot.contains(&"vqav2-emu-0shot-cot") && cot.contains(&"coco_caption-emu-0shot"));
    let units = plan["units"].as_array().unwrap();
    for (i, u) in units.iter().enumerate() {
        assert_eq!(u["index"], i);
        let args: Vec<&str> =
            u["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        assert_eq!(args[0], "run");
        let at = args.iter().position(|a| *a == "--output").unwrap();
        assert_eq!(args[at + 1], u["folder"].as_str().unwrap());
        assert!(table.contains(&format!("| {i} | {} |", u["cell"].as_str().unwrap())), "{table}");
    }
    // Costliest first.
    let costs: Vec<f64> = units.iter().map(|u| u["cost"]["units"].as_f64().unwrap()).collect();
    assert!(costs.windows(2).all(|w| w[0] >= w[1]), "{costs:?}");
    // The same folder with other settings is refused, naming the setting.
    let e = run(
        &root,
        &[
            "reproduce",
            "--output",
            o,
            "--family",
            "emu",
            "--limit",
            "2",
            "--dry-run",
            "--no-calibrate",
        ],
    );
    assert!(!e.status.success());
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(err.contains("holds a different plan (limit"), "{err}");
    // More shards: the costliest cell gets them, cheaper cells fewer; sizes add up.
    let out2 = root.join("r2");
    ok(&run(
        &root,
        &[
            "reproduce",
            "--output",
            out2.to_str().unwrap(),
            "--tables",
            "1",
            "--family",
            "emu",
            "--shards",
            "4",
            "--dry-run",
            "--no-calibrate",
        ],
    ));
    let plan2 = read_json(&out2.join("plan.json"));
    let shards: Vec<u64> =
        plan2["cells"].as_array().unwrap().iter().map(|c| c["shards"].as_u64().unwrap()).collect();
    assert_eq!(shards.iter().max(), Some(&4));
    assert!(shards.iter().any(|&s| s < 4), "{shards:?}");
    for c in plan2["cells"].as_array().unwrap() {
        let n: u64 = plan2["units"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["cell"] == c["name"])
            .map(|u| u["cost"]["samples"].as_u64().unwrap())
            .sum();
        assert_eq!(n, c["cost"]["samples"].as_u64().unwrap());
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn k8s_manifest_is_an_indexed_job_and_a_finish_job() {
    use yaml_rust2::YamlLoader;
    let root = tmp("k8s");
    let out = root.join("r");
    let o = out.to_str().unwrap();
    let printed = ok(&run(
        &root,
        &[
            "reproduce",
            "--output",
            o,
            "--tables",
            "2",
            "--limit",
            "4",
            "--shards",
            "2",
            "--emit",
            "k8s",
            "--gpus",
            "1",
            "--parallelism",
            "2",
            "--pvc",
            "claim-1",
        ],
    ));
    assert!(printed.contains("kubectl apply -f k8s.yaml"), "{printed}");
    let n = read_json(&out.join("plan.json"))["units"].as_array().unwrap().len();
    assert_eq!(n, 2);
    let docs = YamlLoader::load_from_str(&std::fs::read_to_string(out.join("k8s.yaml")).unwrap())
        .expect("k8s.yaml parses as YAML");
    assert_eq!(docs.len(), 2);
    let (units, finish) = (&docs[0], &docs[1]);
    assert_eq!(units["kind"].as_str(), Some("Job"));
    assert_eq!(units["apiVersion"].as_str(), Some("batch/v1"));
    let spec = &units["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    assert_eq!(spec["completions"].as_i64(), Some(n as i64));
    assert_eq!(spec["parallelism"].as_i64(), Some(2));
    let pod = &spec["template"]["spec"];
    let c = &pod["containers"][0];
    let command: Vec<&str> =
        c["command"].as_vec().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(command.windows(2).any(|w| w == ["--unit", "$(JOB_COMPLETION_INDEX)"]), "{command:?}");
    assert!(command.windows(2).any(|w| w == ["--output", o]), "{command:?}");
    assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"].as_i64(), Some(1));
    let mount = c["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert!(out.starts_with(mount), "{mount}");
    assert_eq!(pod["volumes"][0]["persistentVolumeClaim"]["claimName"].as_str(), Some("claim-1"));
    assert_eq!(finish["metadata"]["name"].as_str(), Some("emu-eval-finish"));
    assert!(finish["spec"]["completionMode"].is_badvalue());
    let fc: Vec<&str> = finish["spec"]["template"]["spec"]["containers"][0]["command"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(fc.contains(&"--finish") && fc.contains(&"--wait"), "{fc:?}");
    std::fs::remove_dir_all(&root).unwrap();
}

/// A run long enough to be caught mid-way: coco_t2i draws an image per sample.
fn slow_run(root: &Path, dir: &Path) -> Child {
    cmd(
        root,
        &["run", "--task", "coco_t2i", "--batch-size", "1", "--output", dir.to_str().unwrap()],
    )
    .spawn()
    .unwrap()
}

#[test]
fn a_second_writer_is_refused_and_a_killed_writers_lock_is_taken_over() {
    let root = tmp("lock");
    let dir = root.join("run");
    let mut first = slow_run(&root, &dir);
    let lock = dir.join(".emu-eval.lock");
    wait_until("the first writer's lock", Duration::from_secs(120), || {
        std::fs::read_to_string(&lock).is_ok_and(|s| s.contains("\"pid\""))
    });
    let second = run(&root, &["run", "--task", "coco_t2i", "--output", dir.to_str().unwrap()]);
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(last.contains(&format!("pid {}", first.id())), "{err}");
    assert!(last.contains("one writer per folder"), "{err}");
    first.kill().unwrap(); // SIGKILL: the lock file still names it
    first.wait().unwrap();
    assert!(std::fs::read_to_string(&lock).unwrap().contains(&format!("\"pid\":{}", first.id())));
    let third = run(&root, &["run", "--task", "coco_t2i", "--output", dir.to_str().unwrap()]);
    ok(&third);
    let err = String::from_utf8_lossy(&third.stderr);
    assert!(err.contains("took over the stale lock"), "{err}");
    let ids: Vec<String> =
        lines(&dir.join("predictions.jsonl")).iter().map(|l| l["id"].to_string()).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(ids.len(), unique.len(), "no sample twice");
    assert!(dir.join("metrics.json").is_file());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn sigterm_stops_after_the_current_sample_with_status_75_and_a_rerun_resumes() {
    let root = tmp("term");
    let dir = root.join("run");
    let child = slow_run(&root, &dir);
    let preds = dir.join("predictions.jsonl");
    wait_until("a finished sample", Duration::from_secs(120), || !lines(&preds).is_empty());
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(err.lines().last().unwrap().contains("stopped by SIGTERM"), "{err}");
    let kept = lines(&preds).len();
    assert!(kept >= 1 && !dir.join("metrics.json").exists(), "{kept}");
    ok(&run(&root, &["run", "--task", "coco_t2i", "--output", dir.to_str().unwrap()]));
    let all = lines(&preds);
    let mut ids: Vec<String> = all.iter().map(|l| l["id"].to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "no sample twice");
    assert!(all.len() > kept);
    std::fs::remove_dir_all(&root).unwrap();
}

/// Stops the local Slurm daemons when the test ends, however it ends.
struct SlurmCluster {
    state: PathBuf,
}

impl Drop for SlurmCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(&self.state).status();
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/slurm-local.sh")
}

/// Lines without their timing, sorted by id.
fn comparable_lines(dir: &Path) -> Vec<Value> {
    let mut ls = lines(&dir.join("predictions.jsonl"));
    for l in &mut ls {
        l.as_object_mut().unwrap().remove("time_seconds");
    }
    ls.sort_by_key(|l| l["id"].to_string());
    ls
}

fn without_timing(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("timing");
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

#[test]
fn slurm_job_array_with_a_requeued_unit_equals_a_local_reproduce() {
    if std::env::var_os("EMU_EVAL_SKIP_SLURM").is_some() {
        eprintln!("EMU_EVAL_SKIP_SLURM set: the Slurm test is skipped");
        return;
    }
    assert!(
        Command::new("sbatch").arg("--version").output().is_ok(),
        "sbatch not found: install slurm-wlm and munge with `bash scripts/setup.sh` (or set EMU_EVAL_SKIP_SLURM=1)"
    );
    let root = tmp("slurm");
    let state = root.join("slurm-state");
    let started = Command::new("bash").arg(script()).arg("start").arg(&state).status().unwrap();
    let cluster = SlurmCluster { state: state.clone() };
    assert!(started.success(), "the local Slurm cluster did not start (see {})", state.display());
    let conf = state.join("slurm.conf");
    let slurm = |prog: &str, args: &[&str]| -> Output {
        Command::new(prog).args(args).env("SLURM_CONF", &conf).output().unwrap()
    };
    let flags = ["--limit", "6", "--shards", "2"];
    let (local, sched) = (root.join("local"), root.join("slurm"));
    let mut args =
        vec!["reproduce", "--output", sched.to_str().unwrap(), "--emit", "slurm", "--requeue"];
    args.extend(flags);
    ok(&run(&root, &args));
    // The unit to stop: coco_t2i's first shard (an image per sample, so it is caught mid-way).
    let plan = read_json(&sched.join("plan.json"));
    let unit = plan["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["cell"] == "coco_t2i-emu-0shot" && u["shard"] == "1/2")
        .expect("coco_t2i is sharded")
        .clone();
    let index = unit["index"].as_u64().unwrap();
    let submit = Command::new("bash")
        .arg("submit-slurm.sh")
        .current_dir(&sched)
        .env("SLURM_CONF", &conf)
        .env("EMU_EVAL_CACHE", root.join("cache"))
        .env_remove("EMU_EVAL_DATA")
        .output()
        .unwrap();
    let said = ok(&submit);
    let job: String =
        said.trim_start_matches("units: job ").chars().take_while(char::is_ascii_digit).collect();
    assert!(!job.is_empty(), "{said}");
    let task = format!("{job}_{index}");
    let preds = PathBuf::from(unit["folder"].as_str().unwrap()).join("predictions.jsonl");
    wait_until("the unit's first sample", Duration::from_secs(600), || !lines(&preds).is_empty());
    // scancel may report "Job can not be altered now" and retry although the signal was
    // delivered; what counts is that the unit stopped and requeued itself (its log, below).
    let _ = slurm("scancel", &["--signal=TERM", "--full", &task]);
    let log = sched.join(format!("logs/unit-{index}.log"));
    wait_until("the unit's requeue", Duration::from_secs(120), || {
        std::fs::read_to_string(&log).is_ok_and(|s| s.contains("requeued Slurm job"))
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("stopped by SIGTERM"), "{text}");
    let kept = lines(&preds).len();
    // Slurm holds a requeued job back for a while; let it start now.
    wait_until("the requeued unit to be released", Duration::from_secs(60), || {
        slurm("scontrol", &["update", &format!("JobId={task}"), "StartTime=now"]).status.success()
    });
    // Meanwhile the same plan runs locally, in one process.
    let mut largs = vec!["reproduce", "--output", local.to_str().unwrap()];
    largs.extend(flags);
    ok(&run(&root, &largs));
    wait_until("the Slurm jobs", Duration::from_secs(1200), || {
        let q = slurm("squeue", &["-h", "-o", "%i %T %r"]);
        String::from_utf8_lossy(&q.stdout).trim().is_empty()
    });
    let finish = std::fs::read_to_string(sched.join("logs/finish.log")).unwrap_or_default();
    let cells = plan["cells"].as_array().unwrap();
    assert!(finish.contains(&format!("{0} of {0} cells reported", cells.len())), "{finish}");
    let after = lines(&preds);
    assert!(after.len() > kept, "the requeued unit resumed");
    for c in cells {
        let name = c["name"].as_str().unwrap();
        let (a, b) = (local.join("runs").join(name), sched.join("runs").join(name));
        let (la, lb) = (comparable_lines(&a), comparable_lines(&b));
        assert_eq!(la, lb, "{name}: predictions differ");
        let mut ids: Vec<String> = lb.iter().map(|l| l["id"].to_string()).collect();
        ids.dedup();
        assert_eq!(ids.len(), lb.len(), "{name}: a sample twice");
        assert_eq!(
            without_timing(read_json(&a.join("metrics.json"))),
            without_timing(read_json(&b.join("metrics.json"))),
            "{name}: metrics differ"
        );
    }
    let report = |d: &Path| without_timing(read_json(&d.join("report/results.json")));
    assert_eq!(report(&local), report(&sched), "the reports differ");
    let md = std::fs::read_to_string(sched.join("report/results.md")).unwrap();
    assert!(md.contains("built-in"), "built-in runs are marked");
    drop(cluster);
    std::fs::remove_dir_all(&root).unwrap();
}

/// `--limit 0` and `--shards 0` are one-line errors from the argument parser.
#[test]
fn zero_limit_or_shards_is_one_line() {
    let root = tmp("zero_flags");
    for flag in ["--limit", "--shards"] {
        let o = run(&root, &["reproduce", "--dry-run", flag, "0"]);
        assert!(!o.status.success(), "{flag} 0 accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(&format!("{flag} <")) && err.contains("must be at least 1"), "{err}");
    }
}
