//! The multimodal LLaMA (`decoder.lm.*`, emu-model.md §1.6): HF `LlamaForCausalLM` (transformers
//! 4.29) driven with input embeddings, per-row position ids, a padding-aware causal mask with the
//! dtype's most negative finite value (clamped, so fully masked rows attend uniformly), a KV cache
//! that can be reordered for beams, and two heads (`lm_head`, `stu_regress_head`).
use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{embedding, Embedding, VarBuilder};

use super::linear::{each, forward_decode_many, linear_no_bias, matmul, Linear};

use super::cformer::min_value;
use super::config::LlamaConfig;
pub use super::kv::LayerCache;
use super::kv::{self, LayerKv};
use super::vision::softmax_f32;

use super::norm::RmsNorm as LlamaRmsNorm;

/// Rotary embedding tables computed from position ids (rotate-half convention).
#[derive(Debug, Clone)]
struct Rotary {
    /// `inv_freq[i] = 1 / base^(2i/head_dim)`, f32, (head_dim/2,).
    inv_freq: Tensor,
}

impl Rotary {
    fn new(cfg: &LlamaConfig, device: &Device) -> Result<Self> {
        let hd = cfg.head_dim();
        let base = cfg.rope_theta as f32;
        let inv: Vec<f32> =
            (0..hd).step_by(2).map(|i| 1.0 / base.powf(i as f32 / hd as f32)).collect();
        Ok(Self { inv_freq: Tensor::from_vec(inv, hd / 2, device)? })
    }

    /// position_ids (b, t) i64 -> cos, sin (b, t, head_dim/2) in `dtype`.
    fn cos_sin(&self, position_ids: &Tensor, dtype: DType) -> Result<(Tensor, Tensor)> {
        let pos = position_ids.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?; // (b, t, 1)
        let freqs = pos.broadcast_mul(&self.inv_freq.reshape((1, 1, ()))?)?; // (b, t, hd/2)
        Ok((freqs.cos()?.to_dtype(dtype)?, freqs.sin()?.to_dtype(dtype)?))
    }
}

/// `decoder.lm.model.layers.{l}.self_attn`.
#[derive(Debug, Clone)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    num_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(cfg: &LlamaConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        let inner = cfg.num_attention_heads * cfg.head_dim();
        Ok(Self {
            q_proj: linear_no_bias(h, inner, vb.pp("q_proj"))?,
            k_proj: linear_no_bias(h, inner, vb.pp("k_proj"))?,
            v_proj: linear_no_bias(h, inner, vb.pp("v_proj"))?,
            o_proj: linear_no_bias(inner, h, vb.pp("o_proj"))?,
            num_heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
        })
    }

    /// xs (b, t, h); cos/sin (b, t, hd/2); mask (b, 1, t, past+t) u8 (1 = visible).
    fn forward(
        &self,
        xs: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
        cache: &mut Option<LayerKv>,
        decode: bool,
    ) -> Result<Tensor> {
        let (b, t, _) = xs.dims3()?;
        let proj = |l: &Linear, x: &Tensor| project(l, x, b * t);
        let split = |x: Tensor| -> Result<Tensor> {
            x.reshape((b, t, self.num_heads, self.head_dim))?.transpose(1, 2)?.contiguous()
            // (b, heads, t, hd)
        };
        let [q, k, v] = project_many([&self.q_proj, &self.k_proj, &self.v_proj], xs, b * t)?;
        let (q, k, v) = (split(q)?, split(k)?, split(v)?);
        let q = candle_nn::rotary_emb::rope(&q, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&k, cos, sin)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        if decode {
            // f32 on the CPU: through the paged cache, no copy of the keys and values.
            if let Some(out) = kv::decode_attention(cache, &q, &k, &v, mask, scale as f32)? {
                return proj(&self.o_proj, &out); // (b, 1, heads·hd)
            }
        }
        let (k, v) = kv::append(cache, &k, &v)?; // (b, heads, past+t, hd)
        let scores = (matmul(&q, &k.t()?)? * scale)?; // (b, heads, t, past+t)
        let min =
            Tensor::new(min_value(scores.dtype()), scores.device())?.to_dtype(scores.dtype())?;
        let scores = mask
            .broadcast_as(scores.shape())?
            .where_cond(&scores, &min.broadcast_as(scores.shape())?)?;
        let attn = softmax_f32(&scores)?;
        let out =
            matmul(&attn, &v)?.transpose(1, 2)?.reshape((b, t, self.num_heads * self.head_dim))?;
        proj(&self.o_proj, &out)
    }
}

/// Most rows a projection runs through the per-row GEMV rather than the matmul: measured with
/// `peer gemv` / `peer matmul` (1024 → 2816), the GEMV streaming its weights from memory is ahead
/// of candle's matmul on cached weights up to 256 rows (237 vs 195 GFLOP/s; 3x at 16 rows) and
/// behind from 512. So decoding steps and most prompts take the GEMV, and a row's projections
/// do not depend on the other rows of the batch.
const GEMV_MAX_ROWS: usize = 256;

/// `l.forward(x)` for `rows` rows, through the GEMV up to [`GEMV_MAX_ROWS`].
fn project(l: &Linear, x: &Tensor, rows: usize) -> Result<Tensor> {
    if rows <= GEMV_MAX_ROWS {
        l.forward_decode(x)
    } else {
        l.forward(x)
    }
}

/// [`project`] of several layers on the same `x`, through one parallel loop of the GEMV.
fn project_many<const N: usize>(ls: [&Linear; N], x: &Tensor, rows: usize) -> Result<[Tensor; N]> {
    if rows <= GEMV_MAX_ROWS {
        forward_decode_many(ls, x)
    } else {
        each(ls, |l| l.forward(x))
    }
}

/// `decoder.lm.model.layers.{l}.mlp`: down(silu(gate(x)) · up(x)).
#[derive(Debug, Clone)]
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    fn new(cfg: &LlamaConfig, vb: VarBuilder) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Self {
            gate_proj: linear_no_bias(h, i, vb.pp("gate_proj"))?,
            up_proj: linear_no_bias(h, i, vb.pp("up_proj"))?,
            down_proj: linear_no_bias(i, h, vb.pp("down_proj"))?,
        })
    }
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let rows = xs.elem_count() / xs.dim(candle_core::D::Minus1)?.max(1);
        let [gate, up] = project_many([&self.gate_proj, &self.up_proj], xs, rows)?;
        project(&self.down_proj, &(candle_nn::ops::silu(&gate)? * up)?, rows)
    }
}

/// `decoder.lm.model.layers.{l}`.
#[derive(Debug, Clone)]
struct DecoderLayer {
    input_layernorm: LlamaRmsNorm,
    self_attn: Attention,
    post_attention_layernorm: LlamaRmsNorm,
    mlp: Mlp,
}

impl DecoderLayer {
    fn new(cfg: &LlamaConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            input_layernorm: LlamaRmsNorm::new(
                cfg.hidden_size,
                cfg.rms_norm_eps,
                vb.pp("input_layernorm"),
            )?,
            self_attn: Attention::new(cfg, vb.pp("self_attn"))?,
            post_attention_layernorm: LlamaRmsNorm::new(
                cfg.hidden_size,
                cfg.rms_norm_eps,
                vb.pp("post_attention_layernorm"),
            )?,
            mlp: Mlp::new(cfg, vb.pp("mlp"))?,
        })
    }
}

/// `decoder.lm`: embeddings, decoder layers, final norm, `lm_head`, `stu_regress_head`.
#[derive(Debug, Clone)]
pub struct Llama {
    embed_tokens: Embedding,
    layers: Vec<DecoderLayer>,
    norm: LlamaRmsNorm,
    lm_head: Linear,
    stu_regress_head: Linear,
    rotary: Rotary,
}

impl Llama {
    /// `vb` is at `decoder.lm`.
    pub fn new(cfg: &LlamaConfig, vb: VarBuilder) -> Result<Self> {
        let m = vb.pp("model");
        let embed_tokens = embedding(cfg.vocab_size, cfg.hidden_size, m.pp("embed_tokens"))?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|l| DecoderLayer::new(cfg, m.pp("layers").pp(l)))
            .collect::<Result<Vec<_>>>()?;
        let norm = LlamaRmsNorm::new(cfg.hidden_size, cfg.rms_norm_eps, m.pp("norm"))?;
        let lm_head = linear_no_bias(cfg.hidden_size, cfg.vocab_size, vb.pp("lm_head"))?;
        let stu_regress_head =
            linear_no_bias(cfg.hidden_size, cfg.hidden_size, vb.pp("stu_regress_head"))?;
        let rotary = Rotary::new(cfg, vb.device())?;
        Ok(Self { embed_tokens, layers, norm, lm_head, stu_regress_head, rotary })
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    pub fn dtype(&self) -> DType {
        self.embed_tokens.embeddings().dtype()
    }

    /// input_ids (b, L) -> (b, L, hidden).
    pub fn embed_tokens(&self, input_ids: &Tensor) -> Result<Tensor> {
        self.embed_tokens.forward(input_ids)
    }

    /// embeds (b, t, h), position_ids (b, t) i64, attention_mask (b, past+t) (1 keep, 0 pad).
    /// Returns the final-normed hidden states (b, t, h); with `all`, also the HF
    /// `hidden_states` tuple (embeddings, each layer's output, the last one after the norm).
    pub fn forward(
        &self,
        embeds: &Tensor,
        position_ids: &Tensor,
        attention_mask: &Tensor,
        cache: &mut LayerCache,
        mut all: Option<&mut Vec<Tensor>>,
    ) -> Result<Tensor> {
        let dtype = self.dtype();
        let (b, t, _) = embeds.dims3()?;
        let past = cache.len();
        if cache.kv.len() != self.layers.len() {
            candle_core::bail!(
                "kv cache has {} layers, model has {}",
                cache.kv.len(),
                self.layers.len()
            );
        }
        let mask = causal_padding_mask(attention_mask, b, t, past)?; // (b, 1, t, past+t) u8
        let (cos, sin) = self.rotary.cos_sin(position_ids, dtype)?;
        // A decoding step (one new position over a cache) attends through the paged cache.
        let decode = past > 0 && t == 1;
        let mut xs = embeds.to_dtype(dtype)?;
        for (layer, kv) in self.layers.iter().zip(cache.kv.iter_mut()) {
            if let Some(all) = all.as_deref_mut() {
                all.push(xs.clone());
            }
            let h = layer.self_attn.forward(
                &layer.input_layernorm.forward(&xs)?,
                &cos,
                &sin,
                &mask,
                kv,
                decode,
            )?;
            let xs1 = (&xs + h)?;
            let mlp = layer.mlp.forward(&layer.post_attention_layernorm.forward(&xs1)?)?;
            xs = (&xs1 + mlp)?;
        }
        let out = self.norm.forward(&xs)?;
        if let Some(all) = all {
            all.push(out.clone());
        }
        Ok(out)
    }

    /// hidden (b, t, h) -> logits (b, t, vocab) in f32.
    pub fn lm_head(&self, hidden: &Tensor) -> Result<Tensor> {
        self.lm_head.forward(&hidden.to_dtype(self.dtype())?)?.to_dtype(DType::F32)
    }

    /// [`Llama::lm_head`] for the last position of every row (the next-token logits of
    /// generation): through the per-row GEMV, so a row's logits do not depend on the batch.
    pub fn next_token_logits(&self, hidden: &Tensor) -> Result<Tensor> {
        self.lm_head.forward_decode(&hidden.to_dtype(self.dtype())?)?.to_dtype(DType::F32)
    }

    /// `stu_regress_head`: hidden (b, t, h) -> (b, t, h) in the model dtype.
    pub fn regress_head(&self, hidden: &Tensor) -> Result<Tensor> {
        self.stu_regress_head.forward(&hidden.to_dtype(self.dtype())?)
    }
}

/// Visibility of key j (over past+t) for query i of row r: causal (j ≤ past + i) and not padded.
fn causal_padding_mask(attention_mask: &Tensor, b: usize, t: usize, past: usize) -> Result<Tensor> {
    let kv = past + t;
    let (mb, ml) = attention_mask.dims2()?;
    if mb != b || ml != kv {
        candle_core::bail!(
            "attention_mask is ({mb}, {ml}), expected ({b}, {kv}) = (batch, past + new)"
        );
    }
    let keep = attention_mask.to_dtype(DType::F32)?.to_device(&Device::Cpu)?.to_vec2::<f32>()?;
    let mut data = vec![0u8; b * t * kv];
    for r in 0..b {
        for i in 0..t {
            for j in 0..=(past + i) {
                data[(r * t + i) * kv + j] = u8::from(keep[r][j] != 0.0);
            }
        }
    }
    Tensor::from_vec(data, (b, 1, t, kv), attention_mask.device())
}
