//! The interface the search algorithms drive: a causal LM session over a set of rows.
use crate::Result;

/// Next-token logits of several rows, row-major `[rows, vocab]`, f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Logits {
    pub rows: usize,
    pub vocab: usize,
    pub data: Vec<f32>,
}

impl Logits {
    pub fn new(rows: usize, vocab: usize, data: Vec<f32>) -> Self {
        assert_eq!(data.len(), rows * vocab, "logits buffer size");
        Logits { rows, vocab, data }
    }
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.vocab..(r + 1) * self.vocab]
    }
    pub fn row_mut(&mut self, r: usize) -> &mut [f32] {
        &mut self.data[r * self.vocab..(r + 1) * self.vocab]
    }
    /// Keeps / repeats rows: new row `i` is old row `rows[i]`.
    pub fn select(&self, rows: &[usize]) -> Logits {
        let mut data = Vec::with_capacity(rows.len() * self.vocab);
        for &r in rows {
            data.extend_from_slice(self.row(r));
        }
        Logits::new(rows.len(), self.vocab, data)
    }
}

/// A causal LM session with a KV cache: created for a batch of prompt rows (prefill done by the
/// implementation), then extended one token per row at a time.
///
/// Equivalent of transformers' `prepare_inputs_for_generation` + forward + `_reorder_cache`: each
/// `step` appends one token to every current row (attention mask grows by a 1, position id =
/// number of unmasked entries − 1, spec §3.2).
pub trait StepModel {
    /// Logits at the last prompt position of every prompt row (the first decoding step).
    fn prompt_logits(&mut self) -> Result<Logits>;
    /// Appends `tokens[i]` to row `i` and returns the logits of the next position of every row.
    fn step(&mut self, tokens: &[u32]) -> Result<Logits>;
    /// Re-indexes the rows (KV cache, masks, positions): new row `i` continues old row `rows[i]`.
    /// Rows may be repeated (beam expansion) or dropped (finished rows).
    fn reorder(&mut self, rows: &[usize]) -> Result<()>;
}
