//! `emu-eval convert`: an official PyTorch checkpoint (zip pickle, checked for foreign globals)
//! to safetensors with the same keys, in the stored dtype unless `--dtype` says otherwise.
use std::collections::HashMap;
use std::path::PathBuf;

use crate::emu::{self, load::Checkpoint};

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
    let dtype = args.dtype.as_deref().map(emu::parse_dtype).transpose()?;
    let ck = Checkpoint::open(&args.weights, None)?;
    let mut out = HashMap::new();
    for key in ck.file_keys() {
        let t = ck.read_file_key(&key)?;
        let t = match dtype {
            Some(d) if t.dtype().is_float() => t.to_dtype(d)?,
            _ => t,
        };
        out.insert(key, t);
    }
    candle_core::safetensors::save(&out, &args.out).map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?;
    eprintln!("emu-eval: wrote {} tensors to {}", out.len(), args.out.display());
    Ok(())
}
