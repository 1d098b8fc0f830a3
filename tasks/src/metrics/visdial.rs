//! VisDial v1.0 metrics: R@k, mean rank, MRR, NDCG.
use std::path::Path;
use serde_json::Value;
use crate::input::InputError;

/// Scores `{"rounds":[{"ranks","gt_index","gt_relevance"?}]}`.
pub fn score_file(path: &Path) -> Result<Value, InputError> {
    Err(InputError::file(path, "not implemented yet"))
}

#[derive(Debug, Clone, PartialEq)]
pub struct VisdialRound {
    /// Rank of each of the 100 options, 1 = best.
    pub ranks: Vec<u32>,
    /// Ground-truth option index, 0-based.
    pub gt_index: usize,
    pub gt_relevance: Option<Vec<f64>>,
}

/// Returns `{"r@1","r@5","r@10","mean","mrr","ndcg"}`.
pub fn score(rounds: &[VisdialRound]) -> Value {
    let _ = rounds;
    Value::Null
}
