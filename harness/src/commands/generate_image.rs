//! `emu-eval generate-image`: one image from a prompt (and optional context images) with Emu's
//! regression and the visual decoder, saved as PNG.
use std::path::PathBuf;

use anyhow::{bail, Result};
use models::decoder::{GenerateOptions, VisualDecoder};
use serde_json::json;

use crate::cli::flags::EmuFlags;
use crate::pixels::load_images;
use crate::t2i::{read_init_latents, seeded_latents, write_png, TextToImage};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: EmuFlags,
    /// Visual decoder folder (diffusers layout: unet/, vae/, scheduler/).
    #[arg(long)]
    pub decoder: PathBuf,
    /// Text; `[<IMG_PLH>]` marks where each --image goes.
    #[arg(long)]
    pub prompt: String,
    #[arg(long)]
    pub image: Vec<PathBuf>,
    /// PNDM denoising steps.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Classifier-free guidance scale (≤ 1 turns guidance off).
    #[arg(long, default_value_t = 5.0)]
    pub guidance: f64,
    /// Seed of the initial noise.
    #[arg(long, conflicts_with = "init_latents")]
    pub seed: Option<u64>,
    /// Initial noise from a safetensors file's `initial_latents` tensor (1, 4, h, w).
    #[arg(long)]
    pub init_latents: Option<PathBuf>,
    /// Image side in pixels (default: the UNet's sample_size × the VAE's scale factor).
    #[arg(long)]
    pub size: Option<usize>,
    /// Decoder dtype (f32, bf16, f16).
    #[arg(long, default_value = "f32")]
    pub decoder_dtype: String,
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    if args.steps == 0 {
        bail!("--steps: must be at least 1");
    }
    let emu = args.model.load()?;
    let device = args.model.runtime.device()?;
    let decoder = VisualDecoder::load(
        &crate::hub::local(&args.decoder, crate::hub::Want::Decoder)?,
        crate::cli::device::parse_dtype(&args.decoder_dtype)?,
        &device,
    )?;
    let size = args.size.unwrap_or_else(|| TextToImage::default_size(&decoder));
    let f = decoder.vae_cfg.scale_factor();
    if size == 0 || !size.is_multiple_of(f) {
        bail!("--size: {size} is not a positive multiple of the VAE scale factor {f}");
    }
    let t2i = TextToImage::new(
        &emu,
        &decoder,
        GenerateOptions { steps: args.steps, guidance: args.guidance },
        size,
    )?;
    let init = match &args.init_latents {
        Some(p) => read_init_latents(p, t2i.latent_shape())?,
        None => seeded_latents(t2i.latent_shape(), args.seed.unwrap_or(0), &device)?,
    };
    let pixels = load_images(&emu, &args.image)?;
    let img = models::pool::on_workers(|| t2i.generate(&args.prompt, pixels.as_ref(), &init))?;
    write_png(&args.out, &img.rgb, img.width, img.height)?;
    let out = json!({ "out": args.out, "width": img.width, "height": img.height, "steps": args.steps, "guidance": args.guidance });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
