//! `emu-eval merge DIR… --output DIR`: shard run folders → the folder a single run writes.
use std::path::PathBuf;

use anyhow::Result;

use crate::runner;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Shard run folders (`run --shard I/N`), all N of them.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Merged run folder.
    #[arg(long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub data: crate::cli::flags::DataFlags,
    /// VQAv2 accuracy variant (default: the one the shards recorded).
    #[arg(long, value_enum)]
    pub vqa_variant: Option<super::metric::VqaVariant>,
    /// WordNet 3.0 folder for NExT-QA.
    #[arg(long)]
    pub wordnet: Option<PathBuf>,
    /// coco_t2i: Inception weights for the FID (default: the file the shards recorded).
    #[arg(long)]
    pub inception: Option<PathBuf>,
    /// coco_t2i: real-image FID statistics (.npz), read when present, else computed and written.
    #[arg(long)]
    pub reference_stats: Option<PathBuf>,
    /// coco_t2i: cache folder of the reference statistics (default: as `run`'s).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    // coco_t2i: the Inception network's device.
    #[command(flatten)]
    pub device: crate::cli::flags::DeviceFlag,
    /// coco_t2i: images per Inception forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
}

pub fn run(args: Args) -> Result<()> {
    let t2i = runner::t2i::MergeFid {
        inception: crate::hub::local_opt(args.inception.as_deref(), crate::hub::Want::WeightsFile)?,
        device: args.device.parse()?,
        reference_stats: args.reference_stats,
        cache: args.cache,
        batch: args.batch_size.max(1),
    };
    let m = runner::merge::merge(
        &args.dirs,
        &args.output,
        args.data.data_root.as_deref(),
        args.wordnet.as_deref(),
        args.vqa_variant.map(Into::into),
        &t2i,
    )?;
    print!("{}", runner::finish::table(&[m]));
    Ok(())
}
