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
    /// Data root the shards ran on (default: $EMU_EVAL_DATA, else the built-in sample data).
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// VQAv2 accuracy variant.
    #[arg(long, value_enum, default_value = "official")]
    pub vqa_variant: super::metric::VqaVariant,
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
    /// coco_t2i: device of the Inception network (cpu or cuda[:N]).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// coco_t2i: images per Inception forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
}

pub fn run(args: Args) -> Result<()> {
    let data_root = match (&args.data_root, std::env::var_os("EMU_EVAL_DATA")) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => PathBuf::from(d),
        (None, None) => crate::sample_data::default_dir(),
    };
    let t2i = runner::t2i::MergeFid {
        inception: args.inception,
        device: crate::cli::device::parse_device(&args.device)?,
        reference_stats: args.reference_stats,
        cache: args.cache,
        batch: args.batch_size.max(1),
    };
    let m = runner::merge::merge(&args.dirs, &args.output, &data_root, args.wordnet.as_deref(), args.vqa_variant.into(), &t2i)?;
    print!("{}", runner::finish::table(&[m]));
    Ok(())
}
