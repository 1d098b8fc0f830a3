//! Decoding as the official Emu evaluation does it (spec `emu-model.md` §3.2–3.7, §5.3).
//!
//! * [`greedy`] / [`beam`]: generation over a left-padded batch with a KV cache, with the exact
//!   semantics of transformers 4.29 `greedy_search` / `beam_search` + `BeamSearchScorer`
//!   (dummy-BOS length accounting, top-2N selection, EOS rank rule, heuristic `is_done`, finalize).
//! * [`processors`]: the logits processors the reference uses (min length, prefix constraint from a
//!   token [`trie`], VizWiz "yes."/"no."), log-softmax, sampling warpers.
//! * [`rank`]: the classification loss of `PredictClassMixin.predict` (VisDial), with the prompt's
//!   KV cache shared across all candidates.
//! * [`regress`]: `generate_image`'s autoregressive regression of the visual embeddings.
//!
//! The search algorithms are written against the [`StepModel`] trait, so they can be unit-tested
//! with a table-driven toy model; [`emu_lm`] implements it for the Emu model.
pub mod beam;
pub mod config;
pub mod emu_lm;
pub mod greedy;
pub mod hypotheses;
pub mod lm;
pub mod processors;
pub mod rank;
pub mod rank_emu;
pub mod regress;
pub mod trie;

#[cfg(test)]
pub(crate) mod toy;

pub use config::{EarlyStopping, GenerationConfig, Sampling};
pub use lm::{Logits, StepModel};
pub use trie::TokenTrie;

/// One generated row: the new ids (after the dummy BOS), ending with EOS when it was generated, and
/// the beam search score (`sequences_scores`; `None` for greedy / sampling).
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub ids: Vec<u32>,
    pub score: Option<f32>,
}

/// Runs greedy, sampling or beam search on `model` (already prefilled with the prompt rows),
/// according to `cfg`; `allowed` optionally constrains every row to the sequences of a trie.
pub fn generate<M: StepModel>(
    model: &mut M,
    cfg: &GenerationConfig,
    allowed: Option<&TokenTrie>,
) -> crate::Result<Vec<Generated>> {
    cfg.validate()?;
    if let Some(trie) = allowed {
        cfg.check_trie(trie)?;
    }
    let mut model = FiniteLogits { inner: model, step: 0 };
    if cfg.num_beams > 1 {
        beam::beam_search(&mut model, cfg, allowed)
    } else {
        greedy::greedy_or_sample(&mut model, cfg, allowed)
    }
}

/// Refuses NaN or +∞ logits from the model, naming the step, row and token, before any search
/// would turn them into a silent arg-max or a NaN score.
struct FiniteLogits<'a, M> {
    inner: &'a mut M,
    step: usize,
}

impl<M> FiniteLogits<'_, M> {
    fn check(&mut self, logits: Logits) -> crate::Result<Logits> {
        if let Some(i) = logits.data.iter().position(|x| x.is_nan() || *x == f32::INFINITY) {
            let vocab = logits.vocab.max(1);
            bail!(
                "model logits at decoding step {}, row {}, token {} are {} (check the weights and the dtype)",
                self.step,
                i / vocab,
                i % vocab,
                logits.data[i]
            );
        }
        self.step += 1;
        Ok(logits)
    }
}

impl<M: StepModel> StepModel for FiniteLogits<'_, M> {
    fn prompt_logits(&mut self) -> crate::Result<Logits> {
        let l = self.inner.prompt_logits()?;
        self.check(l)
    }
    fn step(&mut self, tokens: &[u32]) -> crate::Result<Logits> {
        let l = self.inner.step(tokens)?;
        self.check(l)
    }
    fn reorder(&mut self, rows: &[usize]) -> crate::Result<()> {
        self.inner.reorder(rows)
    }
}
