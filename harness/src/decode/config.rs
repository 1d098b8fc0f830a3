//! Generation settings (spec §3.3) with the reference defaults.
use anyhow::{bail, Result};

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

    pub fn validate(&self) -> Result<()> {
        if self.num_beams == 0 {
            bail!("num_beams must be at least 1");
        }
        if self.max_new_tokens == 0 {
            bail!("max_new_tokens must be at least 1");
        }
        if self.sampling.is_some() && self.num_beams > 1 {
            bail!("sampling is only supported with num_beams = 1");
        }
        if let Some(s) = self.sampling {
            if !(s.temperature > 0.0) || !(s.top_p > 0.0 && s.top_p <= 1.0) {
                bail!("sampling needs temperature > 0 and 0 < top_p <= 1");
            }
        }
        Ok(())
    }
}
