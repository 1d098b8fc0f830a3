//! The "Causal Transformer" adapter (`cformer.*`, emu-model.md §1.5): learned query tokens run
//! through an HF T5 decoder stack (`T5Stack` with `is_decoder=True`) that cross-attends to the
//! `ln_visual` features, then `projection` to the LLaMA width.
//!
//! T5 conventions kept on purpose: no 1/sqrt(d) attention scaling, RMS-only layer norm, relative
//! position bias computed by block 0's self-attention and reused by every block, causal mask
//! added to that bias with the dtype's most negative finite value.
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};

use super::linear::{linear, linear_no_bias, matmul, Linear};

use super::config::CausalFormerConfig;
use super::vision::softmax_f32;

use super::norm::RmsNorm as T5LayerNorm;

/// `_relative_position_bucket` of HF T5 with `bidirectional=False`, for distance
/// `n = max(query − key, 0)` (emu-model.md Appendix B).
pub fn relative_position_bucket(
    query: usize,
    key: usize,
    num_buckets: usize,
    max_distance: usize,
) -> usize {
    let n = query.saturating_sub(key);
    let max_exact = num_buckets / 2;
    if n < max_exact {
        return n;
    }
    // f32 as in torch: log(n / max_exact) / log(max_distance / max_exact) * (num_buckets - max_exact)
    let ratio =
        (n as f32 / max_exact as f32).ln() / ((max_distance as f64 / max_exact as f64).ln() as f32);
    let large = max_exact + (ratio * (num_buckets - max_exact) as f32) as usize;
    large.min(num_buckets - 1)
}

/// `T5Attention` for self-attention (`layer.0.SelfAttention`) or cross-attention
/// (`layer.1.EncDecAttention`, K/V read `kv_width`-wide inputs).
#[derive(Debug, Clone)]
struct T5Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    num_heads: usize,
    d_kv: usize,
    /// `relative_attention_bias`: (buckets, heads); block 0's self-attention only.
    relative_attention_bias: Option<Embedding>,
}

impl T5Attention {
    fn new(
        cfg: &CausalFormerConfig,
        kv_width: usize,
        has_bias: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        let inner = cfg.num_heads * cfg.d_kv;
        let relative_attention_bias = if has_bias {
            let w = vb.get(
                (cfg.relative_attention_num_buckets, cfg.num_heads),
                "relative_attention_bias.weight",
            )?;
            Some(Embedding::new(w, cfg.num_heads))
        } else {
            None
        };
        Ok(Self {
            q: linear_no_bias(cfg.d_model, inner, vb.pp("q"))?,
            k: linear_no_bias(kv_width, inner, vb.pp("k"))?,
            v: linear_no_bias(kv_width, inner, vb.pp("v"))?,
            o: linear_no_bias(inner, cfg.d_model, vb.pp("o"))?,
            num_heads: cfg.num_heads,
            d_kv: cfg.d_kv,
            relative_attention_bias,
        })
    }

    fn heads(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, n, _) = xs.dims3()?;
        xs.reshape((b, n, self.num_heads, self.d_kv))?.transpose(1, 2)?.contiguous()
        // (b, h, n, d_kv)
    }

    /// xs (b, q, d_model), kv (b, k, kv_width), bias broadcastable to (b, h, q, k).
    fn forward(&self, xs: &Tensor, kv: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let (b, n, _) = xs.dims3()?;
        let q = self.heads(&self.q.forward(xs)?)?;
        let k = self.heads(&self.k.forward(kv)?)?;
        let v = self.heads(&self.v.forward(kv)?)?;
        let scores = matmul(&q, &k.t()?)?; // (b, h, q, k), no scaling
        let scores = match bias {
            Some(bias) => scores.broadcast_add(bias)?,
            None => scores,
        };
        let attn = softmax_f32(&scores)?;
        let out =
            matmul(&attn, &v)?.transpose(1, 2)?.reshape((b, n, self.num_heads * self.d_kv))?;
        self.o.forward(&out)
    }

    /// Relative position bias plus causal mask, (1, h, n, n) in `dtype`.
    fn position_bias(
        &self,
        cfg: &CausalFormerConfig,
        n: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let table = match &self.relative_attention_bias {
            Some(t) => t,
            None => candle_core::bail!("position bias requested from a block without a bias table"),
        };
        let buckets: Vec<u32> = (0..n)
            .flat_map(|i| {
                (0..n).map(move |j| {
                    relative_position_bucket(
                        i,
                        j,
                        cfg.relative_attention_num_buckets,
                        cfg.relative_attention_max_distance,
                    ) as u32
                })
            })
            .collect();
        let buckets = Tensor::from_vec(buckets, (n, n), device)?;
        let bias = table.forward(&buckets)?.permute((2, 0, 1))?.unsqueeze(0)?; // (1, h, n, n)
        let min = min_value(dtype);
        let mask: Vec<f32> =
            (0..n).flat_map(|i| (0..n).map(move |j| if j <= i { 0.0 } else { min })).collect();
        let mask = Tensor::from_vec(mask, (1, 1, n, n), device)?.to_dtype(dtype)?;
        bias.to_dtype(dtype)?.broadcast_add(&mask)
    }
}

/// Most negative finite value of `dtype` (`torch.finfo(dtype).min`), as f32.
pub(crate) fn min_value(dtype: DType) -> f32 {
    match dtype {
        DType::BF16 => half::bf16::MIN.to_f32(),
        DType::F16 => half::f16::MIN.to_f32(),
        _ => f32::MIN,
    }
}

/// `DenseReluDense`: wi → ReLU → wo, no biases.
#[derive(Debug, Clone)]
struct DenseReluDense {
    wi: Linear,
    wo: Linear,
}

/// `cformer.cformer.block.{j}`.
#[derive(Debug, Clone)]
struct T5Block {
    self_norm: T5LayerNorm,
    self_attn: T5Attention,
    cross_norm: T5LayerNorm,
    cross_attn: T5Attention,
    ff_norm: T5LayerNorm,
    ff: DenseReluDense,
}

impl T5Block {
    fn new(cfg: &CausalFormerConfig, has_bias: bool, vb: VarBuilder) -> Result<Self> {
        let eps = cfg.layer_norm_epsilon;
        let l0 = vb.pp("layer").pp(0);
        let l1 = vb.pp("layer").pp(1);
        let l2 = vb.pp("layer").pp(2);
        let ff = DenseReluDense {
            wi: linear_no_bias(cfg.d_model, cfg.d_ff, l2.pp("DenseReluDense").pp("wi"))?,
            wo: linear_no_bias(cfg.d_ff, cfg.d_model, l2.pp("DenseReluDense").pp("wo"))?,
        };
        Ok(Self {
            self_norm: T5LayerNorm::new(cfg.d_model, eps, l0.pp("layer_norm"))?,
            self_attn: T5Attention::new(cfg, cfg.d_model, has_bias, l0.pp("SelfAttention"))?,
            cross_norm: T5LayerNorm::new(cfg.d_model, eps, l1.pp("layer_norm"))?,
            cross_attn: T5Attention::new(cfg, cfg.encoder_width, false, l1.pp("EncDecAttention"))?,
            ff_norm: T5LayerNorm::new(cfg.d_model, eps, l2.pp("layer_norm"))?,
            ff,
        })
    }

    /// xs (b, n, d_model), visual (b, tokens, encoder_width), bias (1, h, n, n).
    fn forward(&self, xs: &Tensor, visual: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let n = self.self_norm.forward(xs)?;
        let xs = (xs + self.self_attn.forward(&n, &n, Some(bias))?)?;
        let n = self.cross_norm.forward(&xs)?;
        let xs = (&xs + self.cross_attn.forward(&n, visual, None)?)?;
        let n = self.ff_norm.forward(&xs)?;
        let ff = self.ff.wo.forward(&self.ff.wi.forward(&n)?.relu()?)?;
        &xs + ff
    }
}

/// `cformer`: learned queries, T5 decoder stack, final norm, projection.
#[derive(Debug, Clone)]
pub struct CausalFormer {
    cfg: CausalFormerConfig,
    causal_tokens: Tensor,
    blocks: Vec<T5Block>,
    final_layer_norm: T5LayerNorm,
    projection: Linear,
}

/// Intermediates of the causal former, for `inspect`.
#[derive(Debug, Clone)]
pub struct CausalFormerOutput {
    /// HF `hidden_states` of the T5 stack: queries, each block's output (the last after the
    /// final norm), each (b, n_causal, d_model).
    pub hidden_states: Vec<Tensor>,
    /// After `final_layer_norm`, (b, n_causal, d_model).
    pub hidden: Tensor,
    /// After `projection`, (b, n_causal, output_dim).
    pub out: Tensor,
}

impl CausalFormer {
    pub fn new(cfg: &CausalFormerConfig, n_causal: usize, vb: VarBuilder) -> Result<Self> {
        let causal_tokens = vb.get((1, n_causal, cfg.d_model), "causal_tokens")?;
        let stack = vb.pp("cformer");
        let blocks = (0..cfg.num_decoder_layers)
            .map(|j| T5Block::new(cfg, j == 0, stack.pp("block").pp(j)))
            .collect::<Result<Vec<_>>>()?;
        let final_layer_norm =
            T5LayerNorm::new(cfg.d_model, cfg.layer_norm_epsilon, stack.pp("final_layer_norm"))?;
        let projection = linear(cfg.d_model, cfg.output_dim, vb.pp("projection"))?;
        Ok(Self { cfg: cfg.clone(), causal_tokens, blocks, final_layer_norm, projection })
    }

    /// visual (b, tokens, encoder_width), the `ln_visual` output -> (b, n_causal, output_dim).
    pub fn forward(&self, visual: &Tensor) -> Result<Tensor> {
        Ok(self.forward_all(visual)?.out)
    }

    pub fn forward_all(&self, visual: &Tensor) -> Result<CausalFormerOutput> {
        let dtype = self.causal_tokens.dtype();
        let visual = visual.to_dtype(dtype)?;
        let b = visual.dim(0)?;
        let (_, n, d) = self.causal_tokens.dims3()?;
        let mut xs = self.causal_tokens.expand((b, n, d))?.contiguous()?; // (b, n_causal, d_model)
        let bias = match self.blocks.first() {
            Some(block0) => block0.self_attn.position_bias(&self.cfg, n, dtype, xs.device())?,
            None => Tensor::zeros((1, 1, n, n), dtype, xs.device())?,
        };
        let mut hidden_states = Vec::with_capacity(self.blocks.len() + 1);
        for block in &self.blocks {
            hidden_states.push(xs.clone());
            xs = block.forward(&xs, &visual, &bias)?;
        }
        let hidden = self.final_layer_norm.forward(&xs)?;
        hidden_states.push(hidden.clone());
        let out = self.projection.forward(&hidden)?; // (b, n_causal, output_dim)
        Ok(CausalFormerOutput { hidden_states, hidden, out })
    }
}

#[cfg(test)]
mod tests {
    use super::relative_position_bucket;

    /// emu-model.md Appendix B: first distance of each bucket.
    #[test]
    fn buckets_match_appendix_b() {
        let b = |n: usize| relative_position_bucket(n, 0, 32, 128);
        for n in 0..16 {
            assert_eq!(b(n), n);
        }
        let firsts = [
            (16, 16),
            (19, 17),
            (21, 18),
            (24, 19),
            (27, 20),
            (31, 21),
            (35, 22),
            (40, 23),
            (46, 24),
            (52, 25),
            (59, 26),
            (67, 27),
            (77, 28),
            (87, 29),
            (99, 30),
            (113, 31),
        ];
        for (n, bucket) in firsts {
            assert_eq!(b(n), bucket, "n={n}");
            assert_eq!(b(n - 1), bucket - 1, "n-1={}", n - 1);
        }
        assert_eq!(b(1000), 31);
        assert_eq!(relative_position_bucket(0, 5, 32, 128), 0); // future keys -> bucket 0
    }
}
