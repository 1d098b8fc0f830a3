//! Beam search of transformers 4.29 (`GenerationMixin.beam_search` + `BeamSearchScorer`),
//! spec §3.3, over a [`StepModel`].
use crate::Result;

use super::config::GenerationConfig;
use super::hypotheses::BeamHypotheses;
use super::lm::{Logits, StepModel};
use super::processors::{apply_min_length, apply_prefix_constraint, log_softmax};
use super::trie::TokenTrie;
use super::Generated;

/// One candidate of the top-2N selection: summed score, token, beam within the item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub score: f32,
    pub token: u32,
    pub beam: usize,
}

/// `torch.topk(scores.view(batch, N·V), 2N, sorted=True)` for one item: the `k` best of
/// `log_probs[beam][tok] + beam_scores[beam]` (f32 addition), ties resolved by the lower flat
/// index `beam·V + tok`.
pub fn top_candidates(
    logits: &Logits,
    first_row: usize,
    beam_scores: &[f32],
    k: usize,
) -> Vec<Candidate> {
    let mut best: Vec<Candidate> = Vec::with_capacity(k + 1);
    let better = |a: &Candidate, b: &Candidate| {
        a.score > b.score || (a.score == b.score && (a.beam, a.token) < (b.beam, b.token))
    };
    for (beam, &bs) in beam_scores.iter().enumerate() {
        for (tok, &lp) in logits.row(first_row + beam).iter().enumerate() {
            let c = Candidate { score: lp + bs, token: tok as u32, beam };
            if best.len() == k && !better(&c, &best[k - 1]) {
                continue;
            }
            let pos = best.iter().position(|b| better(&c, b)).unwrap_or(best.len());
            best.insert(pos, c);
            best.truncate(k);
        }
    }
    best
}

/// Outcome of [`process_item`] for one unfinished item: the next `N` running beams.
#[derive(Debug, Clone, PartialEq)]
pub struct NextBeams {
    pub scores: Vec<f32>,
    pub tokens: Vec<u32>,
    pub sources: Vec<usize>,
}

/// `BeamSearchScorer.process` for one item that is not done: walks the 2N candidates in order;
/// an EOS candidate ranked within the top N closes its source beam as a hypothesis (tracked tokens
/// without EOS, score including the EOS log-prob), EOS ranked lower is skipped; other candidates
/// fill the next beams until N are found.
pub fn process_item(
    cands: &[Candidate],
    tracked: &[Vec<u32>],
    hyps: &mut BeamHypotheses,
    num_beams: usize,
    eos: u32,
) -> Result<NextBeams> {
    let mut next = NextBeams { scores: Vec::new(), tokens: Vec::new(), sources: Vec::new() };
    for (rank, c) in cands.iter().enumerate() {
        if c.token == eos {
            if rank >= num_beams {
                continue;
            }
            hyps.add(tracked[c.beam].clone(), c.score as f64);
        } else {
            next.scores.push(c.score);
            next.tokens.push(c.token);
            next.sources.push(c.beam);
        }
        if next.tokens.len() == num_beams {
            break;
        }
    }
    if next.tokens.len() < num_beams {
        bail!(
            "beam search: fewer than {num_beams} non-EOS candidates among the top {}",
            cands.len()
        );
    }
    Ok(next)
}

/// Beam search over every prompt row of `model`; one [`Generated`] per row.
pub fn beam_search<M: StepModel>(
    model: &mut M,
    cfg: &GenerationConfig,
    allowed: Option<&TokenTrie>,
) -> Result<Vec<Generated>> {
    let n = cfg.num_beams;
    let max_length = cfg.max_length();
    let prompt = model.prompt_logits()?;
    let batch = prompt.rows;
    // Expand every prompt row N times (the prompt itself is computed once per row).
    let expand: Vec<usize> = (0..batch).flat_map(|b| std::iter::repeat_n(b, n)).collect();
    model.reorder(&expand)?;
    let mut logits = prompt.select(&expand);

    let mut tracked: Vec<Vec<Vec<u32>>> = vec![vec![vec![cfg.bos_token_id]; n]; batch];
    let mut beam_scores: Vec<Vec<f32>> =
        vec![std::iter::once(0.0).chain(std::iter::repeat_n(-1e9, n - 1)).collect(); batch];
    let mut hyps: Vec<BeamHypotheses> = (0..batch)
        .map(|_| BeamHypotheses::new(n, cfg.length_penalty, cfg.early_stopping, max_length))
        .collect();
    let mut done = vec![false; batch];
    // Items still decoded by the model, in row order (N rows each). Done items are dropped: the
    // reference keeps feeding them PAD, which cannot change any output.
    let mut active: Vec<usize> = (0..batch).collect();
    let mut tracked_len = 1;

    loop {
        log_softmax(&mut logits);
        apply_min_length(&mut logits, tracked_len, cfg.min_length, cfg.eos_token_id);
        if let Some(trie) = allowed {
            let generated: Vec<Vec<u32>> =
                active.iter().flat_map(|&b| tracked[b].iter().map(|t| t[1..].to_vec())).collect();
            apply_prefix_constraint(&mut logits, &generated, trie);
        }
        let cur_len = tracked_len + 1;
        let mut sources = Vec::new();
        let mut tokens = Vec::new();
        let mut still_active = Vec::new();
        for (pos, &b) in active.iter().enumerate() {
            let cands = top_candidates(&logits, pos * n, &beam_scores[b], 2 * n);
            let next = process_item(&cands, &tracked[b], &mut hyps[b], n, cfg.eos_token_id)?;
            let best = cands.iter().map(|c| c.score).fold(f32::NEG_INFINITY, f32::max);
            done[b] = done[b] || hyps[b].is_done(best as f64, cur_len);
            tracked[b] = next
                .sources
                .iter()
                .zip(&next.tokens)
                .map(|(&s, &t)| {
                    let mut seq = tracked[b][s].clone();
                    seq.push(t);
                    seq
                })
                .collect();
            beam_scores[b] = next.scores;
            if !done[b] {
                still_active.push(b);
                sources.extend(next.sources.iter().map(|s| pos * n + s));
                tokens.extend(next.tokens);
            }
        }
        tracked_len += 1;
        active = still_active;
        if active.is_empty() || tracked_len >= max_length {
            break;
        }
        model.reorder(&sources)?;
        logits = model.step(&tokens)?;
    }
    Ok(finalize(&tracked, &beam_scores, &mut hyps, &done, max_length, cfg.eos_token_id))
}

/// `BeamSearchScorer.finalize`: open beams of unfinished items become hypotheses, the best
/// hypothesis of every item is returned; EOS is appended when the hypothesis is shorter than
/// `min(longest best + 1, max_length)` (i.e. when it ended with EOS).
pub fn finalize(
    tracked: &[Vec<Vec<u32>>],
    beam_scores: &[Vec<f32>],
    hyps: &mut [BeamHypotheses],
    done: &[bool],
    max_length: usize,
    eos: u32,
) -> Vec<Generated> {
    for (b, h) in hyps.iter_mut().enumerate() {
        if done[b] {
            continue;
        }
        for (seq, &score) in tracked[b].iter().zip(&beam_scores[b]) {
            h.add(seq.clone(), score as f64);
        }
    }
    let best: Vec<_> =
        hyps.iter().map(|h| h.best().cloned().expect("at least num_beams hypotheses")).collect();
    let sent_max_len = (best.iter().map(|h| h.tokens.len()).max().unwrap_or(0) + 1).min(max_length);
    best.into_iter()
        .map(|h| {
            let mut ids = h.tokens[1..].to_vec();
            if h.tokens.len() < sent_max_len {
                ids.push(eos);
            }
            Generated { ids, score: Some(h.score as f32) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::config::EarlyStopping;
    use super::super::toy::ToyLm;
    use super::*;

    fn cands(v: &[(f32, u32, usize)]) -> Vec<Candidate> {
        v.iter().map(|&(score, token, beam)| Candidate { score, token, beam }).collect()
    }

    #[test]
    fn top_candidates_sorted_with_index_ties() {
        let l = Logits::new(2, 3, vec![-1.0, -2.0, -0.5, -1.0, -0.1, -3.0]);
        let c = top_candidates(&l, 0, &[0.0, -1.0], 3);
        assert_eq!(c, cands(&[(-0.5, 2, 0), (-1.0, 0, 0), (-1.1, 1, 1)]));
        let c = top_candidates(&l, 0, &[0.0, 0.0], 2);
        assert_eq!(c, cands(&[(-0.1, 1, 1), (-0.5, 2, 0)]));
    }

    #[test]
    fn eos_outside_top_n_is_ignored_and_inside_closes_a_hypothesis() {
        let tracked = vec![vec![1, 10], vec![1, 11]];
        let mut h = BeamHypotheses::new(2, 0.0, EarlyStopping::Heuristic, 9);
        // ranks: 0 tok 5, 1 EOS (beam 1) → hypothesis, 2 tok 6, 3 EOS (rank ≥ N) → skipped.
        let c = cands(&[(-1.0, 5, 0), (-1.5, 2, 1), (-2.0, 6, 1), (-2.5, 2, 0)]);
        let next = process_item(&c, &tracked, &mut h, 2, 2).unwrap();
        assert_eq!(
            next,
            NextBeams { scores: vec![-1.0, -2.0], tokens: vec![5, 6], sources: vec![0, 1] }
        );
        assert_eq!(h.hyps.len(), 1);
        assert_eq!(h.hyps[0].tokens, vec![1, 11]);
        assert_eq!(h.hyps[0].score, -1.5);
    }

    #[test]
    fn too_many_eos_is_an_error() {
        let tracked = vec![vec![1], vec![1]];
        let mut h = BeamHypotheses::new(2, 0.0, EarlyStopping::Heuristic, 9);
        let c = cands(&[(-1.0, 2, 0), (-1.5, 2, 1), (-2.0, 6, 1), (-2.5, 2, 0)]);
        assert!(process_item(&c, &tracked, &mut h, 2, 2).is_err());
    }

    #[test]
    fn finalize_appends_eos_only_to_short_hypotheses() {
        let mut hyps = vec![
            BeamHypotheses::new(1, 0.0, EarlyStopping::Heuristic, 4),
            BeamHypotheses::new(1, 0.0, EarlyStopping::Heuristic, 4),
        ];
        hyps[0].add(vec![1, 7], -1.0); // ended with EOS earlier
        let out = finalize(
            &[vec![vec![1, 7, 8]], vec![vec![1, 5, 6, 9]]],
            &[vec![-5.0], vec![-2.0]],
            &mut hyps,
            &[true, false],
            4,
            2,
        );
        assert_eq!(out[0], Generated { ids: vec![7, 2], score: Some(-1.0) });
        assert_eq!(out[1], Generated { ids: vec![5, 6, 9], score: Some(-2.0) });
    }

    /// Hand-checked toy: vocab {0, EOS=1... } see ToyLm docs. Two beams, length penalty 1.
    #[test]
    fn toy_beam_search_matches_hand_computation() {
        let mut lm = ToyLm::chain();
        let cfg = GenerationConfig {
            num_beams: 2,
            max_new_tokens: 4,
            length_penalty: 0.0,
            eos_token_id: 2,
            pad_token_id: 0,
            bos_token_id: 1,
            ..GenerationConfig::default()
        };
        let out = beam_search(&mut lm, &cfg, None).unwrap();
        let (ids, score) = ToyLm::chain_expected_beam2_lp0();
        assert_eq!(out[0].ids, ids);
        assert!((out[0].score.unwrap() - score).abs() < 1e-5);
    }

    fn toy_cfg(num_beams: usize, length_penalty: f64, max_new_tokens: usize) -> GenerationConfig {
        GenerationConfig {
            num_beams,
            max_new_tokens,
            length_penalty,
            eos_token_id: 2,
            pad_token_id: 0,
            bos_token_id: 1,
            ..GenerationConfig::default()
        }
    }

    #[test]
    fn batch_items_equal_items_run_alone() {
        use super::super::toy::hashed_dist;
        for lp in [0.0, -1.0, 1.0] {
            let cfg = toy_cfg(3, lp, 7);
            let batch = beam_search(&mut ToyLm::new(4, hashed_dist), &cfg, None).unwrap();
            for (p, row) in batch.iter().enumerate() {
                let mut single = ToyLm::new(p + 1, hashed_dist);
                single.reorder(&[p]).unwrap();
                assert_eq!(
                    &beam_search(&mut single, &cfg, None).unwrap()[0],
                    row,
                    "lp {lp} row {p}"
                );
            }
        }
    }

    /// Every hypothesis score equals its summed log-probs over (1 + generated tokens) ** lp.
    #[test]
    fn returned_scores_are_normalised_sums() {
        use super::super::processors::log_softmax_row;
        use super::super::toy::hashed_dist;
        for lp in [0.0, -1.0, 1.0] {
            let out =
                beam_search(&mut ToyLm::new(3, hashed_dist), &toy_cfg(4, lp, 6), None).unwrap();
            for (p, g) in out.iter().enumerate() {
                let mut sum = 0.0f32;
                for k in 0..g.ids.len() {
                    let mut row = hashed_dist(p, &g.ids[..k]);
                    log_softmax_row(&mut row);
                    sum += row[g.ids[k] as usize];
                }
                let len = 1 + g.ids.iter().filter(|&&t| t != 2).count();
                let want = sum as f64 / (len as f64).powf(lp);
                assert!(
                    (g.score.unwrap() as f64 - want).abs() < 1e-4,
                    "lp {lp} row {p}: {:?} vs {want}",
                    g.score
                );
            }
        }
    }

    /// VizWiz-style constraint: the result is the allowed sequence with the larger summed log-prob.
    #[test]
    fn trie_constraint_picks_the_likelier_answer() {
        use super::super::processors::log_softmax_row;
        use super::super::toy::hashed_dist;
        let trie = TokenTrie::answers(&[vec![4, 5], vec![6, 5]], 2);
        for prompt in 0..4 {
            let mut lm = ToyLm::new(prompt + 1, hashed_dist);
            lm.reorder(&[prompt]).unwrap();
            let out = beam_search(&mut lm, &toy_cfg(5, 0.0, 50), Some(&trie)).unwrap();
            let score = |seq: &[u32]| -> f32 {
                (0..seq.len())
                    .map(|k| {
                        let mut row = hashed_dist(prompt, &seq[..k]);
                        log_softmax_row(&mut row);
                        row[seq[k] as usize]
                    })
                    .sum()
            };
            let (a, b) = (score(&[4, 5, 2]), score(&[6, 5, 2]));
            let want = if a >= b { vec![4, 5, 2] } else { vec![6, 5, 2] };
            assert_eq!(out[0].ids, want);
            assert!((out[0].score.unwrap() - a.max(b)).abs() < 1e-5);
            assert!(lm.steps <= 3, "search should stop right after the answers close");
        }
    }
}
