//! `emu-eval regress`: `generate_image`'s regressed visual embeddings for one prompt, written as
//! `embeds` [1, n_causal, hidden] (f32) to a safetensors file.
use std::path::PathBuf;

use anyhow::{Context, Result};
use candle_core::DType;

use crate::cli::flags::EmuFlags;
use crate::pixels::load_images;
use models::decode::regress::regress_embeddings;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: EmuFlags,
    /// Text; `[<IMG_PLH>]` marks where each --image goes.
    #[arg(long)]
    pub prompt: String,
    #[arg(long)]
    pub image: Vec<PathBuf>,
    /// Output safetensors file (tensor `embeds`).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    args.model.preflight(&args.image)?;
    let emu = args.model.load()?;
    let pixels = load_images(&emu, &args.image)?;
    let embeds = regress_embeddings(&emu, &args.prompt, pixels.as_ref())?.to_dtype(DType::F32)?;
    if let Some(i) = embeds.flatten_all()?.to_vec1::<f32>()?.iter().position(|x| !x.is_finite()) {
        anyhow::bail!("regressed embedding element {i} is not finite (from the model's outputs); nothing written");
    }
    candle_core::safetensors::save(
        &std::collections::HashMap::from([("embeds".to_string(), embeds)]),
        &args.out,
    )
    .with_context(|| format!("{}: writing", args.out.display()))?;
    Ok(())
}
