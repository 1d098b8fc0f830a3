//! `BeamHypotheses` of transformers 4.29 (`generation/beam_search.py`): the n-best list of
//! finished hypotheses of one batch item.
use super::config::EarlyStopping;

/// One finished hypothesis: its normalised score and tracked tokens (dummy BOS first, EOS not
/// included).
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    pub score: f64,
    pub tokens: Vec<u32>,
}

/// The n-best list; `hyps` keeps insertion order as the Python list does.
#[derive(Debug, Clone)]
pub struct BeamHypotheses {
    pub num_beams: usize,
    pub length_penalty: f64,
    pub early_stopping: EarlyStopping,
    pub max_length: usize,
    pub hyps: Vec<Hypothesis>,
    pub worst_score: f64,
}

impl BeamHypotheses {
    pub fn new(
        num_beams: usize,
        length_penalty: f64,
        early_stopping: EarlyStopping,
        max_length: usize,
    ) -> Self {
        BeamHypotheses {
            num_beams,
            length_penalty,
            early_stopping,
            max_length,
            hyps: Vec::new(),
            worst_score: 1e9,
        }
    }

    pub fn len(&self) -> usize {
        self.hyps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hyps.is_empty()
    }

    /// `BeamHypotheses.add`: score = `sum_logprobs / len(tokens) ** length_penalty` (Python float
    /// arithmetic; `len` includes the dummy BOS). When the list overflows, the lowest score is
    /// removed (ties: the earliest inserted) and `worst_score` becomes the second lowest.
    pub fn add(&mut self, tokens: Vec<u32>, sum_logprobs: f64) {
        let score = sum_logprobs / (tokens.len() as f64).powf(self.length_penalty);
        if self.hyps.len() < self.num_beams || score > self.worst_score {
            self.hyps.push(Hypothesis { score, tokens });
            if self.hyps.len() > self.num_beams {
                // sorted([(s, idx) ...]) : ascending by score, then by index.
                let mut order: Vec<(f64, usize)> =
                    self.hyps.iter().enumerate().map(|(i, h)| (h.score, i)).collect();
                order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                self.hyps.remove(order[0].1);
                self.worst_score = order[1].0;
            } else {
                self.worst_score = self.worst_score.min(score);
            }
        }
    }

    /// `BeamHypotheses.is_done(best_sum_logprobs, cur_len)`.
    pub fn is_done(&self, best_sum_logprobs: f64, cur_len: usize) -> bool {
        if self.hyps.len() < self.num_beams {
            return false;
        }
        let denom_len = match self.early_stopping {
            EarlyStopping::True => return true,
            EarlyStopping::Heuristic => cur_len,
            EarlyStopping::Never if self.length_penalty > 0.0 => self.max_length,
            EarlyStopping::Never => cur_len,
        };
        let highest_attainable = best_sum_logprobs / (denom_len as f64).powf(self.length_penalty);
        self.worst_score >= highest_attainable
    }

    /// The best hypothesis as `finalize` picks it: `sorted(beams, key=score).pop()`, so among equal
    /// scores the one inserted last wins.
    pub fn best(&self) -> Option<&Hypothesis> {
        let mut best: Option<&Hypothesis> = None;
        for h in &self.hyps {
            if best.is_none_or(|b| h.score >= b.score) {
                best = Some(h);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_penalty_uses_length_with_dummy_bos() {
        let mut h = BeamHypotheses::new(2, -1.0, EarlyStopping::Heuristic, 9);
        h.add(vec![1, 5], -15.0); // length 2 → score −15 · 2
        assert_eq!(h.hyps[0].score, -30.0);
        let mut h = BeamHypotheses::new(2, 1.0, EarlyStopping::Heuristic, 9);
        h.add(vec![1, 5, 6, 7], -8.0);
        assert_eq!(h.hyps[0].score, -2.0);
    }

    #[test]
    fn overflow_drops_the_worst_and_tracks_the_second_worst() {
        let mut h = BeamHypotheses::new(2, 0.0, EarlyStopping::Heuristic, 9);
        h.add(vec![1], -3.0);
        assert_eq!(h.worst_score, -3.0);
        h.add(vec![1, 2], -1.0);
        assert_eq!(h.worst_score, -3.0);
        h.add(vec![1, 3], -5.0); // not better than worst: ignored
        assert_eq!(h.len(), 2);
        h.add(vec![1, 4], -2.0); // evicts −3
        assert_eq!(h.hyps.iter().map(|x| x.score).collect::<Vec<_>>(), vec![-1.0, -2.0]);
        assert_eq!(h.worst_score, -2.0);
    }

    #[test]
    fn is_done_heuristic_and_variants() {
        let mut h = BeamHypotheses::new(1, 1.0, EarlyStopping::Heuristic, 10);
        assert!(!h.is_done(-1.0, 3));
        h.add(vec![1, 2], -2.0); // score −1
        assert!(h.is_done(-3.0, 3)); // −1 ≥ −3/3
        assert!(!h.is_done(-2.0, 3)); // −1 < −2/3
        h.early_stopping = EarlyStopping::Never;
        assert!(h.is_done(-10.0, 3)); // −1 ≥ −10/10
        assert!(!h.is_done(-9.0, 3));
        h.early_stopping = EarlyStopping::True;
        assert!(h.is_done(0.0, 3));
    }

    #[test]
    fn best_prefers_the_later_of_equal_scores() {
        let mut h = BeamHypotheses::new(3, 0.0, EarlyStopping::Heuristic, 9);
        h.add(vec![1, 7], -1.0);
        h.add(vec![1, 8], -1.0);
        h.add(vec![1, 9], -4.0);
        assert_eq!(h.best().unwrap().tokens, vec![1, 8]);
    }
}
