//! diffusers 0.15 `Transformer2DModel` (continuous input) and `BasicTransformerBlock`: the
//! spatial transformer of the UNet's cross-attention blocks. Written here rather than reused from
//! candle-transformers because candle's feed-forward uses the tanh GELU approximation, while
//! diffusers' GEGLU uses the exact (erf) GELU.
use candle_core::{Module, Result, Tensor, D};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use crate::emu::linear::{linear, linear_no_bias, Linear};

use super::group_norm::{group_norm, GroupNorm};

use crate::conv::{conv2d, Conv2d};

/// `Attention` (diffusers 0.15 `CrossAttention`): self-attention when `context` is `None`.
#[derive(Debug)]
struct Attention {
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    heads: usize,
    scale: f64,
}

impl Attention {
    fn new(
        vb: VarBuilder,
        query_dim: usize,
        context_dim: usize,
        heads: usize,
        dim_head: usize,
    ) -> Result<Self> {
        let inner = heads * dim_head;
        Ok(Self {
            to_q: linear_no_bias(query_dim, inner, vb.pp("to_q"))?,
            to_k: linear_no_bias(context_dim, inner, vb.pp("to_k"))?,
            to_v: linear_no_bias(context_dim, inner, vb.pp("to_v"))?,
            to_out: linear(inner, query_dim, vb.pp("to_out.0"))?,
            heads,
            scale: 1.0 / (dim_head as f64).sqrt(),
        })
    }

    /// (b, n, c) → (b, heads, n, c / heads)
    fn split_heads(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, n, c) = xs.dims3()?;
        xs.reshape((b, n, self.heads, c / self.heads))?.transpose(1, 2)?.contiguous()
    }

    fn forward(&self, xs: &Tensor, context: Option<&Tensor>) -> Result<Tensor> {
        let context = context.unwrap_or(xs);
        if crate::attention::fused_applies(xs) {
            let (q, k, v) =
                (self.to_q.forward(xs)?, self.to_k.forward(context)?, self.to_v.forward(context)?);
            let out = crate::attention::attention(&q, &k, &v, self.heads, self.scale as f32)?;
            return self.to_out.forward(&out);
        }
        // The scale goes on q (n·d products) rather than on the scores (n·m).
        let q = (self.split_heads(&self.to_q.forward(xs)?)? * self.scale)?;
        let k = self.split_heads(&self.to_k.forward(context)?)?;
        let v = self.split_heads(&self.to_v.forward(context)?)?;
        let out = attention(&q, &k, &v, SCORES_PER_BLOCK)?; // (b, heads, n, d)
        let (b, h, n, d) = out.dims4()?;
        self.to_out.forward(&out.transpose(1, 2)?.reshape((b, n, h * d))?)
    }
}

/// Score elements per query block of [`attention`] (32 MiB of f32): at 64×64 latents the full
/// (2, 8, 4096, 4096) score tensor would be 1 GiB, written, soft-maxed and read back from memory.
const SCORES_PER_BLOCK: usize = 1 << 23;

/// softmax(q·kᵀ)·v for q (b, heads, n, d) and k, v (b, heads, m, d), over blocks of queries so that
/// each block's scores hold at most about `scores_per_block` elements. Rows are independent, so
/// the blocks give the same rows as one pass.
fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scores_per_block: usize) -> Result<Tensor> {
    let (b, h, n, _) = q.dims4()?;
    let m = k.dim(2)?;
    let rows = (scores_per_block / (b * h * m).max(1)).clamp(1, n.max(1));
    let kt = k.t()?;
    let block = |start: usize, len: usize| -> Result<Tensor> {
        let qb = if len == n { q.clone() } else { q.narrow(2, start, len)?.contiguous()? };
        candle_nn::ops::softmax_last_dim(&qb.matmul(&kt)?)?.matmul(v)
    };
    if rows >= n {
        return block(0, n);
    }
    let outs =
        (0..n).step_by(rows).map(|s| block(s, rows.min(n - s))).collect::<Result<Vec<_>>>()?;
    Tensor::cat(&outs, 2)
}

/// `FeedForward` with `GEGLU`: `net.0.proj` [8C, C] → value * gelu_erf(gate) → `net.2` [C, 4C].
#[derive(Debug)]
struct FeedForward {
    proj: Linear,
    out: Linear,
}

impl FeedForward {
    fn new(vb: VarBuilder, dim: usize) -> Result<Self> {
        let inner = 4 * dim;
        Ok(Self {
            proj: linear(dim, 2 * inner, vb.pp("net.0.proj"))?,
            out: linear(inner, dim, vb.pp("net.2"))?,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let h = self.proj.forward(xs)?;
        let chunks = h.chunk(2, D::Minus1)?;
        self.out.forward(&(&chunks[0] * crate::gelu::gelu_erf(&chunks[1])?)?)
    }
}

#[derive(Debug)]
struct BasicTransformerBlock {
    norm1: LayerNorm,
    attn1: Attention,
    norm2: LayerNorm,
    attn2: Attention,
    norm3: LayerNorm,
    ff: FeedForward,
}

impl BasicTransformerBlock {
    fn new(
        vb: VarBuilder,
        dim: usize,
        heads: usize,
        dim_head: usize,
        context_dim: usize,
    ) -> Result<Self> {
        Ok(Self {
            norm1: layer_norm(dim, 1e-5, vb.pp("norm1"))?,
            attn1: Attention::new(vb.pp("attn1"), dim, dim, heads, dim_head)?,
            norm2: layer_norm(dim, 1e-5, vb.pp("norm2"))?,
            attn2: Attention::new(vb.pp("attn2"), dim, context_dim, heads, dim_head)?,
            norm3: layer_norm(dim, 1e-5, vb.pp("norm3"))?,
            ff: FeedForward::new(vb.pp("ff"), dim)?,
        })
    }

    fn forward(&self, xs: &Tensor, context: &Tensor) -> Result<Tensor> {
        let xs = (self.attn1.forward(&self.norm1.forward(xs)?, None)? + xs)?;
        let xs = (self.attn2.forward(&self.norm2.forward(&xs)?, Some(context))? + xs)?;
        self.ff.forward(&self.norm3.forward(&xs)?)? + xs
    }
}

#[derive(Debug)]
enum Proj {
    Conv(Conv2d),
    Linear(Linear),
}

/// `Transformer2DModel` with one transformer block: GroupNorm (eps 1e-6), `proj_in`, the block
/// on the flattened (b, h·w, c) sequence, `proj_out`, residual.
#[derive(Debug)]
pub struct Transformer2D {
    norm: GroupNorm,
    proj_in: Proj,
    blocks: Vec<BasicTransformerBlock>,
    proj_out: Proj,
}

impl Transformer2D {
    pub fn new(
        vb: VarBuilder,
        channels: usize,
        heads: usize,
        groups: usize,
        context_dim: usize,
        linear_proj: bool,
    ) -> Result<Self> {
        let proj = |name: &str| -> Result<Proj> {
            Ok(if linear_proj {
                Proj::Linear(linear(channels, channels, vb.pp(name))?)
            } else {
                Proj::Conv(conv2d(channels, channels, 1, 1, 0, vb.pp(name))?)
            })
        };
        let block = BasicTransformerBlock::new(
            vb.pp("transformer_blocks.0"),
            channels,
            heads,
            channels / heads,
            context_dim,
        )?;
        Ok(Self {
            norm: group_norm(groups, channels, 1e-6, vb.pp("norm"))?,
            proj_in: proj("proj_in")?,
            blocks: vec![block],
            proj_out: proj("proj_out")?,
        })
    }

    pub fn forward(&self, xs: &Tensor, context: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = xs.dims4()?;
        let to_seq =
            |t: Tensor| -> Result<Tensor> { t.permute((0, 2, 3, 1))?.reshape((b, h * w, c)) };
        let normed = self.norm.forward(xs)?;
        let mut seq = match &self.proj_in {
            Proj::Conv(p) => to_seq(p.forward(&normed)?)?,
            Proj::Linear(p) => p.forward(&to_seq(normed)?)?,
        }; // (b, h·w, c)
        for block in &self.blocks {
            seq = block.forward(&seq, context)?;
        }
        let to_map = |t: Tensor| -> Result<Tensor> {
            t.reshape((b, h, w, c))?.permute((0, 3, 1, 2))?.contiguous()
        };
        let out = match &self.proj_out {
            Proj::Conv(p) => p.forward(&to_map(seq)?)?,
            Proj::Linear(p) => to_map(p.forward(&seq)?)?,
        }; // (b, c, h, w)
        out + xs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn blocked_attention_matches_one_pass() -> Result<()> {
        let dev = Device::Cpu;
        // Fixed inputs (random ones made this test flaky: candle's GEMM takes other kernels
        // for other row counts, so a block's rows may differ from one pass's in the last bits).
        let t = |n: usize, seed: u32, shape: (usize, usize, usize, usize)| {
            Tensor::from_vec(crate::test_data::uniform(n, seed, -2.0, 2.0), shape, &dev)
        };
        let (q, k, v) = (
            t(2 * 3 * 37 * 8, 1, (2, 3, 37, 8))?,
            t(2 * 3 * 11 * 8, 2, (2, 3, 11, 8))?,
            t(2 * 3 * 11 * 8, 3, (2, 3, 11, 8))?,
        );
        let whole = attention(&q, &k, &v, usize::MAX)?;
        // 2·3·11 = 66 scores per query row: 5 rows per block, the last block 2 rows.
        let blocked = attention(&q, &k, &v, 5 * 66)?;
        assert_eq!(blocked.dims(), &[2, 3, 37, 8]);
        let d = (whole - blocked)?.abs()?.flatten_all()?.max(0)?.to_dtype(DType::F32)?;
        let d = d.to_scalar::<f32>()?;
        assert!(d < 2e-6, "blocked vs one pass: {d}");
        Ok(())
    }
}
