//! `emu-eval generate`: one left-padded batch of prompts (each with its images), greedy / beam /
//! sampling / constrained decoding; prints `{"results":[{"ids","text","score"}]}`.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use clap::{Arg, ArgAction, ArgMatches, FromArgMatches};
use serde_json::json;

use crate::decode::emu_lm::EmuSession;
use crate::decode::{self, GenerationConfig, Sampling, TokenTrie};
use super::model_args::ModelArgs;
use crate::emu::{self, Emu};

/// One `--prompt` with the `--image`s that follow it on the command line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromptItem {
    pub prompt: String,
    pub images: Vec<PathBuf>,
}

/// `--prompt S [--image F]...` repeated; images are grouped with the preceding prompt by their
/// position on the command line (`ArgMatches::indices_of`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromptInputs {
    pub items: Vec<PromptItem>,
}

impl FromArgMatches for PromptInputs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let prompts: Vec<(usize, String)> = match (m.indices_of("prompt"), m.get_many::<String>("prompt")) {
            (Some(i), Some(v)) => i.zip(v.cloned()).collect(),
            _ => Vec::new(),
        };
        let images: Vec<(usize, PathBuf)> = match (m.indices_of("image"), m.get_many::<PathBuf>("image")) {
            (Some(i), Some(v)) => i.zip(v.cloned()).collect(),
            _ => Vec::new(),
        };
        let mut items: Vec<PromptItem> = prompts.iter().map(|(_, p)| PromptItem { prompt: p.clone(), images: Vec::new() }).collect();
        for (at, img) in images {
            let Some(owner) = prompts.iter().rposition(|(pi, _)| *pi < at) else {
                return Err(clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, "--image must follow the --prompt it belongs to\n"));
            };
            items[owner].images.push(img);
        }
        Ok(PromptInputs { items })
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for PromptInputs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.arg(Arg::new("prompt").long("prompt").value_name("TEXT").action(ArgAction::Append).required(true).help(
            "Prompt text (literal `[IMG]<image>…[/IMG]` placeholders or `[<IMG_PLH>]`); repeat for a batch",
        ))
        .arg(
            Arg::new("image")
                .long("image")
                .value_name("FILE")
                .action(ArgAction::Append)
                .value_parser(clap::value_parser!(PathBuf))
                .help("Image for the preceding --prompt (JPEG/PNG, or a .safetensors pixel tensor [n,3,224,224])"),
        )
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub inputs: PromptInputs,
    /// Beams (1 = greedy).
    #[arg(long, default_value_t = 5)]
    pub num_beams: usize,
    #[arg(long, default_value_t = 50)]
    pub max_new_tokens: usize,
    /// Minimum tracked length (dummy BOS included) before EOS is allowed.
    #[arg(long, default_value_t = 1)]
    pub min_length: usize,
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub length_penalty: f64,
    /// Constrain outputs to these answers followed by EOS, comma-separated (VizWiz: `yes.,no.`).
    #[arg(long, value_delimiter = ',')]
    pub allowed: Option<Vec<String>>,
    /// Sample (num_beams 1) with this temperature instead of greedy decoding.
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Top-p for sampling.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Seed for sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Loads images for one prompt as a (n, 3, 224, 224) f32 tensor: a `.safetensors` file holds a
/// pixel tensor (its only tensor, or `pixel_values`), anything else is decoded and preprocessed
/// (Pillow bicubic resize, CLIP normalisation).
pub fn load_images(emu: &Emu, paths: &[PathBuf]) -> Result<Option<Tensor>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let mut all = Vec::new();
    for p in paths {
        all.push(load_image(emu, p).with_context(|| format!("{}: image", p.display()))?);
    }
    Ok(Some(Tensor::cat(&all, 0)?))
}

fn load_image(emu: &Emu, path: &Path) -> Result<Tensor> {
    let size = emu.cfg.vision.image_size;
    let t = if path.extension().is_some_and(|e| e == "safetensors") {
        let mut tensors = candle_core::safetensors::load(path, &Device::Cpu)?;
        let t = match tensors.remove("pixel_values") {
            Some(t) => t,
            None if tensors.len() == 1 => tensors.into_values().next().context("empty file")?,
            None => bail!("expected one tensor or `pixel_values`"),
        };
        t.to_dtype(DType::F32)?
    } else {
        emu::pixels::load_pixels(path, size, emu.cfg.vision.image_mean, emu.cfg.vision.image_std, &Device::Cpu)?
    };
    let t = if t.rank() == 3 { t.unsqueeze(0)? } else { t };
    let dims = t.dims().to_vec();
    if dims.len() != 4 || dims[1] != 3 || dims[2] != size || dims[3] != size {
        bail!("pixel tensor has shape {dims:?}, expected [n, 3, {size}, {size}]");
    }
    Ok(t)
}

/// Validated generation settings from the flags.
pub fn generation_config(a: &Args) -> Result<GenerationConfig> {
    let cfg = GenerationConfig {
        num_beams: a.num_beams,
        max_new_tokens: a.max_new_tokens,
        min_length: a.min_length,
        length_penalty: a.length_penalty,
        sampling: a.temperature.map(|temperature| Sampling { temperature, top_p: a.top_p, seed: a.seed }),
        ..GenerationConfig::default()
    };
    cfg.validate()?;
    Ok(cfg)
}

pub fn run(args: Args) -> Result<()> {
    let cfg = generation_config(&args)?;
    let emu = args.model.load()?;
    let prompts: Vec<String> =
        args.inputs.items.iter().map(|i| decode::emu_lm::expand_image_marker(&i.prompt, emu.cfg.n_causal)).collect();
    let images: Vec<PathBuf> = args.inputs.items.iter().flat_map(|i| i.images.clone()).collect();
    let pixels = load_images(&emu, &images)?;
    let trie = args.allowed.as_ref().map(|answers| {
        let enc: Vec<Vec<u32>> = answers.iter().map(|a| emu.tokenizer().encode_with(a, false)).collect();
        TokenTrie::answers(&enc, cfg.eos_token_id)
    });
    let mut session = EmuSession::from_prompts(&emu, &prompts, pixels.as_ref())?;
    let out = decode::generate(&mut session, &cfg, trie.as_ref())?;
    let results: Vec<_> = out
        .iter()
        .map(|g| json!({"ids": g.ids, "text": emu.tokenizer().decode(&g.ids), "score": g.score}))
        .collect();
    println!("{}", json!({ "results": results }));
    Ok(())
}
