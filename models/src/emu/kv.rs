//! The language model's key/value cache, one entry per layer.
//!
//! In f32 on the CPU the cache is paged by forward: each forward appends one block of keys and
//! values (rows, heads, t, head_dim) that never moves, and every batch row keeps a table naming,
//! per block, the block row that holds its history. A beam reorder rewrites the tables (one index
//! per row and block), not the keys and values, and a decoding step's attention reads the blocks
//! through them, in parallel over (row, head), each row alone (so its bits do not depend on the
//! batch). Other dtypes and devices keep dense (b, heads, capacity, head_dim) buffers.
use std::cell::RefCell;
use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor};

use super::gemv::{dots_into, Kernel};

thread_local! {
    /// One (row, head)'s attention scores in [`PagedKv::attend`].
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Per-layer key/value cache.
#[derive(Debug, Clone, Default)]
pub struct LayerCache {
    pub(crate) kv: Vec<Option<LayerKv>>,
}

impl LayerCache {
    pub fn new(layers: usize) -> Self {
        Self { kv: vec![None; layers] }
    }
    /// Cached sequence length (0 when empty).
    pub fn len(&self) -> usize {
        self.kv.first().and_then(|c| c.as_ref()).map_or(0, LayerKv::len)
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
            match entry {
                LayerKv::Paged(p) => p.reorder(&list)?,
                LayerKv::Dense(d) => d.reorder(&rows.to_device(d.k.device())?)?,
            }
        }
        Ok(())
    }
}

/// One layer's cache.
#[derive(Debug, Clone)]
pub(crate) enum LayerKv {
    Paged(PagedKv),
    Dense(KvBuffer),
}

impl LayerKv {
    fn len(&self) -> usize {
        match self {
            LayerKv::Paged(p) => p.len,
            LayerKv::Dense(d) => d.len,
        }
    }
}

/// Appends k, v (b, heads, t, hd) and returns all the cached positions as (b, heads, past+t, hd)
/// (for a paged cache built only when there is a past).
pub(crate) fn append(
    slot: &mut Option<LayerKv>,
    k: &Tensor,
    v: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let (k, v) = (k.contiguous()?, v.contiguous()?);
    if slot.is_none() {
        let (_, heads, _, hd) = k.dims4()?;
        *slot = Some(if k.dtype() == DType::F32 && k.device().is_cpu() {
            LayerKv::Paged(PagedKv::new(heads, hd))
        } else {
            LayerKv::Dense(KvBuffer::default_for(&k)?)
        });
    }
    match slot {
        Some(LayerKv::Paged(p)) => {
            let first = p.len == 0;
            p.push(&k, &v)?;
            if first {
                Ok((k, v))
            } else {
                p.dense()
            }
        }
        Some(LayerKv::Dense(d)) => d.append(&k, &v),
        None => candle_core::bail!("kv cache: no layer entry"),
    }
}

/// A decoding step's attention over a paged cache: appends k, v (b, heads, 1, hd) and returns
/// softmax(q·kᵀ · scale, masked) · v as (b, 1, heads·hd). `mask` (b, past+1) u8, 1 = visible;
/// masked scores take f32::MIN (a fully masked row attends uniformly, as the dense path). `None`
/// when the cache is not paged or the inputs are not f32 on the CPU (the caller takes the dense
/// path).
pub(crate) fn decode_attention(
    slot: &mut Option<LayerKv>,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    scale: f32,
) -> Result<Option<Tensor>> {
    let Some(LayerKv::Paged(p)) = slot else { return Ok(None) };
    if q.dtype() != DType::F32 || !q.device().is_cpu() {
        return Ok(None);
    }
    let (b, heads, t, hd) = q.dims4()?;
    if t != 1 {
        return Ok(None);
    }
    p.push(&k.contiguous()?, &v.contiguous()?)?;
    let mask = mask.flatten_all()?.to_vec1::<u8>()?;
    let q = q.flatten_all()?.to_vec1::<f32>()?;
    let out = p.attend(&q, &mask, scale)?;
    Tensor::from_vec(out, (b, 1, heads * hd), &Device::Cpu).map(Some)
}

/// Keys and values of one forward: (rows, heads, t, hd) each, never modified.
#[derive(Debug)]
struct Block {
    t: usize,
    k: Vec<f32>,
    v: Vec<f32>,
}

/// The paged f32 CPU cache (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct PagedKv {
    heads: usize,
    hd: usize,
    len: usize,
    blocks: Vec<Arc<Block>>,
    /// `table[j][r]`: the row of block j holding batch row r's positions.
    table: Vec<Vec<u32>>,
}

impl PagedKv {
    fn new(heads: usize, hd: usize) -> Self {
        Self { heads, hd, len: 0, blocks: Vec::new(), table: Vec::new() }
    }

    /// Batch rows (those of the last reorder or block).
    fn batch(&self) -> usize {
        self.table.first().map_or(0, Vec::len)
    }

    /// Appends one block; its rows are the current batch rows (any count for the first block).
    fn push(&mut self, k: &Tensor, v: &Tensor) -> Result<()> {
        let (b, heads, t, hd) = k.dims4()?;
        if (heads, hd) != (self.heads, self.hd) || v.dims() != k.dims() {
            candle_core::bail!(
                "kv cache: keys {:?} / values {:?} do not fit {} heads of {}",
                k.dims(),
                v.dims(),
                self.heads,
                self.hd
            );
        }
        if !self.blocks.is_empty() && b != self.batch() {
            candle_core::bail!("kv cache holds {} rows, {b} appended", self.batch());
        }
        let flat = |x: &Tensor| x.flatten_all()?.to_vec1::<f32>();
        self.blocks.push(Arc::new(Block { t, k: flat(k)?, v: flat(v)? }));
        self.table.push((0..b as u32).collect());
        self.len += t;
        Ok(())
    }

    /// Row i becomes old row `rows[i]` (any count: beams expand and shrink the batch).
    fn reorder(&mut self, rows: &[usize]) -> Result<()> {
        let batch = self.batch();
        if let Some(&bad) = rows.iter().find(|&&r| r >= batch) {
            candle_core::bail!("kv cache reorder: row {bad} of {batch}")
        }
        for col in &mut self.table {
            *col = rows.iter().map(|&r| col[r]).collect();
        }
        Ok(())
    }

    /// Start of (block row `p`, head `h`)'s positions in a block of `t` positions.
    fn at(&self, p: u32, h: usize, t: usize) -> usize {
        (p as usize * self.heads + h) * t * self.hd
    }

    /// Keys and values of every position as dense (b, heads, len, hd) tensors.
    fn dense(&self) -> Result<(Tensor, Tensor)> {
        let batch = self.batch();
        let n = batch * self.heads * self.len * self.hd;
        let (mut k, mut v) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for r in 0..batch {
            for h in 0..self.heads {
                for (blk, col) in self.blocks.iter().zip(&self.table) {
                    let s = self.at(col[r], h, blk.t);
                    k.extend_from_slice(&blk.k[s..s + blk.t * self.hd]);
                    v.extend_from_slice(&blk.v[s..s + blk.t * self.hd]);
                }
            }
        }
        let shape = (batch, self.heads, self.len, self.hd);
        Ok((Tensor::from_vec(k, shape, &Device::Cpu)?, Tensor::from_vec(v, shape, &Device::Cpu)?))
    }

    /// One query per (row, head), q (b, heads, hd) → (b, heads, hd): scores by the GEMV's dot
    /// product, softmax without its division (`exp_in_place`), the weighted values summed in
    /// position order, then divided by the sum.
    fn attend(&self, q: &[f32], mask: &[u8], scale: f32) -> Result<Vec<f32>> {
        let (heads, hd, len) = (self.heads, self.hd, self.len);
        let batch = self.batch();
        if q.len() != batch * heads * hd || mask.len() != batch * len {
            candle_core::bail!("decode attention: query or mask does not fit the cache");
        }
        let kernel = Kernel::detect();
        let mut out = vec![0f32; q.len()];
        crate::pool::spinning_pieces_mut(&mut out, hd, |i, o| {
            let (r, h) = (i / heads, i % heads);
            let qi = &q[i * hd..(i + 1) * hd];
            // A per-thread buffer, reused across pieces and steps.
            SCORES.with_borrow_mut(|buf| {
                buf.clear();
                buf.resize(len, 0.0);
                let scores = &mut buf[..];
                let mut at = 0;
                for (blk, col) in self.blocks.iter().zip(&self.table) {
                    let s = self.at(col[r], h, blk.t);
                    let keys = &blk.k[s..s + blk.t * hd];
                    dots_into(kernel, qi, keys, blk.t, hd, &mut scores[at..at + blk.t]);
                    at += blk.t;
                }
                for (x, &keep) in scores.iter_mut().zip(&mask[r * len..(r + 1) * len]) {
                    *x = if keep != 0 { *x * scale } else { f32::MIN };
                }
                let sum = crate::attention::exp_in_place(scores);
                let mut at = 0;
                for (blk, col) in self.blocks.iter().zip(&self.table) {
                    let s = self.at(col[r], h, blk.t);
                    for (j, vals) in blk.v[s..s + blk.t * hd].chunks_exact(hd).enumerate() {
                        let e = scores[at + j];
                        for (y, x) in o.iter_mut().zip(vals) {
                            *y += e * x;
                        }
                    }
                    at += blk.t;
                }
                for y in o.iter_mut() {
                    *y /= sum;
                }
            });
        });
        Ok(out)
    }
}

/// One layer's keys and values as dense buffers (b, heads, capacity, head_dim) whose first `len`
/// positions are filled: appends write into them (`slice_set`), growing them geometrically;
/// attention reads views of the filled part; a reorder is an `index_select`.
#[derive(Debug)]
pub(crate) struct KvBuffer {
    k: Tensor,
    v: Tensor,
    len: usize,
}

impl Clone for KvBuffer {
    /// A copy with its own storage (appends write in place, so clones must not share it).
    fn clone(&self) -> Self {
        let copy = |t: &Tensor| t.copy().unwrap_or_else(|_| t.clone());
        KvBuffer { k: copy(&self.k), v: copy(&self.v), len: self.len }
    }
}

impl KvBuffer {
    /// An empty buffer of k's (b, heads, _, hd), dtype and device, room for k's positions and
    /// the decoding steps that follow.
    fn default_for(k: &Tensor) -> Result<Self> {
        let (b, h, t, d) = k.dims4()?;
        let cap = t + PREFILL_HEADROOM;
        let zeros = || Tensor::zeros((b, h, cap, d), k.dtype(), k.device());
        Ok(KvBuffer { k: zeros()?, v: zeros()?, len: 0 })
    }

    /// Appends k, v (b, heads, t, hd) and returns views of all the cached positions.
    fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let t = k.dim(2)?;
        let cap = self.k.dim(2)?;
        if self.len + t > cap {
            let new_cap = (self.len + t).max(2 * cap);
            self.k = grow(&self.k, new_cap)?;
            self.v = grow(&self.v, new_cap)?;
        }
        self.k.slice_set(k, 2, self.len)?;
        self.v.slice_set(v, 2, self.len)?;
        self.len += t;
        Ok((self.k.narrow(2, 0, self.len)?, self.v.narrow(2, 0, self.len)?))
    }

    /// Row i becomes old row `index[i]`.
    fn reorder(&mut self, index: &Tensor) -> Result<()> {
        self.k = self.k.index_select(index, 0)?;
        self.v = self.v.index_select(index, 0)?;
        Ok(())
    }
}

/// Free positions a prompt's dense cache starts with, so short generations never grow it
/// (longer ones grow it geometrically).
const PREFILL_HEADROOM: usize = 64;

/// A copy of `t` (b, heads, cap, hd) in a buffer of `cap` positions.
fn grow(t: &Tensor, cap: usize) -> Result<Tensor> {
    let (b, h, _, d) = t.dims4()?;
    let out = Tensor::zeros((b, h, cap, d), t.dtype(), t.device())?;
    out.slice_set(t, 2, 0)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv_of(b: usize, t: usize, seed: f32, dtype: DType) -> Tensor {
        let n = b * 2 * t * 3;
        let data: Vec<f32> = (0..n).map(|i| seed + i as f32).collect();
        Tensor::from_vec(data, (b, 2, t, 3), &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
    }

    fn f32s(t: &Tensor) -> Vec<f32> {
        t.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// Both kinds of cache, through appends (with growth), expanding, shrinking and permuting
    /// reorders and clones, read back exactly what `Tensor::cat` and `index_select` of the whole
    /// cache give, and a clone's appends leave the original alone.
    #[test]
    fn caches_match_cat_and_index_select() {
        // f32 on the CPU pages; bf16 stays dense.
        for dtype in [DType::F32, DType::BF16] {
            kv_case(dtype);
        }
    }

    fn kv_case(dtype: DType) {
        let kv = |b, t, seed| kv_of(b, t, seed, dtype);
        let mut cache = LayerCache::new(1);
        let mut want_k = kv(3, 4, 0.0);
        let mut want_v = kv(3, 4, 0.5);
        append(&mut cache.kv[0], &want_k, &want_v).unwrap();
        let paged = matches!(cache.kv[0], Some(LayerKv::Paged(_)));
        assert_eq!(paged, dtype == DType::F32, "{dtype:?}");
        let views = |c: &mut LayerCache| -> (Tensor, Tensor) {
            match c.kv[0].as_mut().unwrap() {
                LayerKv::Paged(p) => p.dense().unwrap(),
                LayerKv::Dense(d) => {
                    (d.k.narrow(2, 0, d.len).unwrap(), d.v.narrow(2, 0, d.len).unwrap())
                }
            }
        };
        let check = |c: &mut LayerCache, k: &Tensor, v: &Tensor, what: &str| {
            let (ck, cv) = views(c);
            assert_eq!(ck.dims(), k.dims(), "{what} ({dtype:?})");
            assert_eq!(f32s(&ck), f32s(k), "{what}: k ({dtype:?})");
            assert_eq!(f32s(&cv), f32s(v), "{what}: v ({dtype:?})");
            assert_eq!(c.len(), k.dim(2).unwrap());
        };
        let steps = [vec![2, 0, 0], vec![1, 1, 2, 0, 2], vec![4, 2], vec![1, 1, 0, 0]];
        for (step, rows) in steps.iter().enumerate() {
            let b = want_k.dim(0).unwrap();
            let (k, v) = (kv(b, 1, 100.0 * step as f32), kv(b, 1, -7.0));
            let (vk, vv) = append(&mut cache.kv[0], &k, &v).unwrap();
            want_k = Tensor::cat(&[&want_k, &k], 2).unwrap();
            want_v = Tensor::cat(&[&want_v, &v], 2).unwrap();
            assert_eq!(f32s(&vk), f32s(&want_k), "append {step}");
            assert_eq!(f32s(&vv), f32s(&want_v), "append {step}");
            check(&mut cache, &want_k, &want_v, &format!("append {step}"));
            let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
            let idx = Tensor::new(idx.as_slice(), &Device::Cpu).unwrap();
            cache.index_select(&idx).unwrap();
            want_k = want_k.index_select(&idx, 0).unwrap();
            want_v = want_v.index_select(&idx, 0).unwrap();
            check(&mut cache, &want_k, &want_v, &format!("reorder {step} {rows:?}"));
        }
        // Past the dense prompt's headroom, then a multi-position append over a past.
        let b = want_k.dim(0).unwrap();
        for step in 0..PREFILL_HEADROOM + 3 {
            let (k, v) = (kv(b, 1, step as f32), kv(b, 1, -(step as f32)));
            append(&mut cache.kv[0], &k, &v).unwrap();
            want_k = Tensor::cat(&[&want_k, &k], 2).unwrap();
            want_v = Tensor::cat(&[&want_v, &v], 2).unwrap();
        }
        let (k, v) = (kv(b, 3, 0.25), kv(b, 3, 0.75));
        append(&mut cache.kv[0], &k, &v).unwrap();
        want_k = Tensor::cat(&[&want_k, &k], 2).unwrap();
        want_v = Tensor::cat(&[&want_v, &v], 2).unwrap();
        check(&mut cache, &want_k, &want_v, "grown");
        let mut copy = cache.clone();
        append(&mut copy.kv[0], &kv(b, 1, 1e4), &kv(b, 1, 2e4)).unwrap();
        check(&mut cache, &want_k, &want_v, "original after the clone's append");
        let bad = Tensor::new(&[b as u32], &Device::Cpu).unwrap();
        assert!(cache.index_select(&bad).is_err(), "out-of-range row ({dtype:?})");
    }

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = crate::rng::SplitMix64::new(seed);
        (0..n).map(|_| (rng.uniform() * 2.0 - 1.0) as f32).collect()
    }

    fn tensor(data: Vec<f32>, shape: (usize, usize, usize, usize)) -> Tensor {
        Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
    }

    /// The dense path of `llm.rs`: softmax(q·kᵀ · scale, masked) · v.
    fn dense_attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, scale: f32) -> Tensor {
        let scores = (q.matmul(&k.t().unwrap()).unwrap() * scale as f64).unwrap();
        let min =
            Tensor::new(f32::MIN, &Device::Cpu).unwrap().broadcast_as(scores.shape()).unwrap();
        let scores = mask.broadcast_as(scores.shape()).unwrap().where_cond(&scores, &min).unwrap();
        let attn = candle_nn::ops::softmax_last_dim(&scores).unwrap();
        let (b, h, _, d) = q.dims4().unwrap();
        attn.matmul(v).unwrap().transpose(1, 2).unwrap().reshape((b, 1, h * d)).unwrap()
    }

    /// Decoding steps over a paged cache, with beam reorders and a left-padded prompt row, agree with the dense computation over the gathered cache, and each
    /// row's output is bit-identical when decoded alone.
    #[test]
    fn decode_attention_matches_dense_and_rows_are_independent() {
        let (heads, hd, prompt) = (3, 20, 5);
        let scale = 1.0 / (hd as f32).sqrt();
        let mut cache = LayerCache::new(1);
        let (k0, v0) = (random(2 * heads * prompt * hd, 1), random(2 * heads * prompt * hd, 2));
        let shape = (2, heads, prompt, hd);
        append(&mut cache.kv[0], &tensor(k0, shape), &tensor(v0, shape)).unwrap();
        // Row 1 is left-padded by two positions.
        let mut keep: Vec<Vec<u8>> = vec![vec![1; prompt], vec![0, 0, 1, 1, 1]];
        let expand = Tensor::new(&[0u32, 0, 1, 1, 1], &Device::Cpu).unwrap();
        cache.index_select(&expand).unwrap();
        keep = [0, 0, 1, 1, 1].iter().map(|&r| keep[r].clone()).collect();
        for step in 0..4u64 {
            let b = keep.len();
            let one = (b, heads, 1, hd);
            let q = tensor(random(b * heads * hd, 10 + step), one);
            let k = tensor(random(b * heads * hd, 20 + step), one);
            let v = tensor(random(b * heads * hd, 30 + step), one);
            for row in keep.iter_mut() {
                row.push(1);
            }
            let flat: Vec<u8> = keep.concat();
            let len = keep[0].len();
            let mask = Tensor::from_vec(flat, (b, 1, 1, len), &Device::Cpu).unwrap();
            let before = cache.clone();
            let got =
                decode_attention(&mut cache.kv[0], &q, &k, &v, &mask, scale).unwrap().unwrap();
            let (dk, dv) = match cache.kv[0].as_ref().unwrap() {
                LayerKv::Paged(p) => p.dense().unwrap(),
                LayerKv::Dense(_) => panic!("f32 on the CPU pages"),
            };
            let want = dense_attention(&q, &dk, &dv, &mask, scale);
            let diff = (&got - &want).unwrap().abs().unwrap().max_all().unwrap();
            assert!(diff.to_scalar::<f32>().unwrap() < 1e-6, "step {step}: {diff}");
            // Row r decoded alone: the same bits.
            for r in 0..b {
                let mut alone = before.clone();
                alone.index_select(&Tensor::new(&[r as u32], &Device::Cpu).unwrap()).unwrap();
                let pick = |t: &Tensor| t.narrow(0, r, 1).unwrap();
                let one = decode_attention(
                    &mut alone.kv[0],
                    &pick(&q),
                    &pick(&k),
                    &pick(&v),
                    &pick(&mask),
                    scale,
                )
                .unwrap()
                .unwrap();
                assert_eq!(f32s(&one), f32s(&pick(&got)), "step {step}, row {r}");
            }
            let rows = [[4usize, 0, 0, 2, 3], [1, 1, 1, 0, 4], [0, 1, 2, 3, 4], [3, 3, 2, 2, 0]];
            let rows = rows[step as usize];
            let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
            cache.index_select(&Tensor::new(idx.as_slice(), &Device::Cpu).unwrap()).unwrap();
            keep = rows.iter().map(|&r| keep[r].clone()).collect();
        }
    }
}
