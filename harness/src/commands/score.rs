//! `emu-eval score`: score a predictions file in the task's official result format.
use std::path::PathBuf;

use serde_json::json;
use tasks::datasets::predictions;
use tasks::metrics::result::Detail;
use tasks::metrics::wordnet;

use super::data::Location;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub loc: Location,
    /// Predictions file (COCO `[{"image_id","caption"}]`, VQA `[{"question_id","answer"}]`, VizWiz
    /// `[{"image","answer"}]`, VisDial `[{"image_id","round_id","ranks"}]`, video QA
    /// `[{"question_id","answer"}]`, NExT-QA `[{"video","qid","answer"}]`).
    #[arg(long)]
    pub predictions: PathBuf,
    /// Score only the samples that have a prediction (default: missing ones count as wrong).
    #[arg(long)]
    pub allow_partial: bool,
    /// VQAv2 accuracy variant (official server code or Emu's LAVIS code).
    #[arg(long, value_enum, default_value = "official")]
    pub vqa_variant: super::metric::VqaVariant,
    /// WordNet 3.0 folder for NExT-QA (default: /usr/share/wordnet).
    #[arg(long)]
    pub wordnet: Option<PathBuf>,
    #[command(flatten)]
    pub format: crate::cli::flags::CompactFlag,
}

/// How many ids to list in the report before summarising.
const LIST: usize = 20;

pub fn run(args: Args) -> anyhow::Result<()> {
    let (task, dir) = args.loc.resolve()?;
    let split = args.loc.split.clone().unwrap_or_else(|| task.eval_split.to_owned());
    let data = task.load(&dir, &split)?;
    let preds = predictions::read(task, &args.predictions)?;
    let (joined, m) = predictions::join(&data.samples, preds, args.allow_partial);
    let wn = if task.scorer.needs_wordnet() {
        Some(match &args.wordnet {
            Some(d) => wordnet::WordNet::load(d)?,
            None => wordnet::WordNet::load_default()?,
        })
    } else {
        None
    };
    let metric =
        predictions::score(task, &joined, args.vqa_variant.into(), wn.as_ref(), Detail::PerSample)
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.predictions.display()))?;
    for (what, ids) in
        [("unknown id", &m.unknown), ("duplicate id", &m.duplicates), ("missing id", &m.missing)]
    {
        if !ids.is_empty() {
            let shown: Vec<&str> = ids.iter().take(LIST).map(String::as_str).collect();
            let more = if ids.len() > LIST {
                format!(" … ({} in all)", ids.len())
            } else {
                String::new()
            };
            eprintln!(
                "{}: {} {what}(s): {}{more}",
                args.predictions.display(),
                ids.len(),
                shown.join(", ")
            );
        }
    }
    let list = |ids: &Vec<String>| ids.iter().take(LIST).cloned().collect::<Vec<_>>();
    let out = json!({
        "task": task.id,
        "split": split,
        "samples": data.samples.len(),
        "scored": m.scored,
        "missing": m.missing.len(),
        "missing_counted_as_wrong": !args.allow_partial && !m.missing.is_empty(),
        "unknown": m.unknown.len(),
        "duplicates": m.duplicates.len(),
        "missing_ids": list(&m.missing),
        "unknown_ids": list(&m.unknown),
        "duplicate_ids": list(&m.duplicates),
        "metric": metric,
    });
    super::metric::print_json(&out, args.format.compact)
}
