//! `emu-eval compare --baseline A --candidate B`: a CI regression gate. Prints a table and exits
//! non-zero on a regression, a task missing from the candidate, a changed configuration, other
//! data, or too few shared samples. `--models`: is B better than A on the same data?
use std::path::PathBuf;

use reports::compare;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Baseline: a run folder, a folder of run folders, a report folder or its results.json.
    #[arg(long)]
    pub baseline: PathBuf,
    /// Candidate, in the same forms.
    #[arg(long)]
    pub candidate: PathBuf,
    /// Allowed drop per task on the headline scale: `vqav2=1.0,coco_caption=2` (a bare number
    /// sets the default for other tasks; default 0).
    #[arg(long)]
    pub tolerance: Option<String>,
    /// Also require significance: seeded paired bootstrap over per-sample scores joined by id.
    #[arg(long)]
    pub paired: bool,
    /// Bootstrap seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 10_000)]
    pub resamples: usize,
    /// Least share (0–1) of the samples, of both sides together, that both must have scored
    /// (default 1: the same samples); less is its own failing verdict.
    #[arg(long, default_value_t = 1.0)]
    pub min_overlap: f64,
    /// Compare models on the same data: model, weights and dtype may differ, nothing else; each
    /// task gets the paired bootstrap interval of candidate − baseline.
    #[arg(long)]
    pub models: bool,
    #[command(flatten)]
    pub format: crate::cli::flags::FormatFlags,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut opts = compare::Options {
        paired: args.paired,
        seed: args.seed,
        resamples: args.resamples,
        min_overlap: args.min_overlap,
        models: args.models,
        ..Default::default()
    };
    if !(0.0..=1.0).contains(&args.min_overlap) {
        anyhow::bail!("--min-overlap: {} is not between 0 and 1", args.min_overlap);
    }
    if let Some(t) = &args.tolerance {
        compare::parse_tolerances(t, &mut opts).map_err(anyhow::Error::msg)?;
    }
    if args.paired && args.resamples == 0 {
        anyhow::bail!("--resamples: must be at least 1 with --paired");
    }
    let baseline = compare::load_side(&args.baseline)?;
    let candidate = compare::load_side(&args.candidate)?;
    let result = compare::compare(&baseline, &candidate, &opts).map_err(anyhow::Error::msg)?;
    if args.format.json {
        super::metric::print_json(&result, args.format.compact.compact)?;
    } else {
        print!("{}", compare::render(&result));
    }
    let failures = result.failures();
    if !failures.is_empty() {
        let what: Vec<String> =
            failures.iter().map(|l| format!("{} ({})", l.key, l.verdict.as_str())).collect();
        anyhow::bail!("compare: {} failing line(s): {}", failures.len(), what.join(", "));
    }
    Ok(())
}
