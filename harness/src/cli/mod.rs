//! Command-line definition: one clap struct per subcommand, dispatched to `commands`.
use clap::{Parser, Subcommand};

use crate::commands;

pub mod config;
pub mod device;
pub mod flags;

#[derive(Parser, Debug)]
#[command(
    name = "emu-eval",
    version,
    about = "Evaluate the Emu multimodal model on the nine benchmarks of the Emu paper"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub limits: GlobalOptions,
}

/// Resource limits and logging, accepted by every command (README "Limits").
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GlobalOptions {
    /// Largest image or video frame in pixels, checked from the header before decoding
    /// (default 89478485, Pillow's; 0 = no limit; env EMU_EVAL_MAX_IMAGE_PIXELS).
    #[arg(long, global = true, value_name = "N")]
    pub max_image_pixels: Option<u64>,
    /// Most feature columns of an FID matrix (default 8192; 0 = no limit; env EMU_EVAL_MAX_FID_FEATURES).
    #[arg(long, global = true, value_name = "N")]
    pub max_fid_features: Option<u64>,
    /// Messages besides results and errors: error, warn (default) or info (env EMU_EVAL_LOG).
    #[arg(long, global = true, value_enum)]
    pub log_level: Option<crate::log::Level>,
    /// Flags of the command from a TOML file (`key = value`); the command line overrides it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Print the resolved flags (file and command line) as TOML and exit.
    #[arg(long, global = true)]
    pub print_config: bool,
    /// Worker threads of the model's CPU kernels and of the parallel metric and media code
    /// (default: the physical cores; env RAYON_NUM_THREADS). Predictions do not depend on it.
    #[arg(long, global = true, value_name = "N", value_parser = flags::at_least_one)]
    pub threads: Option<usize>,
}

impl GlobalOptions {
    /// Installs the limits and the log level for this process.
    pub fn apply(&self) {
        if let Some(n) = self.threads {
            set_threads(n);
        }
        if let Some(n) = self.max_image_pixels {
            tasks::limits::IMAGE_PIXELS.set(n);
        }
        if let Some(n) = self.max_fid_features {
            tasks::limits::FID_FEATURES.set(n);
        }
        crate::log::init(self.log_level);
    }
}

/// Sizes every thread pool of the process to `n` before any is started: rayon's global pool
/// and candle's CPU pools (which read `RAYON_NUM_THREADS`/`CANDLE_NUM_THREADS` once, when first
/// used).
fn set_threads(n: usize) {
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
    // Fails only when the global pool already exists; none is started before this point.
    let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Score data directly with a metric (no dataset layout needed).
    Metric(commands::metric::Args),
    /// List the registered tasks.
    Tasks(commands::tasks_list::Args),
    /// Validate a data root.
    Data(commands::data::Args),
    /// Score a predictions file in the task's official result format.
    Score(commands::score::Args),
    /// Run one forward pass and write intermediate tensors.
    Inspect(commands::inspect::Args),
    /// Convert an official `.pt` checkpoint to safetensors.
    Convert(commands::convert::Args),
    /// Generate text for a left-padded batch of prompts.
    Generate(commands::generate::Args),
    /// Rank candidate answers by the official classification loss.
    Rank(commands::rank::Args),
    /// Regress image embeddings (`generate_image`'s autoregressive loop).
    Regress(commands::regress::Args),
    /// Print the exact prompt(s) for a sample.
    Prompt(commands::prompt::Args),
    /// Evaluate tasks end to end: predictions.jsonl, metrics.json, the official result file.
    Run(commands::run::Args),
    /// Merge shard run folders into the folder a single run writes.
    Merge(commands::merge::Args),
    /// Tables beside the paper's numbers, plots and an HTML page from run folders.
    Report(commands::report::Args),
    /// The paper's Tables 1–3 as one resumable plan: run here, as a Slurm array or a Kubernetes
    /// Indexed Job, then merged into one report.
    Reproduce(commands::reproduce::Args),
    /// Compare a candidate with a baseline; non-zero exit on regression (CI gate).
    Compare(commands::compare::Args),
    /// Build or refresh a task's RICES feature cache (support pool and evaluation split).
    Index(commands::index::Args),
    /// Print the RICES support examples of an evaluation sample, with similarities.
    Neighbours(commands::neighbours::Args),
    /// Generate an image with Emu's regression and the visual decoder.
    GenerateImage(commands::generate_image::Args),
    /// FID statistics (pytorch-fid `.npz`) of a folder of images.
    FidStats(commands::fid_stats::Args),
}

pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Metric(a) => commands::metric::run(a),
        Command::Tasks(a) => commands::tasks_list::run(a),
        Command::Data(a) => commands::data::run(a),
        Command::Score(a) => commands::score::run(a),
        Command::Inspect(a) => commands::inspect::run(a),
        Command::Convert(a) => commands::convert::run(a),
        Command::Generate(a) => commands::generate::run(a),
        Command::Rank(a) => commands::rank::run(a),
        Command::Regress(a) => commands::regress::run(a),
        Command::Prompt(a) => commands::prompt::run(a),
        Command::Run(a) => commands::run::run(a),
        Command::Merge(a) => commands::merge::run(a),
        Command::Report(a) => commands::report::run(a),
        Command::Reproduce(a) => commands::reproduce::run(a),
        Command::Compare(a) => commands::compare::run(a),
        Command::Index(a) => commands::index::run(a),
        Command::Neighbours(a) => commands::neighbours::run(a),
        Command::GenerateImage(a) => commands::generate_image::run(a),
        Command::FidStats(a) => commands::fid_stats::run(a),
    }
}
