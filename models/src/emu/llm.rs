//! The multimodal LLaMA (`decoder.lm.*`, emu-model.md §1.6): HF `LlamaForCausalLM` (transformers
//! 4.29) driven with input embeddings, per-row position ids, a padding-aware causal mask with the
//! dtype's most negative finite value (clamped, so fully masked rows attend uniformly), a KV cache
//! that can be reordered for beams, and two heads (`lm_head`, `stu_regress_head`).
use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{embedding, Embedding, VarBuilder};

use super::linear::{linear_no_bias, matmul, Linear};

use super::cformer::min_value;
use super::config::LlamaConfig;
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
        cache: &mut Option<KvBuffer>,
        decode: bool,
    ) -> Result<Tensor> {
        let (b, t, _) = xs.dims3()?;
        let proj = |l: &Linear, x: &Tensor| if decode { l.forward_decode(x) } else { l.forward(x) };
        let split = |x: Tensor| -> Result<Tensor> {
            x.reshape((b, t, self.num_heads, self.head_dim))?.transpose(1, 2)?.contiguous()
            // (b, heads, t, hd)
        };
        let q = split(proj(&self.q_proj, xs)?)?;
        let k = split(proj(&self.k_proj, xs)?)?;
        let v = split(proj(&self.v_proj, xs)?)?;
        let q = candle_nn::rotary_emb::rope(&q, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&k, cos, sin)?;
        let (k, v) = KvBuffer::append(cache, &k, &v)?; // (b, heads, past+t, hd), views
        let scores = (matmul(&q, &k.t()?)? / (self.head_dim as f64).sqrt())?; // (b, heads, t, past+t)
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
    fn forward(&self, xs: &Tensor, decode: bool) -> Result<Tensor> {
        let proj = |l: &Linear, x: &Tensor| if decode { l.forward_decode(x) } else { l.forward(x) };
        let gate = candle_nn::ops::silu(&proj(&self.gate_proj, xs)?)?;
        proj(&self.down_proj, &(gate * proj(&self.up_proj, xs)?)?)
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

/// One layer's keys and values: buffers (b, heads, capacity, head_dim) whose first `len`
/// positions are filled. Appending writes into the buffers (`slice_set`) and grows them
/// geometrically, so a decoding step allocates no new cache; attention reads views of the
/// filled part.
#[derive(Debug)]
pub(crate) struct KvBuffer {
    k: Tensor,
    v: Tensor,
    len: usize,
    /// Buffers of the same shape that a same-size reorder copies into (then the two swap).
    spare: Option<(Tensor, Tensor)>,
}

impl Clone for KvBuffer {
    /// A copy with its own storage (appends write in place, so clones must not share it).
    fn clone(&self) -> Self {
        let copy = |t: &Tensor| t.copy().unwrap_or_else(|_| t.clone());
        KvBuffer { k: copy(&self.k), v: copy(&self.v), len: self.len, spare: None }
    }
}

impl KvBuffer {
    /// Appends k, v (b, heads, t, hd) and returns views of all the cached positions.
    fn append(slot: &mut Option<KvBuffer>, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (k, v) = (k.contiguous()?, v.contiguous()?);
        let t = k.dim(2)?;
        let buf = match slot {
            Some(buf) => {
                let cap = buf.k.dim(2)?;
                if buf.len + t > cap {
                    let new_cap = (buf.len + t).max(2 * cap);
                    buf.k = grow(&buf.k, new_cap)?;
                    buf.v = grow(&buf.v, new_cap)?;
                    buf.spare = None;
                }
                buf.k.slice_set(&k, 2, buf.len)?;
                buf.v.slice_set(&v, 2, buf.len)?;
                buf.len += t;
                buf
            }
            None => {
                // Room for the decoding steps that follow a prompt.
                let cap = t + PREFILL_HEADROOM;
                let (bk, bv) = (grow(&k, cap)?, grow(&v, cap)?);
                slot.insert(KvBuffer { k: bk, v: bv, len: t, spare: None })
            }
        };
        Ok((buf.k.narrow(2, 0, buf.len)?, buf.v.narrow(2, 0, buf.len)?))
    }

    /// Row i becomes old row `rows[i]`. The same number of rows on the CPU: copied into the spare
    /// buffers (no allocation after the first time); otherwise `index_select`.
    fn reorder(&mut self, rows: &[usize], index: &Tensor) -> Result<()> {
        let b = self.k.dim(0)?;
        if rows.len() != b || !self.k.device().is_cpu() {
            self.k = self.k.index_select(index, 0)?;
            self.v = self.v.index_select(index, 0)?;
            self.spare = None;
            return Ok(());
        }
        let (sk, sv) = match self.spare.take() {
            Some(s) => s,
            None => (self.k.zeros_like()?, self.v.zeros_like()?),
        };
        if self.k.dtype() == DType::F32 {
            let op = ReorderRows { rows, len: self.len };
            sk.inplace_op2(&self.k, &op)?;
            sv.inplace_op2(&self.v, &op)?;
        } else {
            for (i, &r) in rows.iter().enumerate() {
                sk.slice_set(&self.k.narrow(0, r, 1)?, 0, i)?;
                sv.slice_set(&self.v.narrow(0, r, 1)?, 0, i)?;
            }
        }
        let old_k = std::mem::replace(&mut self.k, sk);
        let old_v = std::mem::replace(&mut self.v, sv);
        self.spare = Some((old_k, old_v));
        Ok(())
    }
}

/// `dst[i, :, ..len, :] = src[rows[i], :, ..len, :]` for (b, heads, cap, hd) f32 buffers of
/// one shape on the CPU: only the filled positions, the rows copied in parallel.
struct ReorderRows<'a> {
    rows: &'a [usize],
    len: usize,
}

impl candle_core::InplaceOp2 for ReorderRows<'_> {
    fn name(&self) -> &'static str {
        "kv-reorder-rows"
    }

    fn cpu_fwd(
        &self,
        dst: &mut candle_core::CpuStorage,
        dl: &candle_core::Layout,
        src: &candle_core::CpuStorage,
        sl: &candle_core::Layout,
    ) -> Result<()> {
        use candle_core::CpuStorage::F32;
        use rayon::prelude::*;
        let (F32(d), F32(s)) = (dst, src) else {
            candle_core::bail!("kv-reorder-rows: f32 buffers expected")
        };
        let (Some((d0, d1)), Some((s0, s1))) = (dl.contiguous_offsets(), sl.contiguous_offsets())
        else {
            candle_core::bail!("kv-reorder-rows: contiguous buffers expected")
        };
        let dims = dl.dims();
        if dims != sl.dims() || dims.len() != 4 || dims[0] != self.rows.len() || self.len > dims[2]
        {
            candle_core::bail!("kv-reorder-rows: shapes {:?} and {:?} do not fit", dims, sl.dims())
        }
        let (heads, cap, hd) = (dims[1], dims[2], dims[3]);
        let row = heads * cap * hd;
        let (d, s) = (&mut d[d0..d1], &s[s0..s1]);
        if let Some(&bad) = self.rows.iter().find(|&&r| r >= dims[0]) {
            candle_core::bail!("kv-reorder-rows: row {bad} of {}", dims[0])
        }
        d.par_chunks_mut(row).zip(self.rows.par_iter()).for_each(|(out, &r)| {
            let from = &s[r * row..(r + 1) * row];
            for h in 0..heads {
                let at = h * cap * hd;
                out[at..at + self.len * hd].copy_from_slice(&from[at..at + self.len * hd]);
            }
        });
        Ok(())
    }
}

/// Free positions a prompt's cache starts with, so short generations never grow it (longer ones
/// grow it geometrically).
const PREFILL_HEADROOM: usize = 64;

/// A copy of `t` (b, heads, cap, hd) in a buffer of `cap` positions.
fn grow(t: &Tensor, cap: usize) -> Result<Tensor> {
    let (b, h, _, d) = t.dims4()?;
    let out = Tensor::zeros((b, h, cap, d), t.dtype(), t.device())?;
    out.slice_set(t, 2, 0)?;
    Ok(out)
}

/// Per-layer key/value cache, each (b, heads, len, head_dim).
#[derive(Debug, Clone, Default)]
pub struct LayerCache {
    pub(crate) kv: Vec<Option<KvBuffer>>,
}

impl LayerCache {
    pub fn new(layers: usize) -> Self {
        Self { kv: vec![None; layers] }
    }
    /// Cached sequence length (0 when empty).
    pub fn len(&self) -> usize {
        self.kv.first().and_then(|c| c.as_ref()).map_or(0, |c| c.len)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reorders / expands batch rows: row i of the new cache is row `rows[i]` of the old one.
    pub fn index_select(&mut self, rows: &Tensor) -> Result<()> {
        let list: Vec<usize> = rows
            .to_dtype(DType::U32)?
            .to_device(&Device::Cpu)?
            .to_vec1::<u32>()?
            .into_iter()
            .map(|r| r as usize)
            .collect();
        for entry in self.kv.iter_mut().flatten() {
            let rows = rows.to_device(entry.k.device())?;
            entry.reorder(&list, &rows)?;
        }
        Ok(())
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
        // A decoding step (one new position over a cache) runs its projections through the
        // per-row GEMV; prefill and multi-token forwards through the matmul.
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
            let mlp = layer.mlp.forward(&layer.post_attention_layernorm.forward(&xs1)?, decode)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn kv_of(b: usize, t: usize, seed: f32, dtype: DType) -> Tensor {
        let n = b * 2 * t * 3;
        let data: Vec<f32> = (0..n).map(|i| seed + i as f32).collect();
        Tensor::from_vec(data, (b, 2, t, 3), &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
    }

    /// Appends (with growth), same-size and resizing reorders and clones read back exactly what
    /// `Tensor::cat` and `index_select` of the whole cache give, and a clone's appends leave the
    /// original alone.
    #[test]
    fn kv_buffer_matches_cat_and_index_select() {
        // f32 reorders copy the filled positions in parallel; other dtypes row by row.
        for dtype in [DType::F32, DType::BF16] {
            kv_buffer_case(dtype);
        }
    }

    fn kv_buffer_case(dtype: DType) {
        let kv = |b, t, seed| kv_of(b, t, seed, dtype);
        let mut slot = None;
        let mut want_k = kv(3, 4, 0.0);
        let mut want_v = kv(3, 4, 0.5);
        KvBuffer::append(&mut slot, &want_k, &want_v).unwrap();
        let check = |slot: &Option<KvBuffer>, k: &Tensor, v: &Tensor, what: &str| {
            let buf = slot.as_ref().unwrap();
            let len = buf.len;
            let f32s = |t: &Tensor| -> Vec<f32> {
                t.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
            };
            assert_eq!(f32s(&buf.k.narrow(2, 0, len).unwrap()), f32s(k), "{what}: k ({dtype:?})");
            assert_eq!(f32s(&buf.v.narrow(2, 0, len).unwrap()), f32s(v), "{what}: v ({dtype:?})");
        };
        for (step, rows) in
            [vec![2, 0, 0], vec![1, 1, 2], vec![0, 2], vec![1, 1, 0, 0]].iter().enumerate()
        {
            let (k, v) = (
                kv(want_k.dim(0).unwrap(), 1, 100.0 * step as f32),
                kv(want_k.dim(0).unwrap(), 1, -7.0),
            );
            let (vk, vv) = KvBuffer::append(&mut slot, &k, &v).unwrap();
            want_k = Tensor::cat(&[&want_k, &k], 2).unwrap();
            want_v = Tensor::cat(&[&want_v, &v], 2).unwrap();
            assert_eq!(vk.dims(), want_k.dims());
            assert_eq!(vv.dims(), want_v.dims());
            check(&slot, &want_k, &want_v, &format!("append {step}"));
            let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
            let idx = Tensor::new(idx.as_slice(), &Device::Cpu).unwrap();
            slot.as_mut().unwrap().reorder(rows, &idx).unwrap();
            want_k = want_k.index_select(&idx, 0).unwrap();
            want_v = want_v.index_select(&idx, 0).unwrap();
            check(&slot, &want_k, &want_v, &format!("reorder {step} {rows:?}"));
        }
        // Past the prompt's headroom: the buffers grow, then a same-size reorder copies again.
        let b = want_k.dim(0).unwrap();
        for step in 0..PREFILL_HEADROOM + 3 {
            let (k, v) = (kv(b, 1, step as f32), kv(b, 1, -(step as f32)));
            KvBuffer::append(&mut slot, &k, &v).unwrap();
            want_k = Tensor::cat(&[&want_k, &k], 2).unwrap();
            want_v = Tensor::cat(&[&want_v, &v], 2).unwrap();
        }
        check(&slot, &want_k, &want_v, "grown");
        let rows: Vec<usize> = (0..b).rev().collect();
        let idx =
            Tensor::new(rows.iter().map(|&r| r as u32).collect::<Vec<_>>(), &Device::Cpu).unwrap();
        slot.as_mut().unwrap().reorder(&rows, &idx).unwrap();
        want_k = want_k.index_select(&idx, 0).unwrap();
        want_v = want_v.index_select(&idx, 0).unwrap();
        check(&slot, &want_k, &want_v, "reorder after growth");
        let mut copy = slot.clone();
        KvBuffer::append(&mut copy, &kv(b, 1, 1e4), &kv(b, 1, 2e4)).unwrap();
        check(&slot, &want_k, &want_v, "original after the clone's append");
    }
}
