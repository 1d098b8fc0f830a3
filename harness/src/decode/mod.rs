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
) -> anyhow::Result<Vec<Generated>> {
    cfg.validate()?;
    if cfg.num_beams > 1 {
        beam::beam_search(model, cfg, allowed)
    } else {
        greedy::greedy_or_sample(model, cfg, allowed)
    }
}
