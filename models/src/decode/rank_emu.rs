//! Option ranking on the Emu model: the shared-prefix computation and the reference-shaped naive
//! one (one full `[prompt ; candidates]` forward per segment), spec §3.7.
use crate::Result;
use candle_core::{DType, Device, IndexOp, Tensor, D};

use super::config::PAD_ID;
use super::emu_lm::{encode_images, ids_tensor};
use super::rank::{argsort_ascending, candidate_loss, segment_losses, segments};
use crate::emu::{Emu, KvCache};

/// Losses and the order `predict` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub losses: Vec<f32>,
    /// Candidate indices by ascending loss (`predict`'s return value).
    pub order: Vec<usize>,
}

impl Ranking {
    fn from_losses(losses: Vec<f32>) -> Self {
        let order = argsort_ascending(&losses);
        Ranking { losses, order }
    }
}

/// The prompt (BOS, one row) embedded with its images spliced: (1, P, h).
pub fn single_prompt_embeds(emu: &Emu, prompt: &str, pixels: Option<&Tensor>) -> Result<Tensor> {
    let ids = emu.tokenizer().encode(prompt);
    let images = encode_images(emu, pixels)?;
    Ok(emu.embed(&ids_tensor(&[ids], emu.device())?, images.as_ref())?)
}

/// Candidates tokenised without BOS/EOS (dummy prefix kept).
pub fn encode_candidates(emu: &Emu, candidates: &[String]) -> Result<Vec<Vec<u32>>> {
    let enc: Vec<Vec<u32>> =
        candidates.iter().map(|c| emu.tokenizer().encode_with(c, false)).collect();
    if let Some(i) = enc.iter().position(Vec::is_empty) {
        bail!("candidate {i} ({:?}) has no tokens", candidates[i]);
    }
    Ok(enc)
}

fn right_pad(rows: &[Vec<u32>], width: usize) -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
    let ids = rows
        .iter()
        .map(|r| r.iter().copied().chain(std::iter::repeat(PAD_ID)).take(width).collect())
        .collect();
    let mask = rows.iter().map(|r| (0..width).map(|i| u32::from(i < r.len())).collect()).collect();
    (ids, mask)
}

fn positions(rows: usize, start: usize, len: usize, device: &Device) -> Result<Tensor> {
    let row: Vec<i64> = (start as i64..(start + len) as i64).collect();
    Ok(Tensor::from_vec(row.repeat(rows), (rows, len), device)?)
}

/// −log_softmax(logits)[label] for `logits` (n, t, V) and labels (n, t) → (n, t) f32 on the CPU.
fn gather_nll(logits: &Tensor, labels: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
    let lp = candle_nn::ops::log_softmax(&logits.to_dtype(DType::F32)?, D::Minus1)?;
    let (n, t) = (labels.len(), labels.first().map_or(0, Vec::len));
    let idx = Tensor::from_vec(labels.concat(), (n, t, 1), logits.device())?;
    Ok(lp.gather(&idx, 2)?.squeeze(2)?.neg()?.to_device(&Device::Cpu)?.to_vec2::<f32>()?)
}

/// Token NLLs of every candidate over a shared prompt cache: the prompt (1, P, h) runs once; its
/// last logits score every candidate's first token; the cache is replicated for `chunk`
/// candidates at a time, which run their tokens but the last in one batch.
pub fn candidate_nll_shared(
    emu: &Emu,
    prompt_embeds: &Tensor,
    cands: &[Vec<u32>],
    chunk: usize,
) -> Result<Vec<Vec<f32>>> {
    let device = emu.device();
    let p = prompt_embeds.dim(1)?;
    let mut prefix = KvCache::new(emu);
    let hidden = emu.forward_embeds(
        prompt_embeds,
        &positions(1, 0, p, device)?,
        &Tensor::ones((1, p), DType::U32, device)?,
        &mut prefix,
    )?;
    let first = emu.lm_head(&hidden.i((.., p - 1..p, ..))?)?; // (1, 1, V)
    let mut out = Vec::with_capacity(cands.len());
    for group in cands.chunks(chunk.max(1)) {
        let n = group.len();
        let firsts: Vec<Vec<u32>> = group.iter().map(|c| vec![c[0]]).collect();
        let first_nll = gather_nll(&first.repeat((n, 1, 1))?, &firsts)?;
        let width = group.iter().map(Vec::len).max().unwrap_or(1) - 1; // inputs: all tokens but the last
        let mut rest = vec![Vec::new(); n];
        if width > 0 {
            let inputs: Vec<Vec<u32>> = group.iter().map(|c| c[..c.len() - 1].to_vec()).collect();
            let (ids, cmask) = right_pad(&inputs, width);
            let mask: Vec<Vec<u32>> = cmask
                .iter()
                .map(|m| std::iter::repeat_n(1, p).chain(m.iter().copied()).collect())
                .collect();
            let mut cache = prefix.clone();
            cache.index_select(&Tensor::zeros(n, DType::U32, device)?)?;
            let embeds = emu.embed(&ids_tensor(&ids, device)?, None)?;
            let hidden = emu.forward_embeds(
                &embeds,
                &positions(n, p, width, device)?,
                &ids_tensor(&mask, device)?,
                &mut cache,
            )?;
            let labels: Vec<Vec<u32>> = group
                .iter()
                .map(|c| c[1..].iter().copied().chain(std::iter::repeat(0)).take(width).collect())
                .collect();
            let nll = gather_nll(&emu.lm_head(&hidden)?, &labels)?;
            for (i, c) in group.iter().enumerate() {
                rest[i] = nll[i][..c.len() - 1].to_vec();
            }
        }
        for i in 0..n {
            let mut v = vec![first_nll[i][0]];
            v.extend_from_slice(&rest[i]);
            out.push(v);
        }
    }
    Ok(out)
}

/// Shared-prefix ranking: losses with the segment denominators, and the order.
pub fn rank_shared(
    emu: &Emu,
    prompt_embeds: &Tensor,
    cands: &[Vec<u32>],
    n_segments: usize,
    chunk: usize,
) -> Result<Ranking> {
    let nll = candidate_nll_shared(emu, prompt_embeds, cands, chunk)?;
    Ok(Ranking::from_losses(segment_losses(&nll, prompt_embeds.dim(1)?, n_segments)?))
}

/// Reference-shaped ranking: per segment one forward of `[prompt ; right-padded candidates]`,
/// positions 0..L−1, shifted cross-entropy over candidate tokens divided by `L − 1`.
pub fn rank_naive(
    emu: &Emu,
    prompt_embeds: &Tensor,
    cands: &[Vec<u32>],
    n_segments: usize,
) -> Result<Ranking> {
    let device = emu.device();
    let p = prompt_embeds.dim(1)?;
    let mut losses = Vec::with_capacity(cands.len());
    for seg in segments(cands.len(), n_segments)? {
        let group = &cands[seg];
        let n = group.len();
        let lc = group.iter().map(Vec::len).max().unwrap_or(0);
        let (ids, cmask) = right_pad(group, lc);
        let cand_embeds = emu.embed(&ids_tensor(&ids, device)?, None)?;
        let embeds = Tensor::cat(
            &[&prompt_embeds.repeat((n, 1, 1))?.to_dtype(cand_embeds.dtype())?, &cand_embeds],
            1,
        )?;
        let mask: Vec<Vec<u32>> = cmask
            .iter()
            .map(|m| std::iter::repeat_n(1, p).chain(m.iter().copied()).collect())
            .collect();
        let mut cache = KvCache::new(emu);
        let hidden = emu.forward_embeds(
            &embeds,
            &positions(n, 0, p + lc, device)?,
            &ids_tensor(&mask, device)?,
            &mut cache,
        )?;
        // Logit at position t predicts label t+1: candidate token k sits at P + k.
        let logits = emu.lm_head(&hidden.i((.., p - 1..p + lc - 1, ..))?)?;
        let labels: Vec<Vec<u32>> = ids
            .iter()
            .map(|r| r.iter().map(|&t| if t == PAD_ID { 0 } else { t }).collect())
            .collect();
        let nll = gather_nll(&logits, &labels)?;
        for (i, c) in group.iter().enumerate() {
            losses.push(candidate_loss(&nll[i][..c.len()], p, lc));
        }
    }
    Ok(Ranking::from_losses(losses))
}
