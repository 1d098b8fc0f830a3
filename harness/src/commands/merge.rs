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
}

pub fn run(args: Args) -> Result<()> {
    let data_root = match (&args.data_root, std::env::var_os("EMU_EVAL_DATA")) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => PathBuf::from(d),
        (None, None) => crate::sample_data::default_dir(),
    };
    let m = runner::merge::merge(&args.dirs, &args.output, &data_root, args.wordnet.as_deref(), args.vqa_variant.into())?;
    print!("{}", runner::finish::table(&[m]));
    Ok(())
}
