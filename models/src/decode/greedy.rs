//! Greedy search and sampling of transformers 4.29 (`greedy_search` / `sample`), spec §3.3.
use crate::Result;

use super::config::GenerationConfig;
use super::lm::StepModel;
use super::processors::{
    apply_min_length, apply_prefix_constraint, apply_temperature, apply_top_p, argmax, sample, Rng,
};
use super::trie::TokenTrie;
use super::Generated;

/// Greedy (arg-max of the processed logits) or, with `cfg.sampling`, multinomial sampling after
/// temperature and top-p. A row stops at EOS (kept in its ids); all rows stop at `max_new_tokens`.
pub fn greedy_or_sample<M: StepModel>(
    model: &mut M,
    cfg: &GenerationConfig,
    allowed: Option<&TokenTrie>,
) -> Result<Vec<Generated>> {
    let mut logits = model.prompt_logits()?;
    let batch = logits.rows;
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); batch];
    // Rows still fed to the model, in model row order. Finished rows are dropped: the reference
    // keeps feeding them PAD, which cannot change the other rows.
    let mut active: Vec<usize> = (0..batch).collect();
    // One generator per row, so a row's draws do not depend on the other rows.
    let mut rngs: Vec<Rng> = match cfg.sampling {
        Some(s) => (0..batch)
            .map(|b| {
                Rng::new(cfg.row_seeds.get(b).copied().unwrap_or(s.seed.wrapping_add(b as u64)))
            })
            .collect(),
        None => Vec::new(),
    };
    let mut tracked_len = 1;
    loop {
        apply_min_length(&mut logits, tracked_len, cfg.min_length, cfg.eos_token_id);
        if let Some(trie) = allowed {
            let generated: Vec<Vec<u32>> = active.iter().map(|&b| out[b].clone()).collect();
            apply_prefix_constraint(&mut logits, &generated, trie);
        }
        let mut keep = Vec::new();
        let mut tokens = Vec::new();
        for (pos, &b) in active.iter().enumerate() {
            let row = logits.row_mut(pos);
            let tok = match (cfg.sampling, rngs.get_mut(b)) {
                (Some(s), Some(g)) => {
                    apply_temperature(row, s.temperature);
                    apply_top_p(row, s.top_p);
                    sample(row, g)
                }
                _ => argmax(row),
            };
            out[b].push(tok);
            if tok != cfg.eos_token_id {
                keep.push(pos);
                tokens.push(tok);
            }
        }
        tracked_len += 1;
        if keep.is_empty() || tracked_len >= cfg.max_length() {
            break;
        }
        if keep.len() < active.len() {
            model.reorder(&keep)?;
            active = keep.iter().map(|&p| active[p]).collect();
        }
        logits = model.step(&tokens)?;
    }
    Ok(out.into_iter().map(|ids| Generated { ids, score: None }).collect())
}

#[cfg(test)]
mod tests {
    use super::super::config::Sampling;
    use super::super::toy::{hashed_dist, ToyLm};
    use super::*;

    fn cfg(max_new: usize) -> GenerationConfig {
        GenerationConfig {
            bos_token_id: 1,
            eos_token_id: 2,
            pad_token_id: 0,
            ..GenerationConfig::greedy(max_new)
        }
    }

    #[test]
    fn greedy_on_the_chain() {
        let out = greedy_or_sample(&mut ToyLm::chain(), &cfg(8), None).unwrap();
        assert_eq!(out, vec![Generated { ids: vec![0, 2], score: None }]);
    }

    #[test]
    fn min_length_delays_eos() {
        // min_length 3 = dummy BOS + 2 tokens before EOS may appear.
        let c = GenerationConfig { min_length: 3, ..cfg(8) };
        let out = greedy_or_sample(&mut ToyLm::chain(), &c, None).unwrap();
        assert_eq!(out[0].ids, vec![0, 0, 2]);
    }

    #[test]
    fn max_new_tokens_caps_without_eos() {
        let c = GenerationConfig { min_length: 10, ..cfg(3) };
        let out = greedy_or_sample(&mut ToyLm::chain(), &c, None).unwrap();
        assert_eq!(out[0].ids, vec![0, 0, 0]);
    }

    #[test]
    fn batch_equals_rows_run_alone() {
        let c = cfg(12);
        let batch = greedy_or_sample(&mut ToyLm::new(5, hashed_dist), &c, None).unwrap();
        for (p, row) in batch.iter().enumerate() {
            let mut single = ToyLm::new(p + 1, hashed_dist);
            single.reorder(&[p]).unwrap();
            assert_eq!(&greedy_or_sample(&mut single, &c, None).unwrap()[0], row);
        }
        assert!(
            batch.iter().any(|g| g.ids.len() != batch[0].ids.len()),
            "rows should end at different steps"
        );
    }

    #[test]
    fn sampling_is_reproducible_per_seed() {
        let mk = |seed| GenerationConfig {
            sampling: Some(Sampling { temperature: 1.0, top_p: 0.9, seed }),
            ..cfg(10)
        };
        let a = greedy_or_sample(&mut ToyLm::new(3, hashed_dist), &mk(1), None).unwrap();
        let b = greedy_or_sample(&mut ToyLm::new(3, hashed_dist), &mk(1), None).unwrap();
        assert_eq!(a, b);
    }

    /// With a seed per row, a row samples the same tokens alone as in a batch.
    #[test]
    fn sampled_row_does_not_depend_on_its_batch() {
        let seeds = vec![11, 22, 33, 44];
        let c = GenerationConfig {
            sampling: Some(Sampling { temperature: 1.5, top_p: 0.95, seed: 0 }),
            row_seeds: seeds.clone(),
            ..cfg(12)
        };
        let batch = greedy_or_sample(&mut ToyLm::new(4, hashed_dist), &c, None).unwrap();
        for (p, row) in batch.iter().enumerate() {
            let mut single = ToyLm::new(p + 1, hashed_dist);
            single.reorder(&[p]).unwrap();
            let one = GenerationConfig { row_seeds: vec![seeds[p]], ..c.clone() };
            assert_eq!(&greedy_or_sample(&mut single, &one, None).unwrap()[0], row, "row {p}");
        }
        let other = GenerationConfig { row_seeds: vec![99, 22, 33, 44], ..c.clone() };
        let again = greedy_or_sample(&mut ToyLm::new(4, hashed_dist), &other, None).unwrap();
        assert_eq!(again[1..], batch[1..]);
    }
}
