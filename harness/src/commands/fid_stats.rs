//! `emu-eval fid-stats`: pool3 statistics of a folder of images with pytorch-fid's Inception,
//! written as pytorch-fid's `--save-stats` does (`.npz` with `mu` and `sigma`).
use std::path::PathBuf;

use anyhow::{bail, Result};
use serde_json::json;
use tasks::metrics::npz;

use crate::t2i::fid::{image_stats, list_images, load_inception};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder of images (bmp, jpg, jpeg, pgm, png, ppm, tif, tiff, webp; not recursive).
    #[arg(long)]
    pub images: PathBuf,
    /// Output `.npz`.
    #[arg(long)]
    pub out: PathBuf,
    /// pt_inception-2015-12-05-6726825d.pth or a safetensors copy (default: $EMU_EVAL_INCEPTION).
    #[arg(long)]
    pub inception: Option<PathBuf>,
    /// Images per forward pass (pytorch-fid's default 50).
    #[arg(long, default_value_t = 50)]
    pub batch_size: usize,
    #[command(flatten)]
    pub device: crate::cli::flags::DeviceFlag,
}

pub fn run(args: Args) -> Result<()> {
    let device = args.device.parse()?;
    let paths = list_images(&args.images)?;
    if paths.len() < 2 {
        bail!(
            "{}: {} image(s) found; the covariance needs at least 2",
            args.images.display(),
            paths.len()
        );
    }
    let inception =
        crate::hub::local_opt(args.inception.as_deref(), crate::hub::Want::WeightsFile)?;
    let net = load_inception(inception.as_deref(), &device)?;
    let (mu, sigma) = image_stats(&net, &paths, args.batch_size, &device, true)?;
    npz::write_stats(&args.out, &mu, &sigma)?;
    println!(
        "{}",
        serde_json::to_string_pretty(
            &json!({ "images": paths.len(), "dims": mu.len(), "out": args.out })
        )?
    );
    Ok(())
}
