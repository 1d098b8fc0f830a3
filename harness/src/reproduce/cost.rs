//! What a unit costs: samples, model stages and generated (or scored) tokens, in one "cost unit"
//! scale that balances shards, and seconds from a short calibration of the loaded model.
use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tasks::registry::{Generation, Inference, Task, CAPTION};

use super::{Plan, PlanInputs};
use crate::model_source::ModelInfo;
use models::emu::Emu;
use tasks::run_folder::Family;

/// Cost units of one prompt's forward pass (prefill), per prompt segment (query or example).
pub const PREFILL_UNITS: f64 = 10.0;
/// Tokens scored per VisDial sample: 100 answer options of about ten tokens.
pub const RANKED_TOKENS: u64 = 1000;
/// Cost units of one denoising step (a UNet evaluation) relative to one generated token.
pub const UNET_STEP_UNITS: f64 = 20.0;
/// PNDM steps and guidance of `run`'s defaults (a unit passes neither flag).
const T2I_STEPS: u64 = 50;

/// The size of a cell or unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub samples: usize,
    /// Model stages per sample (chain-of-thought: 2; VizWiz: gate and answer).
    pub stages: usize,
    /// Generated tokens (all beams) or scored option tokens, all samples.
    pub tokens: u64,
    /// Denoising steps with guidance (two UNet evaluations each), all images.
    pub unet_steps: u64,
    /// Support examples per prompt.
    pub shots: usize,
    /// The balancing scale: tokens + prefills + weighted UNet steps.
    pub units: f64,
}

fn generated(g: &Generation) -> u64 {
    (g.max_new_tokens * g.num_beams) as u64
}

/// The cost of a cell of `samples` samples.
pub fn of_cell(task: &Task, samples: usize, shots: usize, cot: bool) -> Cost {
    let caption = if cot { generated(&CAPTION) } else { 0 };
    let cot_stage = usize::from(cot);
    let (stages, per_sample, unet) = match task.inference {
        Inference::Generate { answer } => (1 + cot_stage, generated(&answer) + caption, 0),
        Inference::AnswerabilityGate { gate, answer, .. } => {
            (2 + cot_stage, generated(&gate) + generated(&answer) + caption, 0)
        }
        Inference::RankOptions { .. } => (1, RANKED_TOKENS, 0),
        Inference::TextToImage => (1, 0, T2I_STEPS),
    };
    let mut c = Cost {
        samples,
        stages,
        tokens: per_sample * samples as u64,
        unet_steps: unet * samples as u64,
        shots,
        units: 0.0,
    };
    c.units = units(&c);
    c
}

fn units(c: &Cost) -> f64 {
    c.tokens as f64
        + PREFILL_UNITS * (1 + c.shots) as f64 * (c.samples * c.stages) as f64
        + UNET_STEP_UNITS * 2.0 * c.unet_steps as f64
}

impl Cost {
    /// Shard `i` of `n` (samples at positions ≡ i−1 mod n).
    pub fn share(&self, i: usize, n: usize) -> Cost {
        let samples = (self.samples + n - i) / n;
        let per = |x: u64| x / self.samples.max(1) as u64 * samples as u64;
        let mut c =
            Cost { samples, tokens: per(self.tokens), unet_steps: per(self.unet_steps), ..*self };
        c.units = units(&c);
        c
    }
}

/// Samples a cell of `task` evaluates: the split (coco_t2i: its seeded caption sample), cut to
/// `--limit`.
pub fn samples(task: &Task, inputs: &PlanInputs) -> Result<usize> {
    let split = task
        .load(&task.dir(&inputs.data_root), task.eval_split)
        .with_context(|| format!("reproduce: planning {}", task.id))?;
    let n = if task.is_text_to_image() {
        crate::t2i::captions::sample_captions(
            &split.samples,
            crate::t2i::captions::COCO_T2I_PROMPTS,
            inputs.seed,
        )
        .len()
    } else {
        split.samples.len()
    };
    Ok(inputs.limit.map_or(n, |l| l.min(n)))
}

/// Seconds per cost unit, by task, measured on this device.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Calibration {
    pub device: String,
    pub model: String,
    pub seconds_per_unit: BTreeMap<String, f64>,
}

impl Calibration {
    /// Estimated seconds of a unit.
    pub fn seconds(&self, task: &str, c: &Cost) -> f64 {
        let mean = if self.seconds_per_unit.is_empty() {
            0.0
        } else {
            self.seconds_per_unit.values().sum::<f64>() / self.seconds_per_unit.len() as f64
        };
        c.units * self.seconds_per_unit.get(task).copied().unwrap_or(mean)
    }
}

/// Runs one sample of each task's cheapest cell (the smallest shots; coco_t2i two images) into a
/// scratch folder under the output and times it.
pub fn calibrate(plan: &Plan) -> Result<Calibration> {
    let scratch = plan.inputs.output.join("calibration");
    let mut cal = Calibration::default();
    let mut by_task: BTreeMap<&str, &super::Cell> = BTreeMap::new();
    for c in &plan.cells {
        let e = by_task.entry(c.task.as_str()).or_insert(c);
        if (c.shots, c.cot) < (e.shots, e.cot) {
            *e = c;
        }
    }
    let mut loaded: Option<(Family, Emu, ModelInfo)> = None;
    for (task, cell) in by_task {
        let unit = plan.units_of(cell).next().context("a cell without units")?;
        let mut args = unit.args.clone();
        let limit = if cell.task == "coco_t2i" { 2 } else { 1 };
        super::set_arg(&mut args, "--output", &scratch.join(&cell.name).display().to_string());
        super::set_arg(&mut args, "--limit", &limit.to_string());
        super::remove_arg(&mut args, "--shard");
        let run_args = super::parse_run(&args)?;
        let runs = crate::commands::run::options(&run_args)?;
        let family = run_args.family.get();
        if loaded.as_ref().is_none_or(|(f, _, _)| *f != family) {
            let source = run_args.model.source(run_args.seed)?;
            let (emu, model) = source.load(
                family == Family::EmuI,
                run_args.runtime.dtype()?,
                &run_args.runtime.device()?,
            )?;
            loaded = Some((family, emu, model));
        }
        let (_, emu, model) = loaded.as_ref().context("model")?;
        let start = Instant::now();
        for opts in &runs {
            let mut opts = opts.clone();
            opts.overwrite = true;
            crate::runner::run_task(emu, model, &opts)?;
        }
        let secs = start.elapsed().as_secs_f64();
        let task_ref = tasks::registry::get(task).context("task")?;
        let measured = of_cell(task_ref, limit, cell.shots, cell.cot);
        cal.seconds_per_unit.insert(task.to_owned(), secs / measured.units.max(1e-9));
        cal.device = model.device.clone();
        cal.model = model.name.clone();
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(cal)
}
