//! Option ranking of the classification path (`PredictClassMixin.predict`, spec §3.7).
//!
//! The reference scores each segment of candidates as `[prompt ; candidates]` with a causal LM
//! loss averaged over *all* `P + Lc − 1` shifted positions (`Lc` = longest candidate of the
//! segment), ignored positions included. Because candidates are right-padded and attention is
//! causal, a candidate's token log-probs do not depend on its segment, so they can be computed
//! once over a shared prompt KV cache; the segment only changes the denominator.
use std::ops::Range;

use crate::Result;

/// Contiguous candidate segments: `n_cands / n_segments` each, the last one takes the rest.
pub fn segments(n_cands: usize, n_segments: usize) -> Result<Vec<Range<usize>>> {
    if n_segments == 0 || n_segments > n_cands {
        bail!("n_segments must be between 1 and the number of candidates ({n_cands}), got {n_segments}");
    }
    let size = n_cands / n_segments;
    Ok((0..n_segments)
        .map(|s| {
            let start = s * size;
            let end = if s + 1 == n_segments { n_cands } else { start + size };
            start..end
        })
        .collect())
}

/// Per-candidate loss: the summed token negative log-likelihoods divided by `P + Lc − 1`
/// (`CrossEntropyLoss(reduction="none")` then the mean over every shifted position).
pub fn candidate_loss(token_nll: &[f32], prompt_len: usize, segment_max_len: usize) -> f32 {
    let sum: f32 = token_nll.iter().sum();
    sum / (prompt_len + segment_max_len - 1) as f32
}

/// Losses of all candidates given their token NLLs and lengths, with the segment denominators.
pub fn segment_losses(
    token_nll: &[Vec<f32>],
    prompt_len: usize,
    n_segments: usize,
) -> Result<Vec<f32>> {
    let mut losses = Vec::with_capacity(token_nll.len());
    for seg in segments(token_nll.len(), n_segments)? {
        let lc = token_nll[seg.clone()].iter().map(Vec::len).max().unwrap_or(0);
        losses.extend(token_nll[seg].iter().map(|nll| candidate_loss(nll, prompt_len, lc)));
    }
    Ok(losses)
}

/// What `predict` returns: candidate indices sorted by ascending loss (`argsort`).
pub fn argsort_ascending(losses: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..losses.len()).collect();
    order.sort_by(|&a, &b| losses[a].total_cmp(&losses[b]));
    order
}

/// Negative log-likelihood of `label` under one row of logits (f32 log-softmax).
pub fn token_nll(logits_row: &[f32], label: u32) -> f32 {
    let max = logits_row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits_row.iter().map(|&x| ((x - max) as f64).exp()).sum();
    (max + sum.ln() as f32) - logits_row[label as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_last_takes_remainder() {
        assert_eq!(segments(4, 2).unwrap(), vec![0..2, 2..4]);
        assert_eq!(segments(5, 2).unwrap(), vec![0..2, 2..5]);
        assert_eq!(segments(100, 100).unwrap().len(), 100);
        assert!(segments(3, 4).is_err());
        assert!(segments(3, 0).is_err());
    }

    #[test]
    fn denominators_follow_the_segment() {
        // P = 16; candidates of 1, 1, 2, 4 tokens with NLL 1 per token.
        let nll = vec![vec![1.0], vec![1.0], vec![1.0; 2], vec![1.0; 4]];
        let one = segment_losses(&nll, 16, 1).unwrap();
        assert_eq!(one, vec![1.0 / 19.0, 1.0 / 19.0, 2.0 / 19.0, 4.0 / 19.0]);
        let two = segment_losses(&nll, 16, 2).unwrap();
        assert_eq!(two, vec![1.0 / 16.0, 1.0 / 16.0, 2.0 / 19.0, 4.0 / 19.0]);
    }

    #[test]
    fn order_is_ascending_loss() {
        let order = argsort_ascending(&[0.61, 0.55, 1.01, 2.17]);
        assert_eq!(order, vec![1, 0, 2, 3]);
    }

    #[test]
    fn nll_is_negative_log_softmax() {
        let nll = token_nll(&[0.0, (3.0f32).ln()], 1);
        assert!((nll - (4.0f32 / 3.0).ln()).abs() < 1e-6);
    }
}
