//! `emu-eval generate`: one left-padded batch of prompts (each with its images), greedy / beam /
//! sampling / constrained decoding; prints `{"results":[{"ids","text","score"}]}`. The batch is
//! `--prompt S [--image F]…` repeated, or `--stage FILE` repeated (a stage object as `prompt
//! --json` prints it, video frames included).
use std::path::PathBuf;

use anyhow::Result;
use clap::{Arg, ArgAction, ArgMatches, FromArgMatches};
use serde_json::json;

use super::stage::{media_tensor, StageInput};
use crate::cli::flags::EmuFlags;
use models::decode::emu_lm::EmuSession;
use models::decode::{self, GenerationConfig, Sampling, TokenTrie};

/// One `--prompt` with the `--image`s that follow it on the command line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromptItem {
    pub prompt: String,
    pub images: Vec<PathBuf>,
}

/// `--prompt S [--image F]...` repeated; images are grouped with the preceding prompt by their
/// position on the command line (`ArgMatches::indices_of`). Or `--stage FILE` repeated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromptInputs {
    pub items: Vec<PromptItem>,
    /// Stage files (`-`: stdin), one prompt each.
    pub stages: Vec<PathBuf>,
}

impl FromArgMatches for PromptInputs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let prompts: Vec<(usize, String)> =
            match (m.indices_of("prompt"), m.get_many::<String>("prompt")) {
                (Some(i), Some(v)) => i.zip(v.cloned()).collect(),
                _ => Vec::new(),
            };
        let images: Vec<(usize, PathBuf)> =
            match (m.indices_of("image"), m.get_many::<PathBuf>("image")) {
                (Some(i), Some(v)) => i.zip(v.cloned()).collect(),
                _ => Vec::new(),
            };
        let mut items: Vec<PromptItem> = prompts
            .iter()
            .map(|(_, p)| PromptItem { prompt: p.clone(), images: Vec::new() })
            .collect();
        for (at, img) in images {
            let Some(owner) = prompts.iter().rposition(|(pi, _)| *pi < at) else {
                return Err(clap::Error::raw(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--image must follow the --prompt it belongs to\n",
                ));
            };
            items[owner].images.push(img);
        }
        let stages =
            m.get_many::<PathBuf>("stage").map(|v| v.cloned().collect()).unwrap_or_default();
        Ok(PromptInputs { items, stages })
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for PromptInputs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.arg(Arg::new("prompt").long("prompt").value_name("TEXT").action(ArgAction::Append).help(
            "Prompt text (literal `[IMG]<image>…[/IMG]` placeholders or `[<IMG_PLH>]`); repeat for a batch",
        ))
        .arg(
            Arg::new("stage")
                .long("stage")
                .value_name("FILE")
                .action(ArgAction::Append)
                .value_parser(clap::value_parser!(PathBuf))
                .conflicts_with_all(["prompt", "image"])
                .help("A stage object as `prompt --json` prints it (text, images, video frames); `-`: stdin; repeat for a batch"),
        )
        .group(clap::ArgGroup::new("prompts").args(["prompt", "stage"]).multiple(true).required(true))
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
    pub model: EmuFlags,
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
    #[command(flatten)]
    pub format: crate::cli::flags::CompactFlag,
}

/// Validated generation settings from the flags.
pub fn generation_config(a: &Args) -> Result<GenerationConfig> {
    let cfg = GenerationConfig {
        num_beams: a.num_beams,
        max_new_tokens: a.max_new_tokens,
        min_length: a.min_length,
        length_penalty: a.length_penalty,
        sampling: a.temperature.map(|temperature| Sampling {
            temperature,
            top_p: a.top_p,
            seed: a.seed,
        }),
        ..GenerationConfig::default()
    };
    cfg.validate()?;
    Ok(cfg)
}

pub fn run(args: Args) -> Result<()> {
    let cfg = generation_config(&args)?;
    let stages =
        args.inputs.stages.iter().map(|p| StageInput::read(p)).collect::<Result<Vec<_>>>()?;
    let images: Vec<PathBuf> = args
        .inputs
        .items
        .iter()
        .flat_map(|i| i.images.clone())
        .chain(stages.iter().flat_map(StageInput::image_files))
        .collect();
    let model_cfg = args.model.preflight(&images)?;
    cfg.check_fits(1, model_cfg.llama.max_position_embeddings)?;
    // The answer constraint needs only the tokenizer: checked before the weights are loaded.
    let trie = match &args.allowed {
        Some(answers) => {
            let tok = args.model.tokenizer()?;
            let enc: Vec<Vec<u32>> = answers.iter().map(|a| tok.encode_with(a, false)).collect();
            let trie = TokenTrie::answers(&enc, cfg.eos_token_id);
            cfg.check_trie(&trie)?;
            Some(trie)
        }
        None => None,
    };
    let emu = args.model.load()?;
    let texts = args.inputs.items.iter().map(|i| &i.prompt).chain(stages.iter().map(|s| &s.text));
    let prompts: Vec<String> =
        texts.map(|t| decode::emu_lm::expand_image_marker(t, emu.cfg.n_causal)).collect();
    let longest = prompts.iter().map(|p| emu.tokenizer().encode(p).len()).max().unwrap_or(0);
    cfg.check_fits(longest, emu.cfg.llama.max_position_embeddings)?;
    let pixels = if stages.is_empty() {
        crate::pixels::load_images(&emu, &images)?
    } else {
        let media: Vec<_> = stages.iter().flat_map(|s| s.media.iter().cloned()).collect();
        media_tensor(&emu, &media)?
    };
    let mut session = EmuSession::from_prompts(&emu, &prompts, pixels.as_ref())?;
    let out = models::pool::on_workers(|| decode::generate(&mut session, &cfg, trie.as_ref()))?;
    if let Some((i, s)) =
        out.iter().enumerate().find_map(|(i, g)| g.score.filter(|s| !s.is_finite()).map(|s| (i, s)))
    {
        anyhow::bail!("beam score of result {i} is {s} (from the model's log-probabilities)");
    }
    let results: Vec<_> = out
        .iter()
        .map(|g| json!({"ids": g.ids, "text": emu.tokenizer().decode(&g.ids), "score": g.score}))
        .collect();
    super::metric::print_json(&json!({ "results": results }), args.format.compact)
}
