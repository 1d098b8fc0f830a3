//! `emu-eval reproduce`: the paper's Tables 1–3 as a plan of `run` units (one per row
//! configuration, task and shard), executed in one process, as a Slurm job array or as a
//! Kubernetes Indexed Job, then merged and reported (`--finish`). Every unit is an ordinary
//! resumable `run` whose exact arguments `plan.json` records.
pub mod cost;
pub mod emit;
pub mod finish;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use reports::paper::Paper;
use serde::{Deserialize, Serialize};
use tasks::registry::{self, Task};
use tasks::run_folder::Family;

use crate::commands::run::folder_name;

/// The plan file in the output folder.
pub const PLAN_JSON: &str = "plan.json";
/// Version of `plan.json`'s layout.
pub const PLAN_VERSION: u32 = 1;

/// What a plan is built from (the flags of `reproduce`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanInputs {
    /// Paper tables: "1", "2", "3".
    pub tables: Vec<String>,
    /// Families whose rows are planned.
    pub families: Vec<Family>,
    /// Emu (pretrained) model folder; None: the built-in tiny random model.
    pub model: Option<PathBuf>,
    /// Emu-I model folder; None: `model` when it is instruction-tuned, else the built-in model
    /// when `model` is None too.
    pub model_i: Option<PathBuf>,
    pub decoder: Option<PathBuf>,
    pub inception: Option<PathBuf>,
    pub data_root: PathBuf,
    pub output: PathBuf,
    pub cache: Option<PathBuf>,
    pub wordnet: Option<PathBuf>,
    /// Most shards of one cell (the costliest cell gets this many).
    pub shards: usize,
    pub limit: Option<usize>,
    pub seed: u64,
    pub batch_size: crate::runner::batch::BatchSize,
    pub device: String,
    pub dtype: String,
}

/// One paper table cell that we produce: a row configuration on one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// The run folder name (`run`'s naming), unique in the plan.
    pub name: String,
    pub table: String,
    pub row: String,
    pub task: String,
    pub shots: usize,
    pub family: Family,
    pub cot: bool,
    pub text_examples: bool,
    /// The merged (or only) run folder of the cell.
    pub folder: PathBuf,
    pub shards: usize,
    pub cost: cost::Cost,
}

/// One `run` invocation: a cell's shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    /// 0-based, as `SLURM_ARRAY_TASK_ID` (`--array=0-…`) and `JOB_COMPLETION_INDEX` count.
    pub index: usize,
    pub cell: String,
    /// `I/N`, or None for a cell run whole.
    pub shard: Option<String>,
    pub folder: PathBuf,
    /// `emu-eval` arguments of the unit (starting with `run`).
    pub args: Vec<String>,
    pub cost: cost::Cost,
}

/// A paper cell that the plan does not produce, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub table: String,
    pub row: String,
    pub task: String,
    pub shots: usize,
    pub reason: String,
}

/// `plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    pub inputs: PlanInputs,
    pub cells: Vec<Cell>,
    /// Costliest first, so that a scheduler starting them in order finishes early.
    pub units: Vec<Unit>,
    pub skipped: Vec<Skipped>,
}

/// A paper row configuration that emu-eval can run.
#[derive(Debug, Clone, Copy)]
struct RowConfig {
    table: &'static str,
    row: &'static str,
    family: Family,
    text_examples: bool,
}

const ROWS: [RowConfig; 6] = [
    RowConfig { table: "1", row: "Emu", family: Family::Emu, text_examples: false },
    RowConfig { table: "1", row: "Emu *", family: Family::Emu, text_examples: true },
    RowConfig { table: "1", row: "Emu-I", family: Family::EmuI, text_examples: false },
    RowConfig { table: "1", row: "Emu-I *", family: Family::EmuI, text_examples: true },
    RowConfig { table: "2", row: "Emu", family: Family::Emu, text_examples: false },
    RowConfig { table: "3", row: "Emu", family: Family::Emu, text_examples: false },
];

/// The model folder a family's rows use (None: the built-in model), or why it has none.
pub fn model_for(inputs: &PlanInputs, family: Family) -> Result<Option<PathBuf>, String> {
    let instruct = |dir: &Path| {
        models::emu::EmuConfig::from_file(&dir.join("config.json")).map(|c| c.instruct)
    };
    match (family, &inputs.model, &inputs.model_i) {
        (Family::EmuI, _, Some(d)) => Ok(Some(d.clone())),
        (_, None, None) => Ok(None),
        (Family::Emu, None, Some(_)) => {
            Err("no pretrained Emu model given (--model); only --model-i".into())
        }
        (f, Some(d), _) => match (f, instruct(d)) {
            (_, Err(e)) => Err(format!("{}: {e}", d.display())),
            (Family::Emu, Ok(false)) | (Family::EmuI, Ok(true)) => Ok(Some(d.clone())),
            (Family::Emu, Ok(true)) => Err(format!(
                "{} is instruction-tuned (Emu-I); pretrained Emu rows need Emu's weights",
                d.display()
            )),
            (Family::EmuI, Ok(false)) => Err(format!(
                "{} is the pretrained Emu; Emu-I rows need Emu-I weights (--model-i)",
                d.display()
            )),
        },
    }
}

/// Each family's model folder, resolved once (reads config.json).
struct Models {
    emu: Result<Option<PathBuf>, String>,
    emu_i: Result<Option<PathBuf>, String>,
}

impl Models {
    fn resolve(inputs: &PlanInputs) -> Self {
        Models { emu: model_for(inputs, Family::Emu), emu_i: model_for(inputs, Family::EmuI) }
    }

    fn of(&self, family: Family) -> &Result<Option<PathBuf>, String> {
        match family {
            Family::Emu => &self.emu,
            Family::EmuI => &self.emu_i,
        }
    }
}

/// Builds the plan of `inputs`: every planned cell of the asked tables, split into units.
pub fn build(inputs: &PlanInputs) -> Result<Plan> {
    let paper = Paper::published();
    let models = Models::resolve(inputs);
    let mut cells = Vec::new();
    let mut skipped = Vec::new();
    let mut sizes = std::collections::HashMap::new();
    for rc in ROWS.iter().filter(|r| inputs.tables.iter().any(|t| t == r.table)) {
        for (_, task_id, shots) in paper.columns(rc.table) {
            let shots = if rc.table == "2" { 0 } else { shots as usize };
            let skip = |reason: String| Skipped {
                table: rc.table.into(),
                row: rc.row.into(),
                task: task_id.into(),
                shots,
                reason,
            };
            if paper.get(rc.table, rc.row, task_id, shots as u32).and_then(|v| v.value).is_none() {
                skipped.push(skip("the paper gives no value".into()));
                continue;
            }
            if !inputs.families.contains(&rc.family) {
                skipped.push(skip(format!("--family leaves out {}", rc.family.paper_name())));
                continue;
            }
            if let Err(why) = models.of(rc.family) {
                skipped.push(skip(why.clone()));
                continue;
            }
            let task = registry::get(task_id)
                .with_context(|| format!("paper table {}: unknown task {task_id}", rc.table))?;
            // The paper's Emu zero-shot rows prompt with chain-of-thought where a task has it.
            let cot = rc.table == "1"
                && rc.family == Family::Emu
                && !rc.text_examples
                && task.supports_cot();
            let name = folder_name(task.id, rc.family, shots, cot, rc.text_examples);
            let samples = match sizes.entry(task.id) {
                std::collections::hash_map::Entry::Occupied(e) => *e.get(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    *e.insert(cost::samples(task, inputs)?)
                }
            };
            let c = cost::of_cell(task, samples, shots, cot);
            cells.push(Cell {
                folder: inputs.output.join("runs").join(&name),
                name,
                table: rc.table.into(),
                row: rc.row.into(),
                task: task.id.into(),
                shots,
                family: rc.family,
                cot,
                text_examples: rc.text_examples,
                shards: 1,
                cost: c,
            });
        }
    }
    let max = cells.iter().map(|c| c.cost.units).fold(0.0, f64::max);
    for c in &mut cells {
        // Balanced units: the costliest cell gets `shards`, the others in proportion.
        let want = (inputs.shards as f64 * c.cost.units / max.max(1e-9)).ceil() as usize;
        c.shards = want.clamp(1, inputs.shards.min(c.cost.samples.max(1)));
    }
    let mut units = Vec::new();
    for c in &cells {
        for i in 1..=c.shards {
            let (shard, folder) = if c.shards == 1 {
                (None, c.folder.clone())
            } else {
                let s = format!("{i}/{}", c.shards);
                (Some(s), inputs.output.join("units").join(&c.name).join(format!("shard-{i}")))
            };
            let task = registry::get(&c.task).context("task")?;
            let model = models.of(c.family).as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
            let args = unit_args(inputs, c, task, model.as_deref(), shard.as_deref(), &folder)?;
            units.push(Unit {
                index: 0,
                cell: c.name.clone(),
                shard,
                folder,
                args,
                cost: c.cost.share(i, c.shards),
            });
        }
    }
    units.sort_by(|a, b| b.cost.units.total_cmp(&a.cost.units).then(a.cell.cmp(&b.cell)));
    for (i, u) in units.iter_mut().enumerate() {
        u.index = i;
    }
    Ok(Plan { version: PLAN_VERSION, inputs: inputs.clone(), cells, units, skipped })
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

/// `emu-eval run …` of one unit.
fn unit_args(
    inputs: &PlanInputs,
    c: &Cell,
    task: &Task,
    model: Option<&Path>,
    shard: Option<&str>,
    folder: &Path,
) -> Result<Vec<String>> {
    let mut a: Vec<String> = vec!["run".into(), "--task".into(), task.id.into()];
    a.extend(["--shots".into(), c.shots.to_string()]);
    a.extend(["--model-family".into(), c.family.key().into()]);
    if c.cot {
        a.push("--cot".into());
    }
    if c.text_examples {
        a.push("--text-examples".into());
    }
    if let Some(m) = model {
        a.extend(["--model".into(), path_arg(m)]);
    }
    a.extend(["--data-root".into(), path_arg(&inputs.data_root)]);
    a.extend(["--output".into(), path_arg(folder)]);
    if let Some(s) = shard {
        a.extend(["--shard".into(), s.into()]);
    }
    a.extend(["--seed".into(), inputs.seed.to_string()]);
    a.extend(["--batch-size".into(), inputs.batch_size.to_string()]);
    if let Some(l) = inputs.limit {
        a.extend(["--limit".into(), l.to_string()]);
    }
    a.extend(["--device".into(), inputs.device.clone(), "--dtype".into(), inputs.dtype.clone()]);
    for (flag, p) in [("--cache", &inputs.cache), ("--wordnet", &inputs.wordnet)] {
        if let Some(p) = p {
            a.extend([flag.into(), path_arg(p)]);
        }
    }
    if task.is_text_to_image() {
        for (flag, p) in [("--decoder", &inputs.decoder), ("--inception", &inputs.inception)] {
            if let Some(p) = p {
                a.extend([flag.into(), path_arg(p)]);
            }
        }
    }
    Ok(a)
}

impl Plan {
    /// Writes `plan.json`, or checks that the one there is this plan (a resumed reproduce).
    pub fn write_or_check(&self, overwrite: bool) -> Result<()> {
        let path = self.inputs.output.join(PLAN_JSON);
        if path.is_file() && !overwrite {
            let old = Plan::read(&self.inputs.output)?;
            if let Some(what) = old.first_difference(self) {
                bail!(
                    "{}: holds a different plan ({what}); use another --output or --overwrite",
                    path.display()
                );
            }
            return Ok(());
        }
        std::fs::create_dir_all(&self.inputs.output)
            .with_context(|| format!("{}: cannot create", self.inputs.output.display()))?;
        crate::runner::files::write_json(&path, self)
    }

    /// Reads `<output>/plan.json`.
    pub fn read(output: &Path) -> Result<Plan> {
        let path = output.join(PLAN_JSON);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{}: cannot read (write it with `emu-eval reproduce --dry-run` or `--emit`)",
                path.display()
            )
        })?;
        let plan: Plan = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a plan of this emu-eval", path.display()))?;
        if plan.version != PLAN_VERSION {
            bail!(
                "{}: version {}, this emu-eval reads {PLAN_VERSION}",
                path.display(),
                plan.version
            );
        }
        Ok(plan)
    }

    fn first_difference(&self, other: &Plan) -> Option<String> {
        if self.inputs != other.inputs {
            let a = serde_json::to_value(&self.inputs).ok()?;
            let b = serde_json::to_value(&other.inputs).ok()?;
            let field = a.as_object()?.iter().find(|(k, v)| b.get(k.as_str()) != Some(v))?;
            return Some(format!("{}: {} there, {} now", field.0, field.1, b[field.0]));
        }
        (self.units != other.units).then(|| "units".into())
    }

    /// The unit of index `i`.
    pub fn unit(&self, i: usize) -> Result<&Unit> {
        self.units.get(i).with_context(|| {
            format!(
                "--unit {i}: the plan has units 0..{} ({})",
                self.units.len().saturating_sub(1),
                self.inputs.output.join(PLAN_JSON).display()
            )
        })
    }

    /// The units of a cell, in shard order.
    pub fn units_of<'a>(&'a self, cell: &'a Cell) -> impl Iterator<Item = &'a Unit> + 'a {
        let mut us: Vec<&Unit> = self.units.iter().filter(|u| u.cell == cell.name).collect();
        us.sort_by_key(|u| {
            u.shard.as_deref().and_then(|s| s.split('/').next()?.parse::<usize>().ok())
        });
        us.into_iter()
    }
}

/// Replaces (or appends) `flag VALUE` in a unit's arguments.
pub fn set_arg(args: &mut Vec<String>, flag: &str, value: &str) {
    match args.iter().position(|a| a == flag) {
        Some(i) if i + 1 < args.len() => args[i + 1] = value.to_owned(),
        _ => args.extend([flag.to_owned(), value.to_owned()]),
    }
}

/// Removes `flag VALUE` from a unit's arguments.
pub fn remove_arg(args: &mut Vec<String>, flag: &str) {
    if let Some(i) = args.iter().position(|a| a == flag) {
        args.drain(i..(i + 2).min(args.len()));
    }
}

/// A unit's arguments as `run`'s parsed flags.
pub fn parse_run(args: &[String]) -> Result<crate::commands::run::Args> {
    use clap::Parser;
    let cli = crate::cli::Cli::try_parse_from(
        std::iter::once("emu-eval").chain(args.iter().map(String::as_str)),
    )
    .map_err(|e| anyhow::anyhow!("plan unit `{}`: {}", args.join(" "), e.kind()))?;
    match cli.command {
        crate::cli::Command::Run(a) => Ok(a),
        _ => bail!("plan unit `{}`: not a `run`", args.join(" ")),
    }
}

fn hms(secs: f64) -> String {
    let s = secs.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// The plan as a Markdown table: units with their size and, after a calibration, their time.
pub fn table(plan: &Plan, cal: Option<&cost::Calibration>) -> String {
    let mut s = String::from(
        "| unit | cell | paper | shard | samples | stages | tokens | UNet steps | estimate |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut total = 0.0;
    for u in &plan.units {
        let cell = plan.cells.iter().find(|c| c.name == u.cell);
        let (paper, task) = cell.map_or((String::new(), ""), |c| {
            (format!("Table {} {}", c.table, c.row), c.task.as_str())
        });
        let est = cal.map(|c| c.seconds(task, &u.cost));
        total += est.unwrap_or(0.0);
        s.push_str(&format!(
            "| {} | {} | {paper} | {} | {} | {} | {} | {} | {} |\n",
            u.index,
            u.cell,
            u.shard.as_deref().unwrap_or("whole"),
            u.cost.samples,
            u.cost.stages,
            u.cost.tokens,
            u.cost.unet_steps,
            est.map_or(format!("{:.0} units", u.cost.units), hms)
        ));
    }
    s.push_str(&format!(
        "\n{} units in {} cells; {} cells skipped.\n",
        plan.units.len(),
        plan.cells.len(),
        plan.skipped.len()
    ));
    match cal {
        Some(c) => s.push_str(&format!(
            "Estimated total: {} on {} with {} (one process; calibrated on one sample per task, so a rough estimate).\n",
            hms(total),
            c.device,
            c.model
        )),
        None => s.push_str("No calibration (--no-calibrate): sizes in cost units only.\n"),
    }
    for k in &plan.skipped {
        s.push_str(&format!(
            "skipped: Table {} {} {} {}-shot: {}\n",
            k.table, k.row, k.task, k.shots, k.reason
        ));
    }
    s
}
