//! VisDial v1.0 metrics: R@k, mean rank, MRR, NDCG.
use std::path::Path;
use serde_json::Value;
use crate::input::InputError;

/// Scores `{"rounds":[{"ranks","gt_index","gt_relevance"?}]}`.
pub fn score_file(path: &Path) -> Result<Value, InputError> {
    Err(InputError::file(path, "not implemented yet"))
}
