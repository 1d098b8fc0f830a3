//! Generation settings (spec §3.3) with the reference defaults.
use crate::Result;

use crate::emu::tokenizer;

/// BOS id of the LLaMA tokenizer: the dummy first column of every generated sequence.
pub const BOS_ID: u32 = tokenizer::BOS;
/// EOS id (`</s>`).
pub const EOS_ID: u32 = tokenizer::EOS;
/// PAD id (`[PAD]`), used to fill finished rows.
pub const PAD_ID: u32 = tokenizer::PAD;

/// transformers' `early_stopping` (`BeamHypotheses.is_done`). The reference uses `False`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    /// `True`: done as soon as `num_beams` hypotheses are finished.
    True,
    /// `False`: heuristic — best running score divided by `cur_len ** length_penalty`.
    #[default]
    Heuristic,
    /// `"never"`: canonical beam search bound (uses `max_length` when `length_penalty > 0`).
    Never,
}

/// Multinomial sampling (a user option; the reference evaluation never samples).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
}

/// What `generate` does. `Default` = the model's text-generation defaults of spec §3.3.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    pub num_beams: usize,
    pub max_new_tokens: usize,
    /// Compared with the tracked length, which includes the dummy BOS (spec §3.3).
    pub min_length: usize,
    pub length_penalty: f64,
    pub early_stopping: EarlyStopping,
    pub bos_token_id: u32,
    pub eos_token_id: u32,
    pub pad_token_id: u32,
    pub sampling: Option<Sampling>,
    /// Sampling: one seed per batch row (a row's draws then do not depend on the batch it is in).
    /// Empty: row `b` draws from `sampling.seed + b`.
    pub row_seeds: Vec<u64>,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            num_beams: 5,
            max_new_tokens: 50,
            min_length: 1,
            length_penalty: 0.0,
            early_stopping: EarlyStopping::Heuristic,
            bos_token_id: BOS_ID,
            eos_token_id: EOS_ID,
            pad_token_id: PAD_ID,
            sampling: None,
            row_seeds: Vec::new(),
        }
    }
}

impl GenerationConfig {
    /// Greedy decoding (one beam) with the other defaults.
    pub fn greedy(max_new_tokens: usize) -> Self {
        GenerationConfig { num_beams: 1, max_new_tokens, ..Self::default() }
    }

    /// `max_length` of transformers: the tracked sequence starts as the single dummy BOS.
    pub fn max_length(&self) -> usize {
        self.max_new_tokens + 1
    }

    /// Most beams a search may keep (each beam holds a KV cache row).
    pub const MAX_BEAMS: usize = 64;

    pub fn validate(&self) -> Result<()> {
        if self.num_beams == 0 || self.num_beams > Self::MAX_BEAMS {
            bail!("num_beams: {} is outside 1..={}", self.num_beams, Self::MAX_BEAMS);
        }
        if self.max_new_tokens == 0 {
            bail!("max_new_tokens must be at least 1");
        }
        if !self.length_penalty.is_finite() {
            bail!("length_penalty: {} is not a finite number", self.length_penalty);
        }
        if self.sampling.is_some() && self.num_beams > 1 {
            bail!("sampling is only supported with num_beams = 1");
        }
        if let Some(s) = self.sampling {
            if !(s.temperature.is_finite() && s.temperature > 0.0) {
                bail!("temperature: {} must be a finite number > 0", s.temperature);
            }
            if !(s.top_p > 0.0 && s.top_p <= 1.0) {
                bail!("top_p: {} must be in (0, 1]", s.top_p);
            }
        }
        Ok(())
    }

    /// The prompt plus every generated token must fit the model's positions.
    pub fn check_fits(&self, prompt_len: usize, max_position_embeddings: usize) -> Result<()> {
        if prompt_len + self.max_new_tokens > max_position_embeddings {
            bail!(
                "max_new_tokens: a prompt of {prompt_len} tokens plus {} new tokens exceeds llama.max_position_embeddings {max_position_embeddings}",
                self.max_new_tokens
            );
        }
        Ok(())
    }

    /// An allowed-answer trie must hold an answer long enough for `min_length` and short enough
    /// for `max_new_tokens`, or the constraint and the lengths cannot both hold.
    pub fn check_trie(&self, trie: &super::TokenTrie) -> Result<()> {
        let (shortest, longest) = trie.lengths();
        if longest == 0 {
            bail!("allowed: the answer list is empty");
        }
        if longest < self.min_length {
            bail!("min_length: {} cannot be reached by the allowed answers (longest is {longest} tokens with EOS)", self.min_length);
        }
        if shortest > self.max_new_tokens {
            bail!("max_new_tokens: {} is shorter than every allowed answer (shortest is {shortest} tokens with EOS)", self.max_new_tokens);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_errors_naming_the_flag() {
        fn bad(f: impl Fn(&mut GenerationConfig), want: &str) {
            let mut c = GenerationConfig::default();
            f(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.starts_with(want), "{e} should start with {want}");
        }
        bad(|c| c.num_beams = 0, "num_beams: 0");
        bad(|c| c.num_beams = 1 << 40, "num_beams:");
        bad(|c| c.length_penalty = f64::NAN, "length_penalty: NaN");
        let s = |t: f32, p: f32| Some(Sampling { temperature: t, top_p: p, seed: 0 });
        bad(|c| (c.num_beams, c.sampling) = (1, s(f32::INFINITY, 1.0)), "temperature: inf");
        bad(|c| (c.num_beams, c.sampling) = (1, s(f32::NAN, 1.0)), "temperature: NaN");
        bad(|c| (c.num_beams, c.sampling) = (1, s(1.0, f32::NAN)), "top_p: NaN");
        bad(|c| (c.num_beams, c.sampling) = (1, s(1.0, 0.0)), "top_p: 0");
        let c = GenerationConfig::default();
        assert!(c.check_fits(1998, 2048).is_ok());
        assert!(c
            .check_fits(1999, 2048)
            .unwrap_err()
            .to_string()
            .starts_with("max_new_tokens: a prompt of 1999"));
    }

    #[test]
    fn trie_and_min_length_must_agree() {
        let trie = super::super::TokenTrie::answers(&[vec![4874, 29889], vec![694]], EOS_ID);
        let mut c = GenerationConfig { min_length: 3, ..GenerationConfig::default() };
        assert!(c.check_trie(&trie).is_ok());
        c.min_length = 4;
        assert!(c.check_trie(&trie).unwrap_err().to_string().contains("longest is 3 tokens"));
        c = GenerationConfig::greedy(1);
        assert!(c.check_trie(&trie).unwrap_err().to_string().contains("shortest is 2 tokens"));
    }
}
