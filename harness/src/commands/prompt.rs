//! `emu-eval prompt`: print the exact prompt(s) of one sample (and with `--ids` their token ids).
//!
//! What `run` sends, with `run`'s defaults: the same data root, model, family and seed, and the
//! same support examples (RICES from the same feature cache, or with `--support random` the
//! seeded fallback). `<image>` slots per block come from the model's config (`--model`, else the
//! built-in tiny model's).
use std::io::Write;

use anyhow::Context;
use prompts::{Family, PromptOptions, PromptPlan};
use serde_json::{json, Value};

use std::path::PathBuf;

use crate::cli::flags::{DataFlags, FamilyFlag, FormatFlags, ModelFlags, RuntimeFlags, TaskFlag};
use crate::plan;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub task: TaskFlag,
    #[command(flatten)]
    pub family: FamilyFlag,
    /// Few-shot support examples shown with their media (0, 2, 4, 8 in the paper).
    #[arg(long, default_value_t = 0)]
    pub shots: usize,
    /// Multimodal chain-of-thought (pretrained Emu): a caption stage fills {caption}.
    #[arg(long)]
    pub cot: bool,
    /// Two text-only support examples (the paper's `*` rows).
    #[arg(long)]
    pub text_examples: bool,
    #[command(flatten)]
    pub data: DataFlags,
    /// Split (default: the task's evaluation split).
    #[arg(long)]
    pub split: Option<String>,
    /// Sample id as used in the task's predictions (default: the first evaluation sample).
    #[arg(long)]
    pub sample: Option<String>,
    #[command(flatten)]
    pub format: FormatFlags,
    /// Also print token ids.
    #[arg(long)]
    pub ids: bool,
    // The model's config gives the `<image>` slots per block, its tokenizer the --ids.
    #[command(flatten)]
    pub model: ModelFlags,
    /// Seed of the support pool subset, the support choice and the built-in model's weights, as
    /// `run --seed`.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How few-shot support examples are chosen, as `run --support`: RICES (nearest EVA-CLIP
    /// features of the training pool; loads the model's vision tower) or the seeded random choice.
    #[arg(long, value_enum, default_value = "rices")]
    pub support: super::run::SupportArg,
    /// RICES feature cache folder, as `run --cache`.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    #[command(flatten)]
    pub runtime: RuntimeFlags,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let task = args.task.get();
    let family = args.family.get();
    let data_root = args.data.resolve()?;
    let source = args.model.source(args.seed)?;
    let instruct = family == Family::EmuI;
    let n_causal = source.config(instruct)?.n_causal;
    let tokenizer = if args.ids { Some(source.tokenizer(instruct)?) } else { None };
    let opts = PromptOptions {
        shots: args.shots,
        cot: args.cot,
        text_examples: args.text_examples,
        n_causal,
        ..Default::default()
    };
    let wanted = plan::wanted_support(&opts);
    let split = args.split.clone().unwrap_or_else(|| task.eval_split.to_owned());
    let rices = wanted > 0 && matches!(args.support, super::run::SupportArg::Rices);
    let (data, pool_all) = plan::load_with_pool(task, &data_root, &split, wanted > 0, args.seed)?;
    let query = match &args.sample {
        Some(id) => data
            .queries
            .iter()
            .find(|s| &s.id == id)
            .with_context(|| format!("--sample: no sample {id:?} in {}", task.id))?,
        None => {
            data.queries.first().with_context(|| format!("{}: no evaluation samples", task.id))?
        }
    };
    // The support examples `run` would use: RICES from the same feature cache (the model's vision
    // tower computes what the cache lacks), or the seeded random choice.
    let support = if rices {
        let (emu, info) = source.load(instruct, args.runtime.dtype()?, &args.runtime.device()?)?;
        let cache = args.cache.as_deref();
        let ex = crate::rices_features::VisionFeatures { tower: &emu, pooling: Default::default() };
        let index = crate::runner::support_index(
            &ex,
            &info.weights_hash,
            args.seed,
            cache,
            &data,
            &pool_all,
        )?;
        plan::rices_support(&index, &query.id, wanted)?
    } else {
        plan::fallback_support(&data, &query.id, wanted, args.seed)?
    };
    let plan = plan::plan(&data, family, query, &support, &opts)?;

    let stages = stage_values(&plan, tokenizer.as_ref());
    let out = json!({
        "task": task.id,
        "model_family": family.key(),
        "sample": query.id,
        "shots": args.shots,
        "cot": args.cot,
        "text_examples": args.text_examples,
        "example_separator": plan.example_separator,
        "support": support.to_json(),
        "prompts": stages,
    });
    if args.format.json {
        return super::metric::print_json(&out, args.format.compact.compact);
    }
    write_text(&mut std::io::stdout().lock(), &out)
}

/// One JSON object per stage: name, kind, exact text, files feeding the image blocks (and for
/// video frames `[i, k]`: frame i of k sampled), and token ids when a tokenizer is given. A stage
/// that uses an earlier stage's output shows it as `{stage name}` and has no ids.
fn stage_values(plan: &PromptPlan, tokenizer: Option<&Tokenizer>) -> Vec<Value> {
    plan.stages
        .iter()
        .map(|st| {
            let text = st.text();
            let mut v = plan::stage_json(st, &text);
            v["depends_on"] = json!(st.depends_on());
            if let Some(tok) = tokenizer {
                v["ids"] =
                    if st.depends_on().is_empty() { json!(tok.encode(&text)) } else { Value::Null };
            }
            v
        })
        .collect()
}

fn write_text(w: &mut dyn Write, out: &Value) -> anyhow::Result<()> {
    writeln!(
        w,
        "# task {} | family {} | sample {} | support {} {} | separator {}",
        out["task"].as_str().unwrap_or_default(),
        out["model_family"].as_str().unwrap_or_default(),
        out["sample"].as_str().unwrap_or_default(),
        out["support"]["method"].as_str().unwrap_or_default(),
        out["support"]["ids"],
        out["example_separator"],
    )?;
    for st in out["prompts"].as_array().into_iter().flatten() {
        writeln!(
            w,
            "== stage {} ({})",
            st["stage"].as_str().unwrap_or_default(),
            st["kind"].as_str().unwrap_or_default()
        )?;
        let images: Vec<String> = st["images"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(st["frames"].as_array().into_iter().flatten())
            .map(|(p, f)| match f.as_array() {
                Some(f) => format!("{}#{}/{}", p.as_str().unwrap_or_default(), f[0], f[1]),
                None => p.as_str().unwrap_or_default().to_owned(),
            })
            .collect();
        writeln!(w, "images: {}", images.join(" "))?;
        writeln!(w, "{}", st["text"].as_str().unwrap_or_default())?;
        match st.get("ids") {
            Some(Value::Array(ids)) => {
                let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
                writeln!(w, "ids: {}", ids.join(","))?
            }
            Some(_) => writeln!(w, "ids: (uses an earlier stage's output)")?,
            None => {}
        }
    }
    Ok(())
}

type Tokenizer = models::emu::tokenizer::EmuTokenizer;
