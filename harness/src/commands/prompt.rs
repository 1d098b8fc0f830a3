//! `emu-eval prompt`: print the exact prompt(s) of one sample (and with `--ids` their token ids).
//!
//! Samples come from the task loaders under the data root; support examples from the task's
//! training pool. No image features are computed here, so support examples are chosen with
//! retrieval's seeded fallback (reported as such, never as RICES). `<image>` slots per block come
//! from the model's config (`--model`, else the built-in tiny model's).
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use prompts::{Family, PromptOptions, PromptPlan};
use serde_json::{json, Value};

use super::args::{FamilyArg, TaskArg};
use crate::plan;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub task: TaskArg,
    /// Template family: pretrained Emu or instruction-tuned Emu-I.
    #[arg(long, value_enum)]
    pub model_family: FamilyArg,
    /// Few-shot support examples shown with their media (0, 2, 4, 8 in the paper).
    #[arg(long, default_value_t = 0)]
    pub shots: usize,
    /// Multimodal chain-of-thought (pretrained Emu): a caption stage fills {caption}.
    #[arg(long)]
    pub cot: bool,
    /// Two text-only support examples (the paper's `*` rows).
    #[arg(long)]
    pub text_examples: bool,
    /// Data root (default: $EMU_EVAL_DATA).
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Split (default: the task's evaluation split).
    #[arg(long)]
    pub split: Option<String>,
    /// Sample id as used in the task's predictions (default: the first evaluation sample).
    #[arg(long)]
    pub sample: Option<String>,
    /// Print pretty JSON: {"prompts":[{"stage","kind","text","images","frames"}], ...}.
    #[arg(long)]
    pub json: bool,
    /// With --json: one line.
    #[arg(long)]
    pub compact: bool,
    /// Also print token ids.
    #[arg(long)]
    pub ids: bool,
    /// Model folder (config.json for the `<image>` slots, tokenizer.json for --ids); default: the
    /// built-in tiny model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Seed of the support pool subset and of the fallback selection.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let task = args.task.get();
    let family = Family::from(args.model_family);
    let data_root = match (&args.data_root, std::env::var_os("EMU_EVAL_DATA")) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => PathBuf::from(d),
        (None, None) => bail!("--data-root: not given and $EMU_EVAL_DATA is not set"),
    };
    let (n_causal, tokenizer) = model_view(args.model.as_deref(), family, args.ids)?;
    let opts = PromptOptions { shots: args.shots, cot: args.cot, text_examples: args.text_examples, n_causal, ..Default::default() };
    let wanted = plan::wanted_support(&opts);
    let split = args.split.clone().unwrap_or_else(|| task.eval_split.to_owned());
    let data = plan::load(task, &data_root, &split, wanted > 0, args.seed)?;
    let query = match &args.sample {
        Some(id) => data.queries.iter().find(|s| &s.id == id).with_context(|| format!("--sample: no sample {id:?} in {}", task.id))?,
        None => data.queries.first().with_context(|| format!("{}: no evaluation samples", task.id))?,
    };
    let support = plan::fallback_support(&data, &query.id, wanted, args.seed)?;
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
    if args.json {
        return super::metric::print_json(&out, args.compact);
    }
    write_text(&mut std::io::stdout().lock(), &out)
}

/// `<image>` slots per block from the model's config, and the tokenizer when ids are wanted.
fn model_view(model: Option<&std::path::Path>, family: Family, ids: bool) -> anyhow::Result<(usize, Option<Tokenizer>)> {
    let instruct = family == Family::EmuI;
    match model {
        None => {
            let tok = if ids { Some(models::emu::builtin::tokenizer(instruct)?) } else { None };
            Ok((models::emu::builtin::tiny_config(instruct).n_causal, tok))
        }
        Some(dir) => {
            let cfg = models::emu::EmuConfig::from_file(&dir.join("config.json"))?;
            let tok = if ids {
                let path = dir.join("tokenizer.json");
                Some(Tokenizer::from_file(&path, cfg.instruct).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?)
            } else {
                None
            };
            Ok((cfg.n_causal, tok))
        }
    }
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
                v["ids"] = if st.depends_on().is_empty() { json!(tok.encode(&text)) } else { Value::Null };
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
        writeln!(w, "== stage {} ({})", st["stage"].as_str().unwrap_or_default(), st["kind"].as_str().unwrap_or_default())?;
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
