//! The plan as scheduler jobs: a Slurm job array (`reproduce.sbatch`) with a dependent finish job
//! (`finish.sbatch`, `submit-slurm.sh`), or a Kubernetes Indexed Job with a finish Job
//! (`k8s.yaml`). Every array task runs `emu-eval reproduce --unit I` on the same plan folder.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Plan;

/// `#SBATCH` settings from `reproduce`'s flags.
#[derive(Debug, Clone, Default)]
pub struct Slurm {
    pub partition: Option<String>,
    pub gres: Option<String>,
    pub time: Option<String>,
    pub cpus_per_task: Option<usize>,
    pub requeue: bool,
}

/// Kubernetes settings from `reproduce`'s flags.
#[derive(Debug, Clone)]
pub struct K8s {
    pub image: String,
    /// PersistentVolumeClaim that holds the output, data, model and cache folders.
    pub pvc: String,
    /// Where the claim is mounted (default: the deepest folder holding every plan path).
    pub mount: Option<PathBuf>,
    pub parallelism: Option<usize>,
    /// GPUs per unit pod (`nvidia.com/gpu`).
    pub gpus: usize,
}

/// The binary and the stop grace of every job.
#[derive(Debug, Clone)]
pub struct Common {
    pub exe: PathBuf,
    pub grace_seconds: u64,
}

/// POSIX shell single-quoting.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b)) {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn sbatch_lines(s: &Slurm, with_gres: bool) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: &str| out.push_str(&format!("#SBATCH --{k}={v}\n"));
    if let Some(p) = &s.partition {
        line("partition", p);
    }
    if let (true, Some(g)) = (with_gres, &s.gres) {
        line("gres", g);
    }
    if let Some(t) = &s.time {
        line("time", t);
    }
    if let Some(c) = s.cpus_per_task {
        line("cpus-per-task", &c.to_string());
    }
    out
}

/// Writes `reproduce.sbatch`, `finish.sbatch` and `submit-slurm.sh`; returns their paths.
pub fn slurm(plan: &Plan, s: &Slurm, c: &Common) -> Result<Vec<PathBuf>> {
    let out = &plan.inputs.output;
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("{}: cannot create", logs.display()))?;
    let exe = sh_quote(&c.exe.display().to_string());
    let o = sh_quote(&out.display().to_string());
    let n = plan.units.len();
    let mut units = format!(
        "#!/bin/bash\n# emu-eval reproduce: one array task per unit of plan.json ({n} units).\n# Submit with submit-slurm.sh (it adds the dependent finish job).\n#SBATCH --job-name=emu-eval-units\n#SBATCH --array=0-{}\n#SBATCH --output={}/unit-%a.log\n#SBATCH --open-mode=append\n",
        n.saturating_sub(1),
        logs.display()
    );
    units.push_str(&sbatch_lines(s, true));
    if s.requeue {
        units.push_str("#SBATCH --requeue\n");
    }
    if s.time.is_some() {
        // SIGTERM ahead of the time limit, so the batch in flight ends cleanly.
        units.push_str(&format!("#SBATCH --signal=B:TERM@{}\n", c.grace_seconds + 30));
    }
    units.push_str(&format!(
        "\n# exec: SIGTERM (preemption, scancel, time limit) reaches emu-eval, which finishes its\n# batch within --grace-seconds and exits 75; a requeued task resumes the unit.\nexec {exe} reproduce --output {o} --unit \"$SLURM_ARRAY_TASK_ID\" --grace-seconds {}{}\n",
        c.grace_seconds,
        if s.requeue { " --requeue-on-stop" } else { "" }
    ));
    let mut finish = format!(
        "#!/bin/bash\n# emu-eval reproduce: merge every unit and write the report (after the array).\n#SBATCH --job-name=emu-eval-finish\n#SBATCH --output={}/finish.log\n#SBATCH --open-mode=append\n",
        logs.display()
    );
    finish.push_str(&sbatch_lines(s, false));
    finish.push_str(&format!("\nexec {exe} reproduce --output {o} --finish\n"));
    let submit = "#!/bin/bash\n# Submits the unit array, then the finish job once every unit succeeded.\nset -euo pipefail\ncd \"$(dirname \"$0\")\"\nunits=$(sbatch --parsable reproduce.sbatch)\nunits=${units%%;*}\nfinish=$(sbatch --parsable --dependency=afterok:\"$units\" finish.sbatch)\necho \"units: job $units; finish: job ${finish%%;*}\"\n";
    let files = [
        (out.join("reproduce.sbatch"), units),
        (out.join("finish.sbatch"), finish),
        (out.join("submit-slurm.sh"), submit.to_owned()),
    ];
    write_all(&files)
}

fn write_all(files: &[(PathBuf, String)]) -> Result<Vec<PathBuf>> {
    use std::os::unix::fs::PermissionsExt;
    for (p, text) in files {
        crate::runner::files::write_atomic(p, text.as_bytes())?;
        if text.starts_with("#!") {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("{}: cannot make executable", p.display()))?;
        }
    }
    Ok(files.iter().map(|(p, _)| p.clone()).collect())
}

/// A YAML double-quoted scalar (JSON's string syntax is YAML's).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The deepest folder holding every absolute path the plan uses.
pub fn common_root(plan: &Plan) -> PathBuf {
    let i = &plan.inputs;
    let paths: Vec<&Path> =
        [Some(&i.output), Some(&i.data_root), i.model.as_ref(), i.model_i.as_ref()]
            .into_iter()
            .chain([i.cache.as_ref(), i.decoder.as_ref(), i.inception.as_ref(), i.wordnet.as_ref()])
            .flatten()
            .map(PathBuf::as_path)
            .collect();
    let mut root = paths[0].to_path_buf();
    while !paths.iter().all(|p| p.starts_with(&root)) {
        if !root.pop() {
            break;
        }
    }
    root
}

fn job(
    name: &str,
    k: &K8s,
    c: &Common,
    mount: &Path,
    args: &[String],
    indexed: Option<(usize, usize)>,
) -> String {
    let mut y = format!("apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n  labels:\n    app: emu-eval\nspec:\n");
    if let Some((n, par)) = indexed {
        y.push_str(&format!(
            "  completionMode: Indexed\n  completions: {n}\n  parallelism: {par}\n  backoffLimit: {}\n",
            3 * n
        ));
    } else {
        y.push_str("  backoffLimit: 3\n");
    }
    y.push_str(&format!(
        "  template:\n    metadata:\n      labels:\n        app: emu-eval\n    spec:\n      restartPolicy: OnFailure\n      terminationGracePeriodSeconds: {}\n      containers:\n        - name: emu-eval\n          image: {}\n          command:\n",
        c.grace_seconds + 15,
        q(&k.image)
    ));
    for a in std::iter::once(c.exe.display().to_string()).chain(args.iter().cloned()) {
        y.push_str(&format!("            - {}\n", q(&a)));
    }
    if indexed.is_some() && k.gpus > 0 {
        y.push_str(&format!(
            "          resources:\n            limits:\n              nvidia.com/gpu: {}\n",
            k.gpus
        ));
    }
    y.push_str(&format!(
        "          volumeMounts:\n            - name: work\n              mountPath: {}\n      volumes:\n        - name: work\n          persistentVolumeClaim:\n            claimName: {}\n",
        q(&mount.display().to_string()),
        q(&k.pvc)
    ));
    y
}

/// Writes `k8s.yaml`: the Indexed Job of the units and the finish Job (which waits for them).
pub fn k8s(plan: &Plan, k: &K8s, c: &Common) -> Result<Vec<PathBuf>> {
    let out = &plan.inputs.output;
    let mount = k.mount.clone().unwrap_or_else(|| common_root(plan));
    let n = plan.units.len();
    let o = out.display().to_string();
    let g = c.grace_seconds.to_string();
    let unit_args: Vec<String> =
        ["reproduce", "--output", &o, "--unit", "$(JOB_COMPLETION_INDEX)", "--grace-seconds", &g]
            .map(String::from)
            .to_vec();
    let finish_args: Vec<String> =
        ["reproduce", "--output", &o, "--finish", "--wait", "604800"].map(String::from).to_vec();
    let mut y = format!(
        "# emu-eval reproduce: {n} units of {}/plan.json as an Indexed Job, and a finish Job that\n# waits for every unit, merges and writes the report. The claim {} is mounted at\n# {} and must hold the output, data, model and cache folders at the same paths.\n# kubectl apply -f k8s.yaml\n",
        o,
        q(&k.pvc),
        mount.display()
    );
    y.push_str(&job(
        "emu-eval-units",
        k,
        c,
        &mount,
        &unit_args,
        Some((n, k.parallelism.unwrap_or(n).clamp(1, n.max(1)))),
    ));
    y.push_str("---\n");
    y.push_str(&job("emu-eval-finish", k, c, &mount, &finish_args, None));
    write_all(&[(out.join("k8s.yaml"), y)])
}
