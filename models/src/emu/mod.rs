//! The Emu model in candle (EVA-CLIP vision tower, causal transformer, multimodal LLaMA).
//!
//! Emu1, "Generative Pretraining in Multimodality" (Sun et al., 2023, BAAI); reference
//! implementation: the official `Emu` class (EVA-CLIP `EVAVisionTransformer`, HF T5 decoder stack
//! as "causal former", HF `LlamaForCausalLM`). Normative description: `shared/spec/emu-model.md`.
//!
//! ```text
//! pixels (n,3,224,224) ─ visual ─ ln_visual ─ cformer ─ (n, n_causal, hidden)
//! input_ids (b,L) ─ embed_tokens, <image> rows replaced in order ─ LLaMA ─ norm ─ lm_head / stu_regress_head
//! ```
pub mod builtin;
pub mod cformer;
pub mod config;
pub mod gemv;
mod kv;
pub mod linear;
pub mod llm;
pub mod load;
mod norm;
pub mod tokenizer;
pub mod vision;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{LayerNorm, VarBuilder};

pub use config::EmuConfig;
pub use load::LoadReport;
pub use tokenizer::EmuTokenizer;

use cformer::CausalFormer;
use llm::{LayerCache, Llama};
use vision::{EvaVisionTransformer, VisionTrace};

/// The whole model plus its tokenizer.
pub struct Emu {
    pub cfg: EmuConfig,
    visual: EvaVisionTransformer,
    ln_visual: LayerNorm,
    cformer: CausalFormer,
    lm: Llama,
    tokenizer: EmuTokenizer,
    dtype: DType,
    device: Device,
    /// Checkpoint path, tolerated unused keys and merged LoRA count.
    pub load_report: LoadReport,
}

/// KV cache of the language model.
#[derive(Debug, Clone)]
pub struct KvCache {
    inner: LayerCache,
}

impl KvCache {
    pub fn new(emu: &Emu) -> Self {
        Self { inner: LayerCache::new(emu.lm.num_layers()) }
    }
    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.inner.len()
    }
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
    /// Reorders / expands batch rows for beams: new row i = old row `rows[i]` (u32/i64 tensor).
    pub fn index_select(&mut self, rows: &Tensor) -> Result<()> {
        self.inner.index_select(rows)
    }
}

/// Every intermediate of one image + prompt forward (what `emu-eval inspect` writes).
#[derive(Debug, Clone)]
pub struct ForwardTrace {
    pub vision_patch_embed: Option<Tensor>,
    /// (layers, n·tokens, width) stacked over blocks, images concatenated.
    pub vision_blocks: Option<Tensor>,
    pub vision_features: Option<Tensor>,
    pub ln_visual: Option<Tensor>,
    /// T5 `hidden_states` stacked: (layers+1, n, n_causal, d_model).
    pub cformer_hidden_states: Option<Tensor>,
    pub cformer_hidden: Option<Tensor>,
    pub cformer_out: Option<Tensor>,
    pub inputs_embeds: Tensor,
    /// (layers+1, b, L, hidden): embeddings, each layer, the last after the final norm.
    pub hidden_states_all: Tensor,
    pub final_hidden: Tensor,
    pub logits: Tensor,
}

/// Files of a model directory.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub config: PathBuf,
    pub weights: PathBuf,
    pub tokenizer: PathBuf,
}

impl ModelFiles {
    /// `config.json`, `tokenizer.json` and the weights (`--weights` overrides) of `model_dir`.
    pub fn resolve(model_dir: &Path, weights: Option<&Path>) -> crate::Result<Self> {
        let weights = match weights {
            Some(w) => w.to_path_buf(),
            None => load::find_weights(model_dir)?,
        };
        Ok(Self {
            config: model_dir.join("config.json"),
            weights,
            tokenizer: model_dir.join("tokenizer.json"),
        })
    }
}

impl Emu {
    /// Loads `model_dir/config.json`, `model_dir/tokenizer.json` and the weights (`weights` or
    /// the directory's checkpoint, safetensors preferred).
    pub fn load(
        model_dir: &Path,
        weights: Option<&Path>,
        dtype: DType,
        device: &Device,
    ) -> crate::Result<Emu> {
        let files = ModelFiles::resolve(model_dir, weights)?;
        let cfg = EmuConfig::from_file(&files.config)?;
        let tokenizer = EmuTokenizer::from_file(&files.tokenizer, cfg.instruct)?;
        if tokenizer.vocab_size() != cfg.llama.vocab_size {
            bail!(
                "{}: llama.vocab_size: {} does not match the tokenizer's {} (instruct: {})",
                files.config.display(),
                cfg.llama.vocab_size,
                tokenizer.vocab_size(),
                cfg.instruct
            );
        }
        Self::load_with(cfg, &files.weights, tokenizer, dtype, device)
    }

    /// Builds the model from a configuration, a checkpoint file and a tokenizer.
    pub fn load_with(
        cfg: EmuConfig,
        weights: &Path,
        tokenizer: EmuTokenizer,
        dtype: DType,
        device: &Device,
    ) -> crate::Result<Emu> {
        let ckpt = std::sync::Arc::new(load::Checkpoint::open(weights, cfg.lora.clone())?);
        let backend = SharedCheckpoint(ckpt.clone());
        let origin = ckpt.origin().to_string();
        let mut emu = Self::from_backend(cfg, Box::new(backend), tokenizer, dtype, device)
            .map_err(|e| e.context(format_args!("loading {origin}")))?;
        emu.load_report = ckpt.finish()?;
        Ok(emu)
    }

    /// Builds the model from any weight source whose names follow the checkpoint keys.
    pub fn from_backend(
        cfg: EmuConfig,
        backend: Box<dyn SimpleBackend>,
        tokenizer: EmuTokenizer,
        dtype: DType,
        device: &Device,
    ) -> crate::Result<Emu> {
        let vb = VarBuilder::from_backend(backend, dtype, device.clone());
        let build = || -> Result<_> {
            let visual = EvaVisionTransformer::new(&cfg.vision, vb.pp("visual"))?;
            let ln_visual =
                vision::ln_visual(cfg.vision.width, cfg.ln_visual_eps, vb.pp("ln_visual"))?;
            let cformer = CausalFormer::new(&cfg.causal_former, cfg.n_causal, vb.pp("cformer"))?;
            let lm = Llama::new(&cfg.llama, vb.pp("decoder").pp("lm"))?;
            Ok((visual, ln_visual, cformer, lm))
        };
        let (visual, ln_visual, cformer, lm) = build()?;
        let load_report = LoadReport::default();
        Ok(Emu {
            cfg,
            visual,
            ln_visual,
            cformer,
            lm,
            tokenizer,
            dtype,
            device: device.clone(),
            load_report,
        })
    }

    pub fn tokenizer(&self) -> &EmuTokenizer {
        &self.tokenizer
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// pixels (n, 3, 224, 224) -> (n, n_causal, hidden) image embeddings for the LLM.
    pub fn encode_images(&self, pixels: &Tensor) -> Result<Tensor> {
        let feats = self.visual.forward_features(pixels)?; // (n, 257, width)
        let feats = self.ln_visual.forward(&feats)?;
        self.cformer.forward(&feats)
    }

    /// pixels (n, 3, 224, 224) -> `ln_visual` output (n, 257, width): the tokens the causal former
    /// reads (RICES pools its feature from them).
    pub fn visual_tokens(&self, pixels: &Tensor) -> Result<Tensor> {
        self.ln_visual.forward(&self.visual.forward_features(pixels)?)
    }

    /// input_ids (b, L) -> (b, L, hidden): the token embeddings alone, with no `<image>`
    /// splicing. Decoding steps embed generated ids this way, as HF `generate` does: a generated
    /// `<image>` id is an ordinary token there.
    pub fn embed_tokens(&self, input_ids: &Tensor) -> Result<Tensor> {
        self.lm.embed_tokens(input_ids)
    }

    /// input_ids (b, L) -> (b, L, hidden); `<image>` rows replaced in row-major order by the rows
    /// of image_embeds (n, n_causal, hidden) flattened to (n·n_causal, hidden).
    pub fn embed(&self, input_ids: &Tensor, image_embeds: Option<&Tensor>) -> Result<Tensor> {
        let (b, l) = input_ids.dims2()?;
        let text = self.lm.embed_tokens(input_ids)?; // (b, L, hidden)
        let ids = input_ids
            .to_dtype(DType::I64)?
            .to_device(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<i64>()?;
        let n_slots = ids.iter().filter(|&&i| i == tokenizer::IMAGE as i64).count();
        let n_rows = match image_embeds {
            Some(e) => e.elem_count() / self.cfg.llama.hidden_size,
            None => 0,
        };
        if n_slots != n_rows {
            candle_core::bail!("{n_slots} <image> tokens but {n_rows} image embedding rows");
        }
        let Some(image_embeds) = image_embeds else { return Ok(text) };
        let h = self.cfg.llama.hidden_size;
        let img = image_embeds.reshape((n_rows, h))?.to_dtype(text.dtype())?;
        let all = Tensor::cat(&[&text.reshape((b * l, h))?, &img], 0)?; // (b·L + rows, hidden)
        let mut k = 0u32;
        let index: Vec<u32> = ids
            .iter()
            .enumerate()
            .map(|(p, &id)| {
                if id == tokenizer::IMAGE as i64 {
                    k += 1;
                    (b * l) as u32 + k - 1
                } else {
                    p as u32
                }
            })
            .collect();
        let index = Tensor::from_vec(index, b * l, all.device())?;
        all.index_select(&index, 0)?.reshape((b, l, h))
    }

    /// embeds (b, t, h), position_ids (b, t) i64, attention_mask (b, past+t) (1 keep, 0 pad) ->
    /// final-normed hidden states (b, t, h); appends keys/values to `cache`.
    pub fn forward_embeds(
        &self,
        embeds: &Tensor,
        position_ids: &Tensor,
        attention_mask: &Tensor,
        cache: &mut KvCache,
    ) -> Result<Tensor> {
        self.lm.forward(embeds, position_ids, attention_mask, &mut cache.inner, None)
    }

    /// hidden (b, t, h) -> logits (b, t, vocab), f32.
    pub fn lm_head(&self, hidden: &Tensor) -> Result<Tensor> {
        self.lm.lm_head(hidden)
    }

    /// Next-token logits of generation: hidden (b, 1, h) -> (b, 1, vocab), f32, each row's bits
    /// independent of the batch (see [`llm::Llama::next_token_logits`]).
    pub fn next_token_logits(&self, hidden: &Tensor) -> Result<Tensor> {
        self.lm.next_token_logits(hidden)
    }

    /// `stu_regress_head` on final-normed hidden states.
    pub fn regress_head(&self, hidden: &Tensor) -> Result<Tensor> {
        self.lm.regress_head(hidden)
    }

    /// One full forward with every intermediate: pixels (n, 3, H, W) or none, input_ids (b, L),
    /// positions 0..L−1, all-ones mask unless `attention_mask` is given.
    pub fn forward_all(
        &self,
        pixels: Option<&Tensor>,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<ForwardTrace> {
        let mut tr = ForwardTrace {
            vision_patch_embed: None,
            vision_blocks: None,
            vision_features: None,
            ln_visual: None,
            cformer_hidden_states: None,
            cformer_hidden: None,
            cformer_out: None,
            inputs_embeds: Tensor::zeros(1, DType::F32, &self.device)?,
            hidden_states_all: Tensor::zeros(1, DType::F32, &self.device)?,
            final_hidden: Tensor::zeros(1, DType::F32, &self.device)?,
            logits: Tensor::zeros(1, DType::F32, &self.device)?,
        };
        let image_embeds = match pixels {
            Some(px) => {
                let mut vt = VisionTrace {
                    patch_embed: Tensor::zeros(1, DType::F32, &self.device)?,
                    blocks: vec![],
                };
                let feats = self.visual.forward_traced(px, Some(&mut vt))?;
                let lnv = self.ln_visual.forward(&feats)?;
                let cf = self.cformer.forward_all(&lnv)?;
                let blocks: Vec<Tensor> =
                    vt.blocks.iter().map(|t| t.reshape(((), t.dim(2)?))).collect::<Result<_>>()?; // (n·tokens, width)
                tr.vision_patch_embed = Some(vt.patch_embed);
                tr.vision_blocks = Some(Tensor::stack(&blocks, 0)?);
                tr.vision_features = Some(feats);
                tr.ln_visual = Some(lnv);
                tr.cformer_hidden_states = Some(Tensor::stack(&cf.hidden_states, 0)?);
                tr.cformer_hidden = Some(cf.hidden);
                tr.cformer_out = Some(cf.out.clone());
                Some(cf.out)
            }
            None => None,
        };
        let embeds = self.embed(input_ids, image_embeds.as_ref())?;
        let (b, l) = input_ids.dims2()?;
        let positions =
            Tensor::arange(0i64, l as i64, &self.device)?.unsqueeze(0)?.repeat((b, 1))?;
        let mask = match attention_mask {
            Some(m) => m.clone(),
            None => Tensor::ones((b, l), DType::U8, &self.device)?,
        };
        let mut cache = KvCache::new(self);
        let mut all = Vec::new();
        let hidden =
            self.lm.forward(&embeds, &positions, &mask, &mut cache.inner, Some(&mut all))?;
        tr.logits = self.lm_head(&hidden)?;
        tr.inputs_embeds = embeds;
        tr.hidden_states_all = Tensor::stack(&all, 0)?;
        tr.final_hidden = hidden;
        Ok(tr)
    }
}

/// `SimpleBackend` over a shared checkpoint, so usage can be checked after building.
struct SharedCheckpoint(std::sync::Arc<load::Checkpoint>);

impl SimpleBackend for SharedCheckpoint {
    fn get(
        &self,
        s: candle_core::Shape,
        name: &str,
        h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> Result<Tensor> {
        self.0.get(s, name, h, dtype, dev)
    }
    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        self.0.get_unchecked(name, dtype, dev)
    }
    fn contains_tensor(&self, name: &str) -> bool {
        self.0.contains_tensor(name)
    }
}
