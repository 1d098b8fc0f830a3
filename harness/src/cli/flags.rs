//! Flag groups shared by several commands, each defined once here and flattened into the
//! commands that take it, so that a flag has one name and one help line everywhere:
//! model (`--model`, `--weights`), runtime (`--device`, `--dtype`), data (`--data-root`),
//! output format (`--json`, `--compact`), task (`--task`) and template family
//! (`--model-family`). Logging and limits are global flags ([`super::GlobalOptions`]).
use std::path::PathBuf;

use anyhow::Result;
use candle_core::{DType, Device};
use clap::builder::PossibleValuesParser;
use tasks::registry::{self, Task};
use tasks::run_folder::Family;

use models::emu::{Emu, EmuConfig, EmuTokenizer};

use crate::model_source::ModelSource;

/// `--model`, `--weights`: which Emu.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ModelFlags {
    /// Model folder (config.json, tokenizer.json, weights) or a Hugging Face hub id
    /// `ORG/NAME[@REVISION]` (from the local HF cache, else downloaded into it; a `.pt` is
    /// converted to safetensors once); default: the built-in tiny random model (its scores are
    /// meaningless).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Weights file overriding the model folder's checkpoint.
    #[arg(long, requires = "model")]
    pub weights: Option<PathBuf>,
}

impl ModelFlags {
    /// The model these flags name (a hub id resolved to its snapshot); `seed` draws the
    /// built-in model's weights.
    pub fn source(&self, seed: u64) -> Result<ModelSource> {
        model_source(self.model.as_deref(), self.weights.clone(), seed)
    }
}

/// The model a `--model` value names: a local folder as is; a hub id resolved to its cached
/// snapshot, whose PyTorch checkpoint (unless `weights` overrides it) is loaded through its
/// one-time safetensors conversion.
pub fn model_source(
    model: Option<&std::path::Path>,
    weights: Option<PathBuf>,
    seed: u64,
) -> Result<ModelSource> {
    let Some(arg) = model else { return Ok(ModelSource { dir: None, weights, seed }) };
    let dir = crate::hub::local(arg, crate::hub::Want::Model)?;
    let weights = match weights {
        Some(w) => Some(w),
        None if dir != arg || crate::hub::in_cache(&dir) => {
            let found = models::emu::load::find_weights(&dir)?;
            Some(crate::hub::safetensors_for(&found)?)
        }
        None => None,
    };
    Ok(ModelSource { dir: Some(dir), weights, seed })
}

/// `--model`, `--weights`, `--device`, `--dtype` of the commands that load Emu for one call
/// (`inspect`, `generate`, `rank`, `regress`, `generate-image`); the built-in model uses seed 0.
#[derive(clap::Args, Debug, Clone)]
pub struct EmuFlags {
    #[command(flatten)]
    pub model: ModelFlags,
    #[command(flatten)]
    pub runtime: RuntimeFlags,
}

impl EmuFlags {
    fn source(&self) -> Result<ModelSource> {
        self.model.source(0)
    }

    /// Checks before the (slow, large) model load what can be checked without it: the
    /// configuration, and the header of every image (size within the pixel limit).
    pub fn preflight(&self, images: &[PathBuf]) -> Result<EmuConfig> {
        for p in images.iter().filter(|p| p.extension().is_none_or(|e| e != "safetensors")) {
            tasks::media::image::check_file_header(p)?;
        }
        self.source()?.config(false)
    }

    /// The tokenizer alone, before the weights load.
    pub fn tokenizer(&self) -> Result<EmuTokenizer> {
        self.source()?.tokenizer(false)
    }

    pub fn load(&self) -> Result<Emu> {
        let (emu, _) =
            self.source()?.load(false, self.runtime.dtype()?, &self.runtime.device()?)?;
        Ok(emu)
    }
}

/// `--device`: where the networks run.
#[derive(clap::Args, Debug, Clone)]
pub struct DeviceFlag {
    /// cpu or cuda[:N] (cuda needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl DeviceFlag {
    pub fn parse(&self) -> Result<Device> {
        super::device::parse_device(&self.device)
    }
}

/// `--device`, `--dtype`: where and in which precision the model runs.
#[derive(clap::Args, Debug, Clone)]
pub struct RuntimeFlags {
    #[command(flatten)]
    pub device: DeviceFlag,
    /// Model dtype: f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

impl RuntimeFlags {
    pub fn device(&self) -> Result<Device> {
        self.device.parse()
    }
    pub fn dtype(&self) -> Result<DType> {
        super::device::parse_dtype(&self.dtype)
    }
}

/// `--data-root`: where the benchmarks' official files are.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DataFlags {
    /// Data root holding `<task>/…` (default: the root a run folder recorded, where a command
    /// reads one; else $EMU_EVAL_DATA, else the built-in sample data).
    #[arg(long)]
    pub data_root: Option<PathBuf>,
}

impl DataFlags {
    /// `--data-root`, else `$EMU_EVAL_DATA`, else the built-in sample data (generated on first
    /// use, with a note).
    pub fn resolve(&self) -> Result<PathBuf> {
        crate::sample_data::data_root(self.data_root.as_deref())
    }
}

/// `--compact` of commands whose output is JSON.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CompactFlag {
    /// JSON output on one line (default: pretty).
    #[arg(long, global = true)]
    pub compact: bool,
}

/// `--json`, `--compact` of commands whose default output is text or a table.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FormatFlags {
    /// Print pretty JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub compact: CompactFlag,
}

/// `--task ID`: one of the registry's ids.
#[derive(clap::Args, Debug, Clone)]
pub struct TaskFlag {
    /// Task id (from the task registry; see `emu-eval tasks`).
    #[arg(long = "task", value_parser = task_parser())]
    pub id: String,
}

impl TaskFlag {
    pub fn get(&self) -> &'static Task {
        lookup(&self.id)
    }
}

/// A clap parser accepting exactly the registry's ids.
pub fn task_parser() -> PossibleValuesParser {
    PossibleValuesParser::new(registry::ids())
}

/// A clap parser accepting task ids, group names (`image-qa`, `table1`, …) and `all`.
pub fn task_selection_parser() -> PossibleValuesParser {
    let words = registry::ids()
        .into_iter()
        .chain(registry::GROUPS.iter().map(|(g, _)| *g))
        .chain([registry::ALL]);
    PossibleValuesParser::new(words)
}

/// The tasks of `--task` words (ids, groups, `all`; validated by clap), each once, in the order
/// first named.
pub fn expand_tasks(words: &[String]) -> Vec<&'static Task> {
    let mut out: Vec<&'static Task> = Vec::new();
    for w in words {
        for t in registry::select(w).unwrap_or_else(|| unreachable!("clap validated --task {w}")) {
            if !out.iter().any(|o| o.id == t.id) {
                out.push(t);
            }
        }
    }
    out
}

/// The registry entry of an id that clap has already validated.
pub fn lookup(id: &str) -> &'static Task {
    registry::get(id).unwrap_or_else(|| unreachable!("clap validated --task {id}"))
}

/// `--model-family`: the template family.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct FamilyFlag {
    /// Template family: pretrained Emu or instruction-tuned Emu-I.
    #[arg(long = "model-family", value_enum, default_value = "emu")]
    pub family: FamilyArg,
}

impl FamilyFlag {
    pub fn get(&self) -> Family {
        self.family.into()
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FamilyArg {
    #[value(name = "emu")]
    Emu,
    #[value(name = "emu-i")]
    EmuI,
}

impl From<FamilyArg> for Family {
    fn from(f: FamilyArg) -> Self {
        match f {
            FamilyArg::Emu => Family::Emu,
            FamilyArg::EmuI => Family::EmuI,
        }
    }
}

/// A whole number ≥ 1 (clap value parser).
pub fn at_least_one(v: &str) -> std::result::Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be at least 1".into()),
    }
}
