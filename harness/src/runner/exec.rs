//! The stage executor: runs model stages (batched generation, option ranking) on the Emu model.
//! It knows nothing about tasks: it receives texts, pixels and settings, and returns outputs.
use std::time::Instant;

use anyhow::Result;
use candle_core::Tensor;
use tasks::registry::Generation;

use models::decode::emu_lm::EmuSession;
use models::decode::rank_emu::{
    candidate_nll_shared, encode_candidates, rank_shared, single_prompt_embeds,
};
use models::decode::{self, GenerationConfig, Sampling, TokenTrie};
use models::emu::Emu;
use tasks::metrics::visdial::order_to_ranks as visdial_ranks;

/// Candidates scored per forward over the shared prompt cache (does not change the losses).
const RANK_CHUNK: usize = 100;

/// The model and the time spent in its forwards.
pub struct Executor<'m> {
    emu: &'m Emu,
    model_seconds: f64,
}

/// The decoding settings of a registry stage as the decoder's configuration; `row_seeds` seed
/// each row's sampling (unused without `g.sampling`).
pub fn generation_config(g: &Generation, row_seeds: &[u64]) -> GenerationConfig {
    GenerationConfig {
        num_beams: g.num_beams,
        max_new_tokens: g.max_new_tokens,
        min_length: g.min_length,
        length_penalty: g.length_penalty,
        sampling: g.sampling.map(|s| Sampling {
            temperature: s.temperature as f32,
            top_p: s.top_p as f32,
            seed: 0,
        }),
        row_seeds: if g.sampling.is_some() { row_seeds.to_vec() } else { Vec::new() },
        ..GenerationConfig::default()
    }
}

impl<'m> Executor<'m> {
    pub fn new(emu: &'m Emu) -> Self {
        Executor { emu, model_seconds: 0.0 }
    }

    pub fn emu(&self) -> &Emu {
        self.emu
    }

    /// Seconds spent in model calls so far.
    pub fn model_seconds(&self) -> f64 {
        self.model_seconds
    }

    /// One left-padded batch: `prompts[i]` with its images (rows of `pixels` in prompt order);
    /// `allowed` constrains outputs to these strings followed by EOS; `seeds[i]` seeds row `i`'s
    /// sampling. Returns the decoded texts.
    pub fn generate(
        &mut self,
        prompts: &[String],
        pixels: Option<&Tensor>,
        settings: &Generation,
        allowed: Option<&[&str]>,
        seeds: &[u64],
    ) -> Result<Vec<String>> {
        let start = Instant::now();
        let cfg = generation_config(settings, seeds);
        let tok = self.emu.tokenizer();
        let trie = allowed.map(|answers| {
            let enc: Vec<Vec<u32>> = answers.iter().map(|a| tok.encode_with(a, false)).collect();
            TokenTrie::answers(&enc, cfg.eos_token_id)
        });
        let mut session = EmuSession::from_prompts(self.emu, prompts, pixels)?;
        let out = decode::generate(&mut session, &cfg, trie.as_ref())?;
        self.model_seconds += start.elapsed().as_secs_f64();
        Ok(out.iter().map(|g| tok.decode(&g.ids)).collect())
    }

    /// The probability of `answers[0]` against `answers[1]` after `prompt`, each answer followed
    /// by EOS: their sequence likelihoods normalised over the pair (the VizWiz gate's probability
    /// that a question is answerable, for the challenge's answerability AP and F1).
    pub fn pair_probability(
        &mut self,
        prompt: &str,
        pixels: Option<&Tensor>,
        answers: [&str; 2],
    ) -> Result<f64> {
        let start = Instant::now();
        let embeds = single_prompt_embeds(self.emu, prompt, pixels)?;
        let mut cands = encode_candidates(self.emu, &answers.map(str::to_owned))?;
        for c in &mut cands {
            c.push(models::emu::tokenizer::EOS);
        }
        let nll = candidate_nll_shared(self.emu, &embeds, &cands, RANK_CHUNK)?;
        let lp: Vec<f64> = nll.iter().map(|t| -t.iter().map(|&x| x as f64).sum::<f64>()).collect();
        self.model_seconds += start.elapsed().as_secs_f64();
        let m = lp[0].max(lp[1]);
        let (a, b) = ((lp[0] - m).exp(), (lp[1] - m).exp());
        let p = a / (a + b);
        if !p.is_finite() {
            anyhow::bail!("answerability probability is {p} (log-likelihoods {lp:?})");
        }
        Ok(p)
    }

    /// VisDial ranking (§3.7): 1-based rank of each candidate by the classification loss.
    pub fn rank(
        &mut self,
        prompt: &str,
        pixels: Option<&Tensor>,
        candidates: &[String],
        n_segments: usize,
    ) -> Result<Vec<u32>> {
        let start = Instant::now();
        let embeds = single_prompt_embeds(self.emu, prompt, pixels)?;
        let cands = encode_candidates(self.emu, candidates)?;
        let r = rank_shared(self.emu, &embeds, &cands, n_segments, RANK_CHUNK)?;
        self.model_seconds += start.elapsed().as_secs_f64();
        Ok(visdial_ranks(&r.order))
    }
}
