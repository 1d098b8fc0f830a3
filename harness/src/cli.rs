//! Command-line definition: one clap struct per subcommand, dispatched to `commands`.
use clap::{Parser, Subcommand};

use crate::commands;

#[derive(Parser, Debug)]
#[command(name = "emu-eval", version, about = "Evaluate the Emu multimodal model on the nine benchmarks of the Emu paper")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
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
        Command::GenerateImage(a) => commands::generate_image::run(a),
        Command::FidStats(a) => commands::fid_stats::run(a),
    }
}
