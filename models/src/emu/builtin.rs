//! The built-in tiny Emu: a seeded, randomly initialised model with the official key names and a
//! synthetic 32000-piece sentencepiece-style tokenizer, built in memory. It lets every command run
//! out of the box; its outputs are meaningless as scores.
use crate::rng::{fnv1a, SplitMix64};
use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use serde_json::{json, Map, Value};

use super::config::{
    clip_mean, clip_std, CausalFormerConfig, EmuConfig, LlamaConfig, VisionConfig,
};
use super::{Emu, EmuTokenizer};

/// Name recorded as the model of runs that use the built-in model.
pub const NAME: &str = "builtin-tiny";

/// Standard deviation-like scale of the random weights (uniform in ±`SCALE`·√3).
const SCALE: f32 = 0.02;

/// Tiny shapes (those of `shared/fixtures/emu-tiny`): 224 px, 3 vision blocks of width 64,
/// a 2-layer causal former, a 2-layer LLaMA of width 64, 4 `<image>` slots.
pub fn tiny_config(instruct: bool) -> EmuConfig {
    let (mean, std) = (clip_mean(), clip_std());
    EmuConfig {
        vision: VisionConfig {
            image_size: 224,
            patch_size: 14,
            width: 64,
            layers: 3,
            head_width: 16,
            mlp_ratio: 4.3637,
            qkv_bias: true,
            layer_norm_eps: 1e-6,
            image_mean: mean,
            image_std: std,
        },
        ln_visual_eps: 1e-6,
        causal_former: CausalFormerConfig {
            d_model: 64,
            d_kv: 16,
            num_heads: 4,
            d_ff: 128,
            num_decoder_layers: 2,
            relative_attention_num_buckets: 32,
            relative_attention_max_distance: 128,
            layer_norm_epsilon: 1e-6,
            encoder_width: 64,
            vocab_size_unused_embedding: Some(128),
            output_dim: 64,
        },
        llama: LlamaConfig {
            hidden_size: 64,
            intermediate_size: 176,
            num_attention_heads: 4,
            num_hidden_layers: 2,
            rms_norm_eps: 1e-6,
            rope_theta: 10000.0,
            max_position_embeddings: 2048,
            vocab_size: if instruct { 32006 } else { 32004 },
        },
        n_causal: 4,
        embed_dim: Some(32),
        instruct,
        lora: None,
    }
}

/// The built-in model with weights drawn from `seed`; `instruct` gives Emu-I's vocabulary.
pub fn tiny(seed: u64, instruct: bool, dtype: DType, device: &Device) -> crate::Result<Emu> {
    random(tiny_config(instruct), seed, dtype, device)
}

/// A random model of any configuration (benchmarks: real shapes without weights).
pub fn random(cfg: EmuConfig, seed: u64, dtype: DType, device: &Device) -> crate::Result<Emu> {
    cfg.validate().map_err(|m| crate::ModelError::Input(format!("{NAME}: {m}")))?;
    let tokenizer = tokenizer(cfg.instruct)?;
    Emu::from_backend(cfg, Box::new(RandomWeights { seed }), tokenizer, dtype, device)
}

/// The built-in model's tokenizer (Emu's special tokens over a synthetic 32000-piece BPE).
pub fn tokenizer(instruct: bool) -> crate::Result<EmuTokenizer> {
    Ok(EmuTokenizer::from_tokenizer(synthetic_bpe()?, instruct, NAME)?)
}

/// A stable fingerprint of the built-in model's weights (what a weights hash is for real files).
pub fn weights_hash(seed: u64, instruct: bool) -> String {
    format!("{NAME}:seed={seed}:instruct={instruct}:v1")
}

/// Deterministic weights: every tensor is drawn from SplitMix64 seeded by the run seed and the
/// FNV-1a hash of its name, so a tensor does not depend on the order it is requested in.
/// Rank-1 `*.weight` tensors are norm scales: 1 plus noise.
pub struct RandomWeights {
    pub seed: u64,
}

impl SimpleBackend for RandomWeights {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> Result<Tensor> {
        let mut rng = SplitMix64::new(self.seed ^ fnv1a(name));
        let half = SCALE * 3f32.sqrt();
        let offset = if s.rank() == 1 && name.ends_with(".weight") { 1.0 } else { 0.0 };
        let data: Vec<f32> = (0..s.elem_count())
            .map(|_| offset + (rng.uniform() as f32 * 2.0 - 1.0) * half)
            .collect();
        Tensor::from_vec(data, s, &Device::Cpu)?.to_dtype(dtype)?.to_device(dev)
    }
    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        candle_core::bail!("{NAME}: tensor {name} needs a shape")
    }
    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

/// A 32000-piece BPE in the LLaMA tokenizer's layout (`<unk>`, `<s>`, `</s>`, 256 byte pieces,
/// `▁` and printable ASCII, then pronounceable `▁`-words), no merges: text is encoded character
/// by character, generated ids decode to words.
fn synthetic_bpe() -> crate::Result<tokenizers::Tokenizer> {
    let mut vocab: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    vocab.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    vocab.push("▁".into());
    vocab.extend((0x21u8..0x7f).map(|c| (c as char).to_string()));
    let (cons, vows) = (b"bcdfghjklmnprstvwz", b"aeiou");
    let syllables: Vec<String> = cons
        .iter()
        .flat_map(|&c| vows.iter().map(move |&v| format!("{}{}", c as char, v as char)))
        .collect();
    let mut words = syllables.clone();
    for a in &syllables {
        words.extend(syllables.iter().map(|b| format!("{a}{b}")));
    }
    'fill: for a in &syllables {
        for b in &syllables {
            for c in &syllables {
                if vocab.len() + words.len() >= 32000 {
                    break 'fill;
                }
                words.push(format!("{a}{b}{c}"));
            }
        }
    }
    vocab.extend(words.into_iter().map(|w| format!("▁{w}")).take(32000 - vocab.len()));
    let vocab: Map<String, Value> =
        vocab.into_iter().enumerate().map(|(i, p)| (p, json!(i))).collect();
    let special = |id: u32, content: &str| json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true});
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}
        ]},
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}
        ]},
        "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "vocab": vocab, "merges": []}
    });
    spec.to_string()
        .parse::<tokenizers::Tokenizer>()
        .map_err(|e| crate::ModelError::Input(format!("{NAME}: tokenizer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_round_trips_text_and_has_llama_specials() {
        let t = EmuTokenizer::from_tokenizer(synthetic_bpe().unwrap(), false, NAME).unwrap();
        assert_eq!(t.vocab_size(), 32004);
        let ids = t.encode("yes. [IMG]<image>[/IMG] ünï");
        assert_eq!(ids[0], 1);
        assert!(ids.contains(&32001) && ids.contains(&32003) && ids.contains(&32002));
        assert_eq!(t.decode(&t.encode_with("a cat, 2 dogs.", false)), "a cat, 2 dogs.");
        assert_eq!(t.decode(&t.encode_with("ünï", false)), "ünï");
    }

    #[test]
    fn weights_are_seeded_and_order_independent() {
        let a = RandomWeights { seed: 3 };
        let s: Shape = (2, 3).into();
        let x = a
            .get(s.clone(), "x.weight", candle_nn::Init::Const(0.), DType::F32, &Device::Cpu)
            .unwrap();
        let y = a
            .get(s.clone(), "y.weight", candle_nn::Init::Const(0.), DType::F32, &Device::Cpu)
            .unwrap();
        let x2 =
            a.get(s, "x.weight", candle_nn::Init::Const(0.), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(x.to_vec2::<f32>().unwrap(), x2.to_vec2::<f32>().unwrap());
        assert_ne!(x.to_vec2::<f32>().unwrap(), y.to_vec2::<f32>().unwrap());
        let n = a
            .get(4.into(), "norm.weight", candle_nn::Init::Const(0.), DType::F32, &Device::Cpu)
            .unwrap();
        assert!(n.to_vec1::<f32>().unwrap().iter().all(|v| (v - 1.0).abs() < 0.05));
    }

    #[test]
    fn tiny_model_builds_and_embeds() {
        let emu = tiny(0, false, DType::F32, &Device::Cpu).unwrap();
        let px = Tensor::zeros((1, 3, 224, 224), DType::F32, &Device::Cpu).unwrap();
        let e = emu.encode_images(&px).unwrap();
        assert_eq!(e.dims(), &[1, 4, 64]);
    }
}
