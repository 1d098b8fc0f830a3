//! `emu-eval neighbours`: the RICES support examples of one evaluation sample, most similar
//! first, with their cosine similarities (prompts show them in reverse: most similar last).
use std::io::Write;

use anyhow::Result;
use serde_json::json;

use super::index::RicesArgs;
use crate::cli::flags::FormatFlags;
use crate::rices::SupportIndex;
use crate::rices_features::VisionFeatures;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub rices: RicesArgs,
    /// Evaluation sample id (as in predictions).
    #[arg(long)]
    pub sample: String,
    /// Number of neighbours.
    #[arg(short = 'k', long = "k", default_value_t = 4)]
    pub k: usize,
    #[command(flatten)]
    pub format: FormatFlags,
}

pub fn run(args: Args) -> Result<()> {
    let a = &args.rices;
    let (task, root, opts, cache) = (a.task()?, a.data_root()?, a.options()?, a.cache()?);
    let (emu, weights) = a.model()?;
    let ex = VisionFeatures { tower: &emu, pooling: a.pooling };
    let index =
        SupportIndex::open_or_build(&ex, &weights, task, &root, &cache, &opts, &mut |_, _, _| {})?;
    let best = index.neighbours(&[args.sample.as_str()], args.k)?.pop().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if args.format.json {
        let v = json!({
            "sample": args.sample,
            "neighbours": best.iter().map(|n| json!({"id": n.id, "similarity": n.similarity})).collect::<Vec<_>>(),
        });
        let text = if args.format.compact.compact {
            serde_json::to_string(&v)?
        } else {
            serde_json::to_string_pretty(&v)?
        };
        writeln!(out, "{text}")?;
    } else {
        writeln!(
            out,
            "# {} sample {} | {} | most similar first",
            task.id,
            args.sample,
            index.backend().label()
        )?;
        for n in &best {
            writeln!(out, "{}\t{:.6}", n.id, n.similarity)?;
        }
    }
    Ok(())
}
