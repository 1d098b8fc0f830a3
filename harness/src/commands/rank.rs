//! `emu-eval rank`: the VisDial classification loss of each candidate (prompt KV cache shared
//! across candidates); prints `{"losses":[…],"ranks":[…],"visdial_ranks":[…]}` where `ranks` is
//! what the official `predict` returns (indices by ascending loss) and `visdial_ranks[c]` the
//! 1-based rank of candidate `c` as stored in the result file. The prompt is `--prompt S [--image
//! F]…` or `--stage FILE` (a stage object as `prompt --json` prints it).
use anyhow::Result;
use serde_json::json;

use super::stage::{media_tensor, StageInput};
use crate::cli::flags::EmuFlags;
use crate::pixels::load_images;
use models::decode::emu_lm::expand_image_marker;
use models::decode::rank_emu::{encode_candidates, rank_naive, rank_shared, single_prompt_embeds};
use tasks::metrics::visdial::order_to_ranks as visdial_ranks;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: EmuFlags,
    #[arg(long, required_unless_present = "stage")]
    pub prompt: Option<String>,
    /// Images of the prompt, in order.
    #[arg(long)]
    pub image: Vec<std::path::PathBuf>,
    /// A stage object as `prompt --json` prints it (text, images, video frames) instead of
    /// --prompt/--image; `-`: stdin.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["prompt", "image"])]
    pub stage: Option<std::path::PathBuf>,
    /// Candidate answer (repeat).
    #[arg(long = "candidate", required = true)]
    pub candidates: Vec<String>,
    /// Number of segments the candidates are split into (changes the loss denominators).
    #[arg(long, default_value_t = 1)]
    pub segments: usize,
    /// Candidates per batch over the shared prompt cache.
    #[arg(long, default_value_t = 100)]
    pub chunk: usize,
    /// Score like the reference: one full forward per segment, no shared cache.
    #[arg(long)]
    pub naive: bool,
    #[command(flatten)]
    pub format: crate::cli::flags::CompactFlag,
}

pub fn run(args: Args) -> Result<()> {
    let stage = args.stage.as_deref().map(StageInput::read).transpose()?;
    let files = stage.as_ref().map_or_else(|| args.image.clone(), StageInput::image_files);
    args.model.preflight(&files)?;
    let emu = args.model.load()?;
    let (text, pixels) = match &stage {
        Some(s) => (s.text.as_str(), media_tensor(&emu, &s.media)?),
        None => (args.prompt.as_deref().unwrap_or_default(), load_images(&emu, &args.image)?),
    };
    let prompt = expand_image_marker(text, emu.cfg.n_causal);
    let embeds = single_prompt_embeds(&emu, &prompt, pixels.as_ref())?;
    let cands = encode_candidates(&emu, &args.candidates)?;
    let r = if args.naive {
        rank_naive(&emu, &embeds, &cands, args.segments)?
    } else {
        rank_shared(&emu, &embeds, &cands, args.segments, args.chunk)?
    };
    if let Some(i) = r.losses.iter().position(|l| !l.is_finite()) {
        anyhow::bail!(
            "loss of candidate {i} (`{}`) is {} (from the model's logits)",
            args.candidates[i],
            r.losses[i]
        );
    }
    let out =
        json!({"losses": r.losses, "ranks": r.order, "visdial_ranks": visdial_ranks(&r.order)});
    super::metric::print_json(&out, args.format.compact)
}
