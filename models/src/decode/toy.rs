//! Table-driven toy language models for unit tests of the search algorithms.
use crate::Result;

use super::lm::{Logits, StepModel};

type Dist = fn(usize, &[u32]) -> Vec<f32>;

/// A toy LM whose next-token logits are a pure function of (prompt row, generated tokens).
pub struct ToyLm {
    rows: Vec<(usize, Vec<u32>)>,
    dist: Dist,
    pub steps: usize,
}

impl ToyLm {
    pub fn new(prompts: usize, dist: Dist) -> Self {
        ToyLm { rows: (0..prompts).map(|p| (p, Vec::new())).collect(), dist, steps: 0 }
    }

    fn logits(&self) -> Logits {
        let rows: Vec<Vec<f32>> = self.rows.iter().map(|(p, h)| (self.dist)(*p, h)).collect();
        let vocab = rows[0].len();
        Logits::new(rows.len(), vocab, rows.concat())
    }

    /// Vocab {0: "a", 1: BOS, 2: EOS, 3: "b"}; a Markov chain on the last token, logits = ln p:
    /// start a .5 b .4 EOS .1; after a: a .1 b .1 EOS .8; after b: a .05 b .05 EOS .9.
    pub fn chain() -> Self {
        ToyLm::new(1, chain_dist)
    }

    /// Worked by hand (2 beams, lp 0): step 1 keeps [a] −0.693, [b] −0.916 (EOS rank 2 ≥ N is
    /// skipped); step 2 closes [a]+EOS (ln .4) and [b]+EOS (ln .36), continues [a a], [a b]
    /// (−2.996); step 3's EOS candidates are worse than the worst hypothesis and `is_done` holds
    /// (−1.022 ≥ −3.101). Best: "a" EOS with ln 0.4.
    pub fn chain_expected_beam2_lp0() -> (Vec<u32>, f32) {
        (vec![0, 2], (0.4f64).ln() as f32)
    }
}

pub fn chain_dist(_prompt: usize, hist: &[u32]) -> Vec<f32> {
    let p: [f64; 4] = match hist.last() {
        None => [0.5, 1e-12, 0.1, 0.4],
        Some(0) => [0.1, 1e-12, 0.8, 0.1],
        Some(_) => [0.05, 1e-12, 0.9, 0.05],
    };
    p.iter().map(|v| v.ln() as f32).collect()
}

/// Pseudo-random peaked logits over 12 tokens from a hash of (prompt, history); EOS = 2 gets a
/// boost growing with the history length so every row ends.
pub fn hashed_dist(prompt: usize, hist: &[u32]) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ (prompt as u64).wrapping_mul(0x100_0000_01b3);
    for &t in hist {
        h = (h ^ t as u64).wrapping_mul(0x100_0000_01b3);
    }
    (0..12u64)
        .map(|t| {
            let mut z = h ^ t.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z ^= z >> 29;
            let u = (z >> 11) as f64 / (1u64 << 53) as f64;
            let boost = if t == 2 { 0.6 * hist.len() as f64 } else { 0.0 };
            (3.0 * u + boost) as f32
        })
        .collect()
}

impl StepModel for ToyLm {
    fn prompt_logits(&mut self) -> Result<Logits> {
        Ok(self.logits())
    }
    fn step(&mut self, tokens: &[u32]) -> Result<Logits> {
        assert_eq!(tokens.len(), self.rows.len());
        for (r, &t) in self.rows.iter_mut().zip(tokens) {
            r.1.push(t);
        }
        self.steps += 1;
        Ok(self.logits())
    }
    fn reorder(&mut self, rows: &[usize]) -> Result<()> {
        self.rows = rows.iter().map(|&r| self.rows[r].clone()).collect();
        Ok(())
    }
}
