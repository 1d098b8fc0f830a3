//! `emu-eval reproduce`: the paper's Tables 1–3 as one resumable plan (`reproduce` module), run
//! here, emitted for Slurm or Kubernetes, and finished into one report.
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tasks::run_folder::Family;

use crate::cli::flags::{DataFlags, RuntimeFlags};
use crate::hub::{self, Want};
use crate::reproduce::{self, cost, emit, finish, Plan, PlanInputs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Paper tables to reproduce (comma list).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3", value_parser = ["1", "2", "3"])]
    pub tables: Vec<String>,
    /// Rows of which model family.
    #[arg(long, value_enum, default_value = "all")]
    pub family: FamilyChoice,
    /// Pretrained Emu folder (default: the built-in tiny random model, for both families).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Emu-I folder for the Emu-I rows (default: --model when it is instruction-tuned).
    #[arg(long)]
    pub model_i: Option<PathBuf>,
    /// Visual decoder folder for Table 2 (default: the built-in tiny random decoder).
    #[arg(long)]
    pub decoder: Option<PathBuf>,
    /// Inception weights for Table 2's FID (default: as `run`'s).
    #[arg(long)]
    pub inception: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataFlags,
    /// Plan folder: plan.json, runs/ (one folder per table cell), units/ (shards), report/.
    #[arg(long, default_value = "reproduce")]
    pub output: PathBuf,
    /// Most shards of one cell: the costliest cell gets this many, the others in proportion.
    #[arg(long, default_value_t = 1, value_parser = crate::cli::flags::at_least_one)]
    pub shards: usize,
    /// Evaluate only the first N samples of every split (a smoke test of the plan).
    #[arg(long, value_parser = crate::cli::flags::at_least_one)]
    pub limit: Option<usize>,
    /// Seed of every unit (support pool, support choice, built-in weights).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Prompts per generation batch of every unit, or `auto` (as `run --batch-size auto`).
    #[arg(long, default_value = "8", value_parser = crate::runner::batch::BatchSize::parse)]
    pub batch_size: crate::runner::batch::BatchSize,
    #[command(flatten)]
    pub runtime: RuntimeFlags,
    /// RICES feature and FID statistics cache shared by the units (default: as `run`'s).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// WordNet 3.0 folder for NExT-QA.
    #[arg(long)]
    pub wordnet: Option<PathBuf>,
    /// Print the plan with a time estimate per unit (after a short calibration) and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: no calibration (cost units only).
    #[arg(long, requires = "dry_run")]
    pub no_calibrate: bool,
    /// Write scheduler files instead of running: slurm (job array + dependent finish job) or
    /// k8s (Indexed Job + finish Job).
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
    /// Run unit I of the plan in --output (a Slurm array task or Kubernetes index).
    #[arg(long, value_name = "I", conflicts_with_all = ["dry_run", "emit", "finish"])]
    pub unit: Option<usize>,
    /// Merge every unit, check them against the plan and write the report.
    #[arg(long, conflicts_with_all = ["dry_run", "emit"])]
    pub finish: bool,
    /// With --finish: wait up to this many seconds for unfinished units.
    #[arg(long, value_name = "SECONDS", requires = "finish")]
    pub wait: Option<u64>,
    /// With --unit under Slurm: on SIGTERM/SIGINT, requeue this array task
    /// (`scontrol requeue $SLURM_JOB_ID`) before exiting 75, so that it resumes (preemption,
    /// time limit). `--emit slurm --requeue` writes it into the array script.
    #[arg(long, requires = "unit")]
    pub requeue_on_stop: bool,
    /// Replace a plan.json that holds a different plan.
    #[arg(long)]
    pub overwrite: bool,
    /// On SIGTERM/SIGINT: seconds the batch in flight may take before the process exits (75).
    #[arg(long, default_value_t = 30)]
    pub grace_seconds: u64,
    /// Slurm: partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Slurm: generic resources of each unit (e.g. gpu:1).
    #[arg(long)]
    pub gres: Option<String>,
    /// Slurm: time limit of each job (e.g. 04:00:00).
    #[arg(long)]
    pub time: Option<String>,
    /// Slurm: CPUs per unit.
    #[arg(long)]
    pub cpus_per_task: Option<usize>,
    /// Slurm: let the scheduler requeue preempted or failed units.
    #[arg(long)]
    pub requeue: bool,
    /// Kubernetes: container image with emu-eval.
    #[arg(long, default_value = "emu-eval:latest")]
    pub image: String,
    /// Kubernetes: PersistentVolumeClaim holding the output, data, model and cache folders.
    #[arg(long, default_value = "emu-eval")]
    pub pvc: String,
    /// Kubernetes: where the claim is mounted (default: the deepest folder holding every path).
    #[arg(long)]
    pub mount: Option<PathBuf>,
    /// Kubernetes: unit pods at once (default: all).
    #[arg(long)]
    pub parallelism: Option<usize>,
    /// Kubernetes: GPUs per unit pod.
    #[arg(long, default_value_t = 0)]
    pub gpus: usize,
    /// The emu-eval binary the jobs run (default: this one).
    #[arg(long)]
    pub exe: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FamilyChoice {
    #[value(name = "emu")]
    Emu,
    #[value(name = "emu-i")]
    EmuI,
    All,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    Slurm,
    K8s,
}

fn absolute(p: &std::path::Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("{}: cannot resolve", p.display()))
}

fn inputs(args: &Args) -> Result<PlanInputs> {
    let abs = |p: &Option<PathBuf>| p.as_deref().map(absolute).transpose();
    let mut tables = args.tables.clone();
    tables.sort();
    tables.dedup();
    Ok(PlanInputs {
        tables,
        families: match args.family {
            FamilyChoice::Emu => vec![Family::Emu],
            FamilyChoice::EmuI => vec![Family::EmuI],
            FamilyChoice::All => vec![Family::Emu, Family::EmuI],
        },
        model: abs(&hub::local_opt(args.model.as_deref(), Want::Model)?)?,
        model_i: abs(&hub::local_opt(args.model_i.as_deref(), Want::Model)?)?,
        decoder: abs(&hub::local_opt(args.decoder.as_deref(), Want::Decoder)?)?,
        inception: abs(&hub::local_opt(args.inception.as_deref(), Want::WeightsFile)?)?,
        data_root: absolute(&args.data.resolve()?)?,
        output: absolute(&args.output)?,
        cache: abs(&args.cache)?,
        wordnet: abs(&args.wordnet)?,
        shards: args.shards,
        limit: args.limit,
        seed: args.seed,
        batch_size: args.batch_size,
        device: args.runtime.device.device.clone(),
        dtype: args.runtime.dtype.clone(),
    })
}

pub fn run(args: Args) -> Result<()> {
    crate::signals::install(Duration::from_secs(args.grace_seconds));
    let output = absolute(&args.output)?;
    if let Some(i) = args.unit {
        let plan = Plan::read(&output)?;
        if args.requeue_on_stop {
            crate::signals::before_exit(slurm_requeue);
        }
        let result = run_units(&[plan.unit(i)?]);
        if result.as_ref().is_err_and(|e| e.downcast_ref::<crate::signals::Interrupted>().is_some())
        {
            crate::signals::run_before_exit();
        }
        return result;
    }
    if args.finish {
        let plan = Plan::read(&output)?;
        let done = finish::finish(&plan, args.wait.map(Duration::from_secs))?;
        println!(
            "{} of {} cells reported in {}",
            done.reported.len(),
            done.cells,
            done.report.display()
        );
        return finish::check_complete(&done);
    }
    let plan = reproduce::build(&inputs(&args)?)?;
    if plan.units.is_empty() {
        bail!("reproduce: nothing to run ({} cells skipped; see --dry-run)", plan.skipped.len());
    }
    plan.write_or_check(args.overwrite)?;
    let common = emit::Common {
        exe: match &args.exe {
            Some(e) => absolute(e)?,
            None => std::env::current_exe().context("the path of this emu-eval")?,
        },
        grace_seconds: args.grace_seconds,
    };
    if args.dry_run {
        let cal = if args.no_calibrate { None } else { Some(cost::calibrate(&plan)?) };
        print!("{}", reproduce::table(&plan, cal.as_ref()));
        return Ok(());
    }
    match args.emit {
        Some(Emit::Slurm) => {
            let s = emit::Slurm {
                partition: args.partition.clone(),
                gres: args.gres.clone(),
                time: args.time.clone(),
                cpus_per_task: args.cpus_per_task,
                requeue: args.requeue,
            };
            let files = emit::slurm(&plan, &s, &common)?;
            print_emitted(&plan, &files, "bash submit-slurm.sh");
            Ok(())
        }
        Some(Emit::K8s) => {
            let k = emit::K8s {
                image: args.image.clone(),
                pvc: args.pvc.clone(),
                mount: args.mount.as_deref().map(absolute).transpose()?,
                parallelism: args.parallelism,
                gpus: args.gpus,
            };
            let files = emit::k8s(&plan, &k, &common)?;
            print_emitted(&plan, &files, "kubectl apply -f k8s.yaml");
            Ok(())
        }
        None => {
            let units: Vec<&reproduce::Unit> = plan.units.iter().collect();
            run_units(&units)?;
            let done = finish::finish(&plan, None)?;
            println!(
                "{} of {} cells reported in {}",
                done.reported.len(),
                done.cells,
                done.report.display()
            );
            finish::check_complete(&done)
        }
    }
}

/// `scontrol requeue $SLURM_JOB_ID` (a note when it cannot).
fn slurm_requeue() {
    let Ok(id) = std::env::var("SLURM_JOB_ID") else {
        crate::log::warn("--requeue-on-stop: SLURM_JOB_ID is not set (not a Slurm job)");
        return;
    };
    match std::process::Command::new("scontrol").args(["requeue", &id]).status() {
        Ok(s) if s.success() => crate::log::note(format!("requeued Slurm job {id}")),
        Ok(s) => crate::log::warn(format!("scontrol requeue {id}: {s}")),
        Err(e) => crate::log::warn(format!("scontrol requeue {id}: {e}")),
    }
}

fn print_emitted(plan: &Plan, files: &[PathBuf], submit: &str) {
    println!(
        "{} units in {}",
        plan.units.len(),
        plan.inputs.output.join(reproduce::PLAN_JSON).display()
    );
    for f in files {
        println!("wrote {}", f.display());
    }
    println!("submit: cd {} && {submit}", plan.inputs.output.display());
}

/// Runs `units` in this process, loading each family's model once.
fn run_units(units: &[&reproduce::Unit]) -> Result<()> {
    for family in [Family::Emu, Family::EmuI] {
        let mut runs = Vec::new();
        let mut first: Option<crate::commands::run::Args> = None;
        for u in units {
            let a = reproduce::parse_run(&u.args)?;
            if a.family.get() != family {
                continue;
            }
            runs.extend(crate::commands::run::options(&a)?);
            first.get_or_insert(a);
        }
        let Some(a) = first else { continue };
        crate::log::note(format!("reproduce: {} unit(s) of {}", runs.len(), family.paper_name()));
        let source = a.model.source(a.seed)?;
        crate::commands::run::execute(&source, family, &a.runtime, &runs)?;
    }
    Ok(())
}
