//! `emu-eval inspect`: one forward pass of a prompt (and its images), writing every intermediate
//! tensor as float32 to a safetensors file.
//!
//! The output grows with prompt length x vocabulary (the logits of every position), so a small
//! input can ask for gigabytes: above [`MAX_OUTPUT_BYTES`] the command refuses unless `--full`.
use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Tensor};

use crate::cli::flags::EmuFlags;
use crate::pixels::{load_images, read_pixels};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: EmuFlags,
    /// Prompt text; each image needs its `[IMG]<image>…[/IMG]` placeholder.
    #[arg(long)]
    pub prompt: String,
    /// Image files, in placeholder order.
    #[arg(long)]
    pub image: Vec<PathBuf>,
    /// Pixel tensor (n, 3, H, W) from a safetensors file instead of images: `FILE[:KEY]`
    /// (key default `pixel_values`).
    #[arg(long, conflicts_with = "image")]
    pub pixels: Option<String>,
    /// Output safetensors file.
    #[arg(long)]
    pub out: PathBuf,
    /// Write the tensors even when they take more than 256 MiB.
    #[arg(long)]
    pub full: bool,
}

/// Most bytes `inspect` writes without `--full`.
pub const MAX_OUTPUT_BYTES: u64 = 256 << 20;

/// Refuses an output of `bytes` over [`MAX_OUTPUT_BYTES`] unless `full`.
fn check_output_size(args: &Args, bytes: u64, tokens: usize) -> anyhow::Result<()> {
    if args.full || bytes <= MAX_OUTPUT_BYTES {
        return Ok(());
    }
    anyhow::bail!(
        "{}: the tensors of this {tokens}-token prompt take {} MiB or more, over inspect's limit \
         of {} MiB; pass --full to write them",
        args.out.display(),
        bytes >> 20,
        MAX_OUTPUT_BYTES >> 20
    )
}

pub fn run(args: Args) -> anyhow::Result<()> {
    args.model.preflight(&args.image)?;
    let emu = args.model.load()?;
    if !emu.load_report.ignored.is_empty() {
        crate::log::info(format!(
            "{}: ignored {} unused keys",
            emu.load_report.path.display(),
            emu.load_report.ignored.len()
        ));
    }
    let device = emu.device().clone();
    let pixels = match &args.pixels {
        Some(spec) => Some(read_pixels(&emu, spec)?),
        None => load_images(&emu, &args.image)?,
    };
    let pixels = pixels.map(|t| t.to_device(&device)).transpose()?;
    let ids = emu.tokenizer().encode(&args.prompt);
    // Before the forward pass: the language model's tensors alone (logits, embeddings, every
    // layer's hidden states, the final hidden), float32.
    let llama = &emu.cfg.llama;
    let per_token = llama.vocab_size + (llama.num_hidden_layers + 3) * llama.hidden_size;
    check_output_size(&args, (ids.len() as u64) * (per_token as u64) * 4, ids.len())?;
    let input_ids = Tensor::new(ids.as_slice(), &device)?.unsqueeze(0)?; // (1, L)
    let tr = emu.forward_all(pixels.as_ref(), &input_ids, None)?;
    let mut out: HashMap<String, Tensor> = HashMap::new();
    let mut put = |name: &str, t: Option<&Tensor>| -> candle_core::Result<()> {
        if let Some(t) = t {
            out.insert(
                name.to_string(),
                t.to_dtype(DType::F32)?.to_device(&candle_core::Device::Cpu)?,
            );
        }
        Ok(())
    };
    put("pixel_values", pixels.as_ref())?;
    put("vision_patch_embed", tr.vision_patch_embed.as_ref())?;
    put("vision_blocks", tr.vision_blocks.as_ref())?;
    put("vision_features", tr.vision_features.as_ref())?;
    put("ln_visual", tr.ln_visual.as_ref())?;
    put("cformer_hidden_states", tr.cformer_hidden_states.as_ref())?;
    put("cformer_hidden", tr.cformer_hidden.as_ref())?;
    put("cformer_out", tr.cformer_out.as_ref())?;
    put("inputs_embeds", Some(&tr.inputs_embeds))?;
    let (n, _, l, h) = tr.hidden_states_all.dims4()?;
    put("hidden_states_all", Some(&tr.hidden_states_all.reshape((n, l, h))?))?; // (layers+1, L, H)
    put("final_hidden", Some(&tr.final_hidden))?;
    put("logits", Some(&tr.logits))?;
    out.insert(
        "input_ids".into(),
        input_ids.to_dtype(DType::I64)?.to_device(&candle_core::Device::Cpu)?,
    );
    let bytes: u64 =
        out.values().map(|t| (t.elem_count() * t.dtype().size_in_bytes()) as u64).sum();
    check_output_size(&args, bytes, ids.len())?;
    candle_core::safetensors::save(&out, &args.out)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?;
    Ok(())
}
