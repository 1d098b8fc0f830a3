//! `emu-eval run`: evaluate tasks end to end (see `runner`). Loads the model once, then runs every
//! (task, shots) combination into its own run folder and prints a table of the metrics.
use std::path::PathBuf;

use anyhow::Result;
use prompts::Family;

use crate::cli::flags::{
    expand_tasks, task_selection_parser, DataFlags, FamilyFlag, ModelFlags, RuntimeFlags,
};
use crate::hub::{self, Want};
use crate::runner::{self, files::Shard, RunOptions, SupportKind};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Task ids, groups (captioning, image-qa, video-qa, dialogue, text-to-image, table1,
    /// table2, table3) or `all`: comma-separated or repeated (see `emu-eval tasks`).
    #[arg(long = "task", required = true, value_delimiter = ',', value_parser = task_selection_parser())]
    pub tasks: Vec<String>,
    /// Few-shot support examples (repeat for several: 0 2 4 8).
    #[arg(long = "shots", default_value = "0")]
    pub shots: Vec<usize>,
    #[command(flatten)]
    pub family: FamilyFlag,
    /// Multimodal chain-of-thought (family emu): caption first, then answer.
    #[arg(long)]
    pub cot: bool,
    /// Two text-only support examples (the paper's `*` rows).
    #[arg(long)]
    pub text_examples: bool,
    #[command(flatten)]
    pub model: ModelFlags,
    #[command(flatten)]
    pub runtime: RuntimeFlags,
    #[command(flatten)]
    pub data: DataFlags,
    /// Split (default: each task's evaluation split).
    #[arg(long)]
    pub split: Option<String>,
    /// Evaluate only the first N samples of the split (canonical order), or a fraction
    /// 0 < f ≤ 1 of it (the first ⌈f·n⌉).
    #[arg(long, value_parser = runner::Limit::parse)]
    pub limit: Option<runner::Limit>,
    /// Prompts per left-padded generation batch, or `auto`: the largest that fits, per stage kind
    /// (CPU: half the available RAM or EMU_EVAL_MEMORY_BUDGET; CUDA: an allocation probe).
    #[arg(long, default_value = "8", value_parser = runner::batch::BatchSize::parse)]
    pub batch_size: runner::batch::BatchSize,
    /// Seed of the support pool subset, the support choice and the built-in model's weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run folder (several tasks/shots: the parent of one folder per combination).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Evaluate shard I of N (samples at positions ≡ I−1 mod N); combine with `emu-eval merge`.
    #[arg(long)]
    pub shard: Option<String>,
    /// Samples that may fail (undecodable media, decoding errors) before the run stops non-zero.
    #[arg(long, default_value_t = 0)]
    pub max_failures: usize,
    /// On SIGTERM/SIGINT: seconds the current batch may take to finish before the process exits
    /// anyway (status 75 either way; finished samples are kept and a rerun resumes).
    #[arg(long, default_value_t = 30)]
    pub grace_seconds: u64,
    /// Replace a run folder that holds a different configuration.
    #[arg(long)]
    pub overwrite: bool,
    /// Run again the samples that failed in an earlier invocation.
    #[arg(long)]
    pub retry_failed: bool,
    /// VQAv2 accuracy variant.
    #[arg(long, value_enum, default_value = "official")]
    pub vqa_variant: super::metric::VqaVariant,
    /// WordNet 3.0 folder for NExT-QA (default: $EMU_EVAL_WORDNET or /usr/share/wordnet).
    #[arg(long)]
    pub wordnet: Option<PathBuf>,
    /// How few-shot support examples are chosen: RICES (nearest EVA-CLIP features of the
    /// training pool) or the seeded random choice.
    #[arg(long, value_enum, default_value = "rices")]
    pub support: SupportArg,
    /// RICES feature cache folder (default: $EMU_EVAL_CACHE, else the platform cache folder);
    /// coco_t2i keeps its reference FID statistics in `fid/` beside it.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// coco_t2i: visual decoder folder (diffusers layout; default: a built-in tiny random decoder).
    #[arg(long)]
    pub decoder: Option<PathBuf>,
    /// coco_t2i: Inception weights for FID (default: $EMU_EVAL_INCEPTION, else a built-in random
    /// Inception).
    #[arg(long)]
    pub inception: Option<PathBuf>,
    /// coco_t2i: size of the seeded sample of val2014 captions.
    #[arg(long, default_value_t = crate::t2i::captions::COCO_T2I_PROMPTS)]
    pub prompts: usize,
    /// coco_t2i: PNDM denoising steps.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// coco_t2i: classifier-free guidance scale (≤ 1 turns guidance off).
    #[arg(long, default_value_t = 5.0)]
    pub guidance: f64,
    /// Decoding: most new tokens, `N` for every generation stage or `KIND=N` for one stage kind
    /// (caption, answer, answerability); repeatable. Not the paper's settings.
    #[arg(long, value_name = "[KIND=]N")]
    pub max_new_tokens: Vec<String>,
    /// Decoding: beams, `N` or `KIND=N` (as --max-new-tokens).
    #[arg(long, value_name = "[KIND=]N")]
    pub num_beams: Vec<String>,
    /// Decoding: length penalty, `X` or `KIND=X` (as --max-new-tokens).
    #[arg(long, value_name = "[KIND=]X", allow_hyphen_values = true)]
    pub length_penalty: Vec<String>,
    /// Decoding: least length (counting the BOS, as transformers does), `N` or `KIND=N`.
    #[arg(long, value_name = "[KIND=]N")]
    pub min_length: Vec<String>,
    /// Decoding: multinomial sampling with one beam instead of beam search, seeded per sample
    /// and stage from --seed (predictions do not depend on batch, shard or resume).
    #[arg(long)]
    pub sample: bool,
    /// Decoding with --sample: temperature, `X` or `KIND=X` (default 1).
    #[arg(long, value_name = "[KIND=]X")]
    pub temperature: Vec<String>,
    /// Decoding with --sample: nucleus probability mass, `P` or `KIND=P` (default 1).
    #[arg(long, value_name = "[KIND=]P")]
    pub top_p: Vec<String>,
    /// coco_t2i: real-image FID statistics (.npz, e.g. from `fid-stats` or pytorch-fid
    /// `--save-stats`), read when present, else computed and written (default: in the cache).
    #[arg(long)]
    pub reference_stats: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum SupportArg {
    Rices,
    Random,
}

pub fn run(args: Args) -> Result<()> {
    crate::signals::install(std::time::Duration::from_secs(args.grace_seconds));
    let runs = options(&args)?;
    let source = args.model.source(args.seed)?;
    let rows = execute(&source, args.family.get(), &args.runtime, &runs)?;
    print!("{}", runner::finish::table(&rows));
    Ok(())
}

/// The run of every (task, shots) combination the flags ask for, checked flag by flag.
pub fn options(args: &Args) -> Result<Vec<RunOptions>> {
    check_flags(args)?;
    let mut generation = runner::generation::Overrides::parse(&runner::generation::Flags {
        max_new_tokens: &args.max_new_tokens,
        num_beams: &args.num_beams,
        length_penalty: &args.length_penalty,
        min_length: &args.min_length,
        sample: args.sample,
        temperature: &args.temperature,
        top_p: &args.top_p,
    })?;
    generation.seed = args.seed;
    let family = args.family.get();
    let shard = args.shard.as_deref().map(Shard::parse).transpose()?;
    let data_root = args.data.resolve()?;
    let combos: Vec<(&'static tasks::registry::Task, usize)> = expand_tasks(&args.tasks)
        .into_iter()
        .flat_map(|t| args.shots.iter().map(move |&k| (t, k)))
        .collect();
    let t2i = runner::t2i::T2iOptions {
        decoder: hub::local_opt(args.decoder.as_deref(), Want::Decoder)?,
        inception: hub::local_opt(args.inception.as_deref(), Want::WeightsFile)?,
        prompts: args.prompts,
        steps: args.steps,
        guidance: args.guidance,
        reference_stats: args.reference_stats.clone(),
    };
    let runs: Vec<RunOptions> = combos
        .iter()
        .map(|&(task, shots)| {
            let id = task.id;
            let name = folder_name(id, family, shots, args.cot, args.text_examples);
            let output = match &args.output {
                Some(o) if combos.len() == 1 => o.clone(),
                Some(o) => o.join(&name),
                None => PathBuf::from("runs").join(&name),
            };
            RunOptions {
                task,
                family,
                shots,
                cot: args.cot,
                text_examples: args.text_examples,
                data_root: data_root.clone(),
                split: args.split.clone().unwrap_or_else(|| task.eval_split.to_owned()),
                limit: args.limit,
                batch: args.batch_size,
                seed: args.seed,
                output,
                shard,
                max_failures: args.max_failures,
                overwrite: args.overwrite,
                retry_failed: args.retry_failed,
                vqa_variant: args.vqa_variant.into(),
                wordnet: args.wordnet.clone(),
                support: match args.support {
                    SupportArg::Rices => SupportKind::Rices,
                    SupportArg::Random => SupportKind::Random,
                },
                cache: args.cache.clone(),
                t2i: t2i.clone(),
                generation: generation.clone(),
            }
        })
        .collect();
    Ok(runs)
}

/// Checks every run before the model loads (everything that can be checked without it), loads
/// the model once and runs them in order.
pub fn execute(
    source: &crate::model_source::ModelSource,
    family: Family,
    runtime: &crate::cli::flags::RuntimeFlags,
    runs: &[RunOptions],
) -> Result<Vec<tasks::run_folder::Metrics>> {
    let n_causal = source.config(family == Family::EmuI)?.n_causal;
    for opts in runs {
        runner::preflight(opts, n_causal)?;
    }
    let (emu, model) = source.load(family == Family::EmuI, runtime.dtype()?, &runtime.device()?)?;
    let mut rows = Vec::new();
    for opts in runs {
        crate::signals::check()?;
        let summary = runner::run_task(&emu, &model, opts)?;
        crate::log::note(format!("{}: wrote {}", opts.task.id, summary.output.display()));
        rows.push(summary.metrics);
    }
    Ok(rows)
}

/// Flag values and combinations that are wrong whatever the data: one line each.
fn check_flags(args: &Args) -> Result<()> {
    if let Some(t) = first_repeat(&args.tasks) {
        anyhow::bail!("--task {t}: given twice");
    }
    if let Some(k) = first_repeat(&args.shots) {
        anyhow::bail!("--shots {k}: given twice");
    }
    if args.cot {
        if let Some(t) = expand_tasks(&args.tasks).into_iter().find(|t| !t.supports_cot()) {
            anyhow::bail!(
                "--cot: {} has no chain-of-thought prompting (it captions or generates)",
                t.id
            );
        }
    }
    Ok(())
}

fn first_repeat<T: PartialEq>(xs: &[T]) -> Option<&T> {
    xs.iter().enumerate().find(|(i, x)| xs[..*i].contains(x)).map(|(_, x)| x)
}

/// `<task>-<family>-<shots>shot[-cot][-text]`.
pub fn folder_name(task: &str, family: Family, shots: usize, cot: bool, text: bool) -> String {
    format!(
        "{task}-{}-{shots}shot{}{}",
        family.key(),
        if cot { "-cot" } else { "" },
        if text { "-text" } else { "" }
    )
}
