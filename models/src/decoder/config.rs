//! The visual decoder's three diffusers configs (`unet/config.json`, `vae/config.json`,
//! `scheduler/scheduler_config.json`), with the diffusers 0.15 field names. Settings this
//! implementation does not support are rejected with an error naming the field.
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::{ModelError, Result};

/// `attention_head_dim`: one value for all blocks or one per down block. In diffusers 0.15 it is
/// the number of heads, not their width.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PerBlock {
    One(usize),
    Each(Vec<usize>),
}

impl PerBlock {
    pub fn get(&self, i: usize) -> usize {
        match self {
            PerBlock::One(v) => *v,
            PerBlock::Each(v) => v[i],
        }
    }
}

/// `UNet2DConditionModel` config (diffusers 0.15.1).
#[derive(Debug, Clone, Deserialize)]
pub struct UNetConfig {
    /// Latent side the model was trained at (64 for 512x512 images).
    #[serde(default)]
    pub sample_size: Option<usize>,
    #[serde(default = "four")]
    pub in_channels: usize,
    #[serde(default = "four")]
    pub out_channels: usize,
    #[serde(default)]
    pub center_input_sample: bool,
    #[serde(default = "yes")]
    pub flip_sin_to_cos: bool,
    #[serde(default)]
    pub freq_shift: f64,
    pub down_block_types: Vec<String>,
    #[serde(default = "mid_cross_attn")]
    pub mid_block_type: Option<String>,
    pub up_block_types: Vec<String>,
    pub block_out_channels: Vec<usize>,
    #[serde(default = "two")]
    pub layers_per_block: usize,
    #[serde(default = "one")]
    pub downsample_padding: usize,
    #[serde(default = "one_f")]
    pub mid_block_scale_factor: f64,
    #[serde(default = "silu")]
    pub act_fn: String,
    #[serde(default = "groups")]
    pub norm_num_groups: usize,
    #[serde(default = "norm_eps")]
    pub norm_eps: f64,
    pub cross_attention_dim: usize,
    /// Width of the conditioning when an `encoder_hid_proj` Linear maps it to
    /// `cross_attention_dim` first.
    #[serde(default)]
    pub encoder_hid_dim: Option<usize>,
    #[serde(default = "heads")]
    pub attention_head_dim: PerBlock,
    #[serde(default)]
    pub use_linear_projection: bool,
    #[serde(default)]
    pub only_cross_attention: serde_json::Value,
    #[serde(default)]
    pub dual_cross_attention: bool,
    #[serde(default)]
    pub upcast_attention: bool,
    #[serde(default)]
    pub class_embed_type: Option<String>,
    #[serde(default)]
    pub num_class_embeds: Option<usize>,
    #[serde(default)]
    pub resnet_time_scale_shift: Option<String>,
    #[serde(default)]
    pub resnet_skip_time_act: bool,
    #[serde(default = "one_f")]
    pub resnet_out_scale_factor: f64,
    #[serde(default)]
    pub time_embedding_type: Option<String>,
    #[serde(default)]
    pub time_embedding_act_fn: Option<String>,
    #[serde(default)]
    pub timestep_post_act: Option<String>,
    #[serde(default)]
    pub time_cond_proj_dim: Option<usize>,
    #[serde(default = "three")]
    pub conv_in_kernel: usize,
    #[serde(default = "three")]
    pub conv_out_kernel: usize,
    #[serde(default)]
    pub cross_attention_norm: Option<String>,
}

/// `AutoencoderKL` config (diffusers 0.15.1).
#[derive(Debug, Clone, Deserialize)]
pub struct VaeConfig {
    #[serde(default = "three")]
    pub in_channels: usize,
    #[serde(default = "three")]
    pub out_channels: usize,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    pub block_out_channels: Vec<usize>,
    #[serde(default = "one")]
    pub layers_per_block: usize,
    #[serde(default = "silu")]
    pub act_fn: String,
    #[serde(default = "four")]
    pub latent_channels: usize,
    #[serde(default = "groups")]
    pub norm_num_groups: usize,
    #[serde(default = "scaling_factor")]
    pub scaling_factor: f64,
}

/// `PNDMScheduler` config (diffusers 0.15.1).
#[derive(Debug, Clone, Deserialize)]
pub struct SchedulerConfig {
    #[serde(default = "train_steps")]
    pub num_train_timesteps: usize,
    #[serde(default = "beta_start")]
    pub beta_start: f64,
    #[serde(default = "beta_end")]
    pub beta_end: f64,
    #[serde(default = "scaled_linear")]
    pub beta_schedule: String,
    #[serde(default)]
    pub trained_betas: Option<Vec<f64>>,
    #[serde(default)]
    pub skip_prk_steps: bool,
    #[serde(default)]
    pub set_alpha_to_one: bool,
    #[serde(default = "epsilon")]
    pub prediction_type: String,
    #[serde(default)]
    pub steps_offset: usize,
}

fn one() -> usize {
    1
}
fn two() -> usize {
    2
}
fn three() -> usize {
    3
}
fn four() -> usize {
    4
}
fn one_f() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
fn groups() -> usize {
    32
}
fn norm_eps() -> f64 {
    1e-5
}
fn heads() -> PerBlock {
    PerBlock::One(8)
}
fn silu() -> String {
    "silu".into()
}
fn mid_cross_attn() -> Option<String> {
    Some("UNetMidBlock2DCrossAttn".into())
}
fn scaling_factor() -> f64 {
    0.18215
}
fn train_steps() -> usize {
    1000
}
fn beta_start() -> f64 {
    0.0001
}
fn beta_end() -> f64 {
    0.02
}
fn scaled_linear() -> String {
    "linear".into()
}
fn epsilon() -> String {
    "epsilon".into()
}

fn read<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ModelError::config(path, "file", format!("cannot read: {e}")))?;
    // serde_json names the offending field in its message.
    serde_json::from_str(&text).map_err(|e| {
        ModelError::config(path, format!("line {} column {}", e.line(), e.column()), e.to_string())
    })
}

fn unsupported(path: &Path, field: &str, found: impl std::fmt::Debug) -> ModelError {
    ModelError::config(path, field, format!("unsupported value {found:?}"))
}

impl UNetConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let cfg: Self = read(path)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Whether down block `i` (and the mirrored up block) has cross-attention transformers.
    pub fn cross_attn(&self, i: usize) -> bool {
        self.down_block_types[i] == "CrossAttnDownBlock2D"
    }

    fn validate(&self, p: &Path) -> Result<()> {
        let n = self.block_out_channels.len();
        if n == 0 {
            return Err(ModelError::config(p, "block_out_channels", "empty"));
        }
        if self.down_block_types.len() != n {
            return Err(ModelError::config(
                p,
                "down_block_types",
                format!("{} entries for {n} blocks", self.down_block_types.len()),
            ));
        }
        if self.up_block_types.len() != n {
            return Err(ModelError::config(
                p,
                "up_block_types",
                format!("{} entries for {n} blocks", self.up_block_types.len()),
            ));
        }
        for (i, t) in self.down_block_types.iter().enumerate() {
            let mirrored = match t.as_str() {
                "CrossAttnDownBlock2D" => "CrossAttnUpBlock2D",
                "DownBlock2D" => "UpBlock2D",
                _ => return Err(unsupported(p, &format!("down_block_types[{i}]"), t)),
            };
            if self.up_block_types[n - 1 - i] != mirrored {
                return Err(ModelError::config(
                    p,
                    format!("up_block_types[{}]", n - 1 - i),
                    format!("expected {mirrored} to mirror down block {i}"),
                ));
            }
        }
        if let PerBlock::Each(v) = &self.attention_head_dim {
            if v.len() != n {
                return Err(ModelError::config(
                    p,
                    "attention_head_dim",
                    format!("{} entries for {n} blocks", v.len()),
                ));
            }
        }
        for i in 0..n {
            let (c, h) = (self.block_out_channels[i], self.attention_head_dim.get(i));
            if h == 0 || c % h != 0 || c % self.norm_num_groups != 0 {
                return Err(ModelError::config(
                    p,
                    "block_out_channels",
                    format!(
                        "{c} channels do not split into {h} heads and {} groups",
                        self.norm_num_groups
                    ),
                ));
            }
        }
        if self.mid_block_type.as_deref() != Some("UNetMidBlock2DCrossAttn") {
            return Err(unsupported(p, "mid_block_type", &self.mid_block_type));
        }
        let only_cross = &self.only_cross_attention;
        if !(only_cross.is_null() || only_cross == &serde_json::Value::Bool(false)) {
            return Err(unsupported(p, "only_cross_attention", only_cross));
        }
        let checks: [(&str, bool, String); 11] = [
            ("act_fn", self.act_fn == "silu", self.act_fn.clone()),
            ("dual_cross_attention", !self.dual_cross_attention, "true".into()),
            (
                "class_embed_type",
                self.class_embed_type.is_none() && self.num_class_embeds.is_none(),
                format!("{:?}", self.class_embed_type),
            ),
            (
                "resnet_time_scale_shift",
                matches!(self.resnet_time_scale_shift.as_deref(), None | Some("default")),
                format!("{:?}", self.resnet_time_scale_shift),
            ),
            ("resnet_skip_time_act", !self.resnet_skip_time_act, "true".into()),
            (
                "time_embedding_type",
                matches!(self.time_embedding_type.as_deref(), None | Some("positional")),
                format!("{:?}", self.time_embedding_type),
            ),
            (
                "time_embedding_act_fn",
                self.time_embedding_act_fn.is_none(),
                format!("{:?}", self.time_embedding_act_fn),
            ),
            (
                "timestep_post_act",
                self.timestep_post_act.is_none(),
                format!("{:?}", self.timestep_post_act),
            ),
            (
                "time_cond_proj_dim",
                self.time_cond_proj_dim.is_none(),
                format!("{:?}", self.time_cond_proj_dim),
            ),
            (
                "conv_in_kernel",
                self.conv_in_kernel == 3 && self.conv_out_kernel == 3,
                format!("{}/{}", self.conv_in_kernel, self.conv_out_kernel),
            ),
            (
                "cross_attention_norm",
                self.cross_attention_norm.is_none(),
                format!("{:?}", self.cross_attention_norm),
            ),
        ];
        match checks.into_iter().find(|(_, ok, _)| !ok) {
            Some((field, _, found)) => Err(unsupported(p, field, found)),
            None => Ok(()),
        }
    }
}

impl VaeConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let cfg: Self = read(path)?;
        let n = cfg.block_out_channels.len();
        if n == 0 {
            return Err(ModelError::config(path, "block_out_channels", "empty"));
        }
        if let Some((i, t)) =
            cfg.down_block_types.iter().enumerate().find(|(_, t)| *t != "DownEncoderBlock2D")
        {
            return Err(unsupported(path, &format!("down_block_types[{i}]"), t));
        }
        if let Some((i, t)) =
            cfg.up_block_types.iter().enumerate().find(|(_, t)| *t != "UpDecoderBlock2D")
        {
            return Err(unsupported(path, &format!("up_block_types[{i}]"), t));
        }
        if cfg.down_block_types.len() != n || cfg.up_block_types.len() != n {
            return Err(ModelError::config(
                path,
                "up_block_types",
                format!("block counts differ from {n} block_out_channels"),
            ));
        }
        if cfg.act_fn != "silu" {
            return Err(unsupported(path, "act_fn", &cfg.act_fn));
        }
        Ok(cfg)
    }

    /// Pixels per latent along each side: 2^(blocks - 1).
    pub fn scale_factor(&self) -> usize {
        1 << (self.block_out_channels.len() - 1)
    }
}

impl SchedulerConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let cfg: Self = read(path)?;
        if !cfg.skip_prk_steps {
            return Err(ModelError::config(
                path,
                "skip_prk_steps",
                "only PLMS (skip_prk_steps = true) is implemented",
            ));
        }
        if cfg.prediction_type != "epsilon" {
            return Err(unsupported(path, "prediction_type", &cfg.prediction_type));
        }
        if !matches!(cfg.beta_schedule.as_str(), "scaled_linear" | "linear")
            && cfg.trained_betas.is_none()
        {
            return Err(unsupported(path, "beta_schedule", &cfg.beta_schedule));
        }
        if cfg.num_train_timesteps < 2 {
            return Err(unsupported(path, "num_train_timesteps", cfg.num_train_timesteps));
        }
        if let Some(b) = &cfg.trained_betas {
            if b.len() != cfg.num_train_timesteps {
                return Err(ModelError::config(
                    path,
                    "trained_betas",
                    format!("{} values for {} steps", b.len(), cfg.num_train_timesteps),
                ));
            }
        }
        Ok(cfg)
    }
}
