//! Emu configuration: field names follow the official configs (`Emu-14B.json` → `vision_cfg`,
//! HF `t5-base` for the causal former, `llama_config/config.json`), laid out as in the fixture's
//! `config.json` (emu-model.md §1, fixtures/emu-tiny/config.json).
use std::path::Path;

use serde::{Deserialize, Serialize};

/// EVA-CLIP vision tower (`visual.*`, emu-model.md §1.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisionConfig {
    pub image_size: usize,
    pub patch_size: usize,
    pub width: usize,
    pub layers: usize,
    pub head_width: usize,
    pub mlp_ratio: f64,
    #[serde(default = "default_true")]
    pub qkv_bias: bool,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "clip_mean")]
    pub image_mean: [f64; 3],
    #[serde(default = "clip_std")]
    pub image_std: [f64; 3],
}

impl VisionConfig {
    pub fn num_heads(&self) -> usize {
        self.width / self.head_width
    }
    /// `int(width * mlp_ratio)` (Python truncation): 1408 × 4.3637 → 6144.
    pub fn mlp_hidden(&self) -> usize {
        (self.width as f64 * self.mlp_ratio) as usize
    }
    /// Patches per side (224 / 14 = 16).
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }
    /// CLS + patches (257).
    pub fn num_tokens(&self) -> usize {
        self.grid() * self.grid() + 1
    }
}

/// The causal former: HF T5 decoder stack fed with learned queries (emu-model.md §1.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CausalFormerConfig {
    pub d_model: usize,
    pub d_kv: usize,
    pub num_heads: usize,
    pub d_ff: usize,
    pub num_decoder_layers: usize,
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: usize,
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    /// Width of the visual features the cross-attention K/V read (= vision width).
    pub encoder_width: usize,
    /// Rows of the unused T5 token embedding kept in the checkpoint.
    #[serde(default)]
    pub vocab_size_unused_embedding: Option<usize>,
    /// Output width of `cformer.projection` (= LLaMA hidden size).
    pub output_dim: usize,
}

/// LLaMA decoder (`decoder.lm.*`, emu-model.md §1.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    pub vocab_size: usize,
}

impl LlamaConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// LoRA on the LLaMA attention projections (Emu-I, emu-model.md §2.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    pub r: usize,
    pub lora_alpha: f64,
}

impl LoraConfig {
    /// peft's `scaling = lora_alpha / r`.
    pub fn scaling(&self) -> f64 {
        self.lora_alpha / self.r as f64
    }
}

/// The whole model. Unknown fields of a `config.json` (descriptions, token tables) are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmuConfig {
    pub vision: VisionConfig,
    #[serde(default = "default_eps")]
    pub ln_visual_eps: f64,
    pub causal_former: CausalFormerConfig,
    pub llama: LlamaConfig,
    /// Number of learned causal query tokens (= `<image>` slots per image).
    pub n_causal: usize,
    /// Width of the unused CLIP head `visual.head`.
    #[serde(default)]
    pub embed_dim: Option<usize>,
    /// Emu-I: the LLaMA is wrapped in LoRA and the tokenizer has `[USER]`/`[ASSISTANT]`.
    #[serde(default)]
    pub instruct: bool,
    #[serde(default)]
    pub lora: Option<LoraConfig>,
}

/// A configuration value out of range or inconsistent with another (`field: problem`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(pub String);

impl From<String> for InvalidConfig {
    fn from(s: String) -> Self {
        InvalidConfig(s)
    }
}

impl From<&str> for InvalidConfig {
    fn from(s: &str) -> Self {
        InvalidConfig(s.to_owned())
    }
}

/// Errors of reading a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: {1}")]
    Json(String, serde_json::Error),
    /// A type or missing-field error with the field path (`vision.layers: invalid type: ...`).
    #[error("{0}: {1}: {2}")]
    Field(String, String, serde_json::Error),
    #[error("{0}: preset: unknown preset `{1}` (known: emu-14b, emu-i-14b)")]
    UnknownPreset(String, String),
    #[error("{0}: {1}")]
    Invalid(String, String),
}

impl EmuConfig {
    /// Real Emu (pretrained) 14B configuration (emu-model.md §0–§1).
    pub fn emu_14b() -> Self {
        EmuConfig {
            vision: VisionConfig {
                image_size: 224,
                patch_size: 14,
                width: 1408,
                layers: 40,
                head_width: 88,
                mlp_ratio: 4.3637,
                qkv_bias: true,
                layer_norm_eps: 1e-6,
                image_mean: clip_mean(),
                image_std: clip_std(),
            },
            ln_visual_eps: 1e-6,
            causal_former: CausalFormerConfig {
                d_model: 768,
                d_kv: 64,
                num_heads: 12,
                d_ff: 3072,
                num_decoder_layers: 12,
                relative_attention_num_buckets: 32,
                relative_attention_max_distance: 128,
                layer_norm_epsilon: 1e-6,
                encoder_width: 1408,
                vocab_size_unused_embedding: Some(32128),
                output_dim: 5120,
            },
            llama: LlamaConfig {
                hidden_size: 5120,
                intermediate_size: 13824,
                num_attention_heads: 40,
                num_hidden_layers: 40,
                rms_norm_eps: 1e-6,
                rope_theta: 10000.0,
                max_position_embeddings: 2048,
                vocab_size: 32004,
            },
            n_causal: 32,
            embed_dim: Some(1024),
            instruct: false,
            lora: None,
        }
    }

    /// Real Emu-I 14B: vocabulary 32006, LoRA r 16, α 16 (emu-model.md §2.4).
    pub fn emu_i_14b() -> Self {
        let mut cfg = Self::emu_14b();
        cfg.llama.vocab_size = 32006;
        cfg.instruct = true;
        cfg.lora = Some(LoraConfig { r: 16, lora_alpha: 16.0 });
        cfg
    }

    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "emu-14b" => Some(Self::emu_14b()),
            "emu-i-14b" => Some(Self::emu_i_14b()),
            _ => None,
        }
    }

    /// Parses a `config.json`: either a full configuration or `{"preset": "emu-14b"}`.
    pub fn from_json_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ConfigError::Json(origin.to_string(), e))?;
        let cfg = match value.get("preset").and_then(|p| p.as_str()) {
            Some(name) => Self::preset(name)
                .ok_or_else(|| ConfigError::UnknownPreset(origin.to_string(), name.to_string()))?,
            None => serde_path_to_error::deserialize(value).map_err(|e| {
                let path = e.path().to_string();
                ConfigError::Field(origin.to_string(), path, e.into_inner())
            })?,
        };
        cfg.validate().map_err(|m| ConfigError::Invalid(origin.to_string(), m.0))?;
        Ok(cfg)
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io(origin.clone(), e))?;
        Self::from_json_str(&text, &origin)
    }

    /// Ranges of single values, then divisibility and wiring constraints between the parts.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        self.validate_ranges()?;
        let v = &self.vision;
        if v.head_width == 0 || !v.width.is_multiple_of(v.head_width) {
            return Err(format!(
                "vision.width: {} is not a multiple of head_width {}",
                v.width, v.head_width
            )
            .into());
        }
        if v.patch_size == 0 || !v.image_size.is_multiple_of(v.patch_size) {
            return Err(format!(
                "vision.image_size: {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            )
            .into());
        }
        let c = &self.causal_former;
        if c.encoder_width != v.width {
            return Err(format!(
                "causal_former.encoder_width: {} differs from vision.width {}",
                c.encoder_width, v.width
            )
            .into());
        }
        let l = &self.llama;
        if c.output_dim != l.hidden_size {
            return Err(format!(
                "causal_former.output_dim: {} differs from llama.hidden_size {}",
                c.output_dim, l.hidden_size
            )
            .into());
        }
        if l.num_attention_heads == 0
            || !l.hidden_size.is_multiple_of(l.num_attention_heads)
            || !l.head_dim().is_multiple_of(2)
        {
            return Err(format!(
                "llama.num_attention_heads: {} does not give an even head_dim of {}",
                l.num_attention_heads, l.hidden_size
            )
            .into());
        }
        if self.n_causal == 0 {
            return Err("n_causal: must be positive".into());
        }
        Ok(())
    }
}

impl EmuConfig {
    /// Sizes and layer counts positive; eps, std and rope_theta finite and positive; mean finite.
    fn validate_ranges(&self) -> Result<(), InvalidConfig> {
        let (v, c, l) = (&self.vision, &self.causal_former, &self.llama);
        let sizes = [
            ("vision.image_size", v.image_size),
            ("vision.patch_size", v.patch_size),
            ("vision.width", v.width),
            ("vision.layers", v.layers),
            ("vision.head_width", v.head_width),
            ("causal_former.d_model", c.d_model),
            ("causal_former.d_kv", c.d_kv),
            ("causal_former.num_heads", c.num_heads),
            ("causal_former.d_ff", c.d_ff),
            ("causal_former.num_decoder_layers", c.num_decoder_layers),
            ("causal_former.relative_attention_num_buckets", c.relative_attention_num_buckets),
            ("llama.hidden_size", l.hidden_size),
            ("llama.intermediate_size", l.intermediate_size),
            ("llama.num_hidden_layers", l.num_hidden_layers),
            ("llama.max_position_embeddings", l.max_position_embeddings),
            ("llama.vocab_size", l.vocab_size),
        ];
        for (name, x) in sizes {
            if x == 0 {
                return Err(format!("{name}: must be positive").into());
            }
        }
        let positive = [
            ("vision.mlp_ratio", v.mlp_ratio),
            ("vision.layer_norm_eps", v.layer_norm_eps),
            ("vision.image_std[0]", v.image_std[0]),
            ("vision.image_std[1]", v.image_std[1]),
            ("vision.image_std[2]", v.image_std[2]),
            ("ln_visual_eps", self.ln_visual_eps),
            ("causal_former.layer_norm_epsilon", c.layer_norm_epsilon),
            ("llama.rms_norm_eps", l.rms_norm_eps),
            ("llama.rope_theta", l.rope_theta),
        ];
        for (name, x) in positive {
            if !(x.is_finite() && x > 0.0) {
                return Err(format!("{name}: {x} is not a finite positive number").into());
            }
        }
        if let Some(i) = v.image_mean.iter().position(|m| !m.is_finite()) {
            return Err(format!("vision.image_mean[{i}]: {} is not finite", v.image_mean[i]).into());
        }
        if let Some(lora) = &self.lora {
            if lora.r == 0 || !lora.lora_alpha.is_finite() {
                return Err(format!(
                    "lora: r {} must be positive and lora_alpha {} finite",
                    lora.r, lora.lora_alpha
                )
                .into());
            }
        }
        if self.n_causal >= l.max_position_embeddings {
            return Err(InvalidConfig(format!(
                "n_causal: {} image slots do not fit llama.max_position_embeddings {}",
                self.n_causal, l.max_position_embeddings
            )));
        }
        Ok(())
    }
}

fn default_true() -> bool {
    true
}
fn default_eps() -> f64 {
    1e-6
}
fn default_buckets() -> usize {
    32
}
fn default_max_distance() -> usize {
    128
}
fn default_rope_theta() -> f64 {
    10000.0
}
fn default_max_pos() -> usize {
    2048
}
/// OpenAI CLIP normalisation mean (RGB), the vision tower's input normalisation.
pub fn clip_mean() -> [f64; 3] {
    [0.48145466, 0.4578275, 0.40821073]
}
/// OpenAI CLIP normalisation std (RGB).
pub fn clip_std() -> [f64; 3] {
    [0.26862954, 0.26130258, 0.27577711]
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/emu-tiny/config.json");

    #[test]
    fn fixture_config_parses_as_is() {
        let cfg = EmuConfig::from_file(Path::new(FIXTURE)).unwrap();
        assert_eq!(cfg.vision.mlp_hidden(), 279);
        assert_eq!(cfg.vision.num_heads(), 4);
        assert_eq!(cfg.vision.num_tokens(), 257);
        assert_eq!(cfg.n_causal, 4);
        assert_eq!(cfg.llama.head_dim(), 16);
        assert_eq!(cfg.llama.vocab_size, 32004);
        assert!(!cfg.instruct);
    }

    #[test]
    fn presets_have_official_sizes() {
        let cfg = EmuConfig::emu_14b();
        assert_eq!(cfg.vision.mlp_hidden(), 6144);
        assert_eq!(cfg.vision.num_heads(), 16);
        assert_eq!(cfg.llama.head_dim(), 128);
        let i = EmuConfig::from_json_str(r#"{"preset": "emu-i-14b"}"#, "x").unwrap();
        assert_eq!(i.llama.vocab_size, 32006);
        assert_eq!(i.lora.as_ref().unwrap().scaling(), 1.0);
        assert!(EmuConfig::from_json_str(r#"{"preset": "emu-7b"}"#, "x").is_err());
    }

    /// The fixture's JSON with one field replaced.
    fn patched(path: &[&str], v: serde_json::Value) -> String {
        let mut j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
        let mut at = &mut j;
        for k in &path[..path.len() - 1] {
            at = &mut at[*k];
        }
        at[path[path.len() - 1]] = v;
        j.to_string()
    }

    #[test]
    fn type_errors_name_the_field_path() {
        let e =
            EmuConfig::from_json_str(&patched(&["vision", "layers"], "3".into()), "config.json")
                .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"config.json: vision.layers: invalid type: string "3", expected usize"#
        );
        let e = EmuConfig::from_json_str(&patched(&["llama", "vocab_size"], (-1).into()), "c")
            .unwrap_err();
        assert!(
            e.to_string().starts_with("c: llama.vocab_size: invalid value: integer `-1`"),
            "{e}"
        );
    }

    #[test]
    fn ranges_are_checked() {
        let cases: [(&[&str], serde_json::Value, &str); 5] = [
            (&["vision", "layers"], 0.into(), "vision.layers: must be positive"),
            (
                &["vision", "layer_norm_eps"],
                (-1e-6).into(),
                "vision.layer_norm_eps: -0.000001 is not a finite positive",
            ),
            (
                &["vision", "image_std"],
                serde_json::json!([0.2, 0.0, 0.2]),
                "vision.image_std[1]: 0 is not",
            ),
            (&["llama", "rms_norm_eps"], 0.0.into(), "llama.rms_norm_eps: 0 is not"),
            (&["n_causal"], 100000.into(), "n_causal: 100000 image slots do not fit"),
        ];
        for (path, v, want) in cases {
            let e = EmuConfig::from_json_str(&patched(path, v), "c").unwrap_err().to_string();
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }
}
