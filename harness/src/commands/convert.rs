//! `emu-eval convert`: an official PyTorch checkpoint to safetensors with the same keys
//! ([`crate::convert`]), in the stored dtype unless `--dtype` says otherwise.
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Input `.pt`/`.bin` checkpoint.
    #[arg(long)]
    pub weights: PathBuf,
    /// Output `.safetensors` file.
    #[arg(long)]
    pub out: PathBuf,
    /// Cast every floating tensor to f32, bf16 or f16 (default: keep the stored dtype).
    #[arg(long)]
    pub dtype: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cast = args.dtype.as_deref().map(crate::cli::device::parse_dtype).transpose()?;
    let n = crate::convert::convert(&args.weights, &args.out, cast)?;
    crate::log::info(format!("wrote {n} tensors to {}", args.out.display()));
    Ok(())
}
