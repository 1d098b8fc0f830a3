//! EVA-CLIP ViT (`EVAVisionTransformer.forward_features`, emu-model.md §1.3): a plain pre-norm ViT
//! whose fused `qkv` has the bias concat(q_bias, 0, v_bias). All blocks run, no final norm, all
//! tokens (CLS + patches) are returned.
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use super::linear::{linear, linear_no_bias, matmul, Linear};

use super::config::VisionConfig;

/// `visual.blocks.{i}.attn`.
#[derive(Debug, Clone)]
struct Attention {
    qkv: Linear,
    proj: Linear,
    num_heads: usize,
    scale: f64,
}

impl Attention {
    fn new(cfg: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        let w = cfg.width;
        let qkv = linear_no_bias(w, 3 * w, vb.pp("qkv"))?;
        // The stored `qkv` has no bias; the official forward uses concat(q_bias, zeros, v_bias).
        let qkv = if cfg.qkv_bias {
            let q_bias = vb.get(w, "q_bias")?;
            let v_bias = vb.get(w, "v_bias")?;
            let bias = Tensor::cat(&[&q_bias, &q_bias.zeros_like()?, &v_bias], 0)?;
            Linear::new(qkv.weight().clone(), Some(bias))
        } else {
            qkv
        };
        let proj = linear(w, w, vb.pp("proj"))?;
        let head_dim = cfg.head_width;
        Ok(Self { qkv, proj, num_heads: cfg.num_heads(), scale: (head_dim as f64).powf(-0.5) })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, n, c) = xs.dims3()?;
        let hd = c / self.num_heads;
        if crate::attention::fused_applies(xs) {
            // q, k, v read in place from the (b, n, 3c) projection; q · scale first, as below.
            let qkv = self.qkv.forward(xs)?;
            let (q, k, v) = (qkv.narrow(2, 0, c)?, qkv.narrow(2, c, c)?, qkv.narrow(2, 2 * c, c)?);
            let out = crate::attention::attention(&q, &k, &v, self.num_heads, self.scale as f32)?;
            return self.proj.forward(&out);
        }
        // (b, n, 3c) -> (3, b, heads, n, hd)
        let qkv = self
            .qkv
            .forward(xs)?
            .reshape((b, n, 3, self.num_heads, hd))?
            .permute((2, 0, 3, 1, 4))?;
        // As the official non-xformers path: q * scale, then q·kᵀ.
        let q = (qkv.get(0)? * self.scale)?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let attn = matmul(&q, &k.t()?)?; // (b, heads, n, n)
        let attn = softmax_f32(&attn)?;
        let out = matmul(&attn, &v)?; // (b, heads, n, hd)
        let out = out.transpose(1, 2)?.reshape((b, n, c))?;
        self.proj.forward(&out)
    }
}

/// Softmax over the last axis computed in f32, cast back (autocast semantics).
pub(crate) fn softmax_f32(xs: &Tensor) -> Result<Tensor> {
    let dtype = xs.dtype();
    candle_nn::ops::softmax_last_dim(&xs.to_dtype(DType::F32)?)?.to_dtype(dtype)
}

/// `visual.blocks.{i}.mlp`: fc1 → exact GELU → fc2.
#[derive(Debug, Clone)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn new(cfg: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        let hidden = cfg.mlp_hidden();
        Ok(Self {
            fc1: linear(cfg.width, hidden, vb.pp("fc1"))?,
            fc2: linear(hidden, cfg.width, vb.pp("fc2"))?,
        })
    }
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        // fc1's output is this function's own: GELU overwrites it.
        self.fc2.forward(&crate::gelu::gelu_erf_owned(self.fc1.forward(xs)?)?)
    }
}

/// `visual.blocks.{i}`: x + attn(norm1(x)), then x + mlp(norm2(x)).
#[derive(Debug, Clone)]
struct Block {
    norm1: LayerNorm,
    attn: Attention,
    norm2: LayerNorm,
    mlp: Mlp,
}

impl Block {
    fn new(cfg: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            norm1: layer_norm(cfg.width, cfg.layer_norm_eps, vb.pp("norm1"))?,
            attn: Attention::new(cfg, vb.pp("attn"))?,
            norm2: layer_norm(cfg.width, cfg.layer_norm_eps, vb.pp("norm2"))?,
            mlp: Mlp::new(cfg, vb.pp("mlp"))?,
        })
    }
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let xs = (xs + self.attn.forward(&self.norm1.forward(xs)?)?)?;
        &xs + self.mlp.forward(&self.norm2.forward(&xs)?)?
    }
}

/// Intermediates of one vision forward, for `inspect`.
#[derive(Debug, Clone)]
pub struct VisionTrace {
    /// (b, patches, width), before CLS and position embedding.
    pub patch_embed: Tensor,
    /// One (b, tokens, width) per block.
    pub blocks: Vec<Tensor>,
}

/// `visual`: the EVA-CLIP tower up to `forward_features`.
#[derive(Debug, Clone)]
pub struct EvaVisionTransformer {
    /// `patch_embed.proj`, the stride-p p×p convolution as a linear map over flattened patches.
    patch_embed: Linear,
    patch_size: usize,
    cls_token: Tensor,
    pos_embed: Tensor,
    blocks: Vec<Block>,
}

impl EvaVisionTransformer {
    pub fn new(cfg: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        let (p, w) = (cfg.patch_size, cfg.width);
        let vb_p = vb.pp("patch_embed").pp("proj");
        let weight = vb_p.get((w, 3, p, p), "weight")?.reshape((w, 3 * p * p))?;
        let patch_embed = Linear::new(weight, Some(vb_p.get(w, "bias")?));
        let cls_token = vb.get((1, 1, cfg.width), "cls_token")?;
        let pos_embed = vb.get((1, cfg.num_tokens(), cfg.width), "pos_embed")?;
        let vb_b = vb.pp("blocks");
        let blocks =
            (0..cfg.layers).map(|i| Block::new(cfg, vb_b.pp(i))).collect::<Result<Vec<_>>>()?;
        Ok(Self { patch_embed, patch_size: p, cls_token, pos_embed, blocks })
    }

    /// pixels (b, 3, H, W) -> (b, tokens, width), the output of the last block.
    pub fn forward_features(&self, pixels: &Tensor) -> Result<Tensor> {
        self.forward_traced(pixels, None)
    }

    /// As `forward_features`, optionally recording the patch embedding and every block's output.
    pub fn forward_traced(
        &self,
        pixels: &Tensor,
        mut trace: Option<&mut VisionTrace>,
    ) -> Result<Tensor> {
        let pixels = pixels.to_dtype(self.cls_token.dtype())?;
        let (b, _, h, w) = pixels.dims4()?;
        let p = self.patch_size;
        let (gh, gw) = (h / p, w / p);
        // (b, 3, gh, p, gw, p) -> (b, gh, gw, 3, p, p): patches row-major over the grid
        let patches = pixels
            .reshape((b, 3, gh, p, gw, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((b, gh * gw, 3 * p * p))?;
        let xs = self.patch_embed.forward(&patches)?; // (b, g*g, width)
        let c = xs.dim(2)?;
        if let Some(t) = trace.as_deref_mut() {
            t.patch_embed = xs.clone();
        }
        let cls = self.cls_token.expand((b, 1, c))?;
        let mut xs = Tensor::cat(&[&cls, &xs], 1)?.broadcast_add(&self.pos_embed)?; // (b, tokens, width)
        for block in &self.blocks {
            xs = block.forward(&xs)?;
            if let Some(t) = trace.as_deref_mut() {
                t.blocks.push(xs.clone());
            }
        }
        Ok(xs)
    }
}

/// `ln_visual`: LayerNorm over the vision width, applied to every token.
pub fn ln_visual(width: usize, eps: f64, vb: VarBuilder) -> Result<LayerNorm> {
    layer_norm(width, eps, vb)
}
