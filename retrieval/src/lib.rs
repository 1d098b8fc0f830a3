//! Support-example selection for few-shot prompts.
//!
//! RICES (Retrieval-based In-Context Example Selection, as in Flamingo/OpenFlamingo and the Emu
//! paper): support examples are the pool items whose image features have the largest cosine
//! similarity with the query's. [`support`] draws the audited support pool and selects from it
//! (deduplication, prompt order), [`cache`] stores features on disk, [`search`] ranks a pool
//! exactly (matmul) or through faiss. Without features a deterministic seeded
//! random choice is used instead ([`fallback`]); every selection carries its [`Method`] so reports
//! never present the fallback as RICES.
pub mod cache;
pub mod fallback;
pub mod search;
pub mod support;
pub mod topk;

pub use cache::{CacheKey, FeatureCache, FeatureSet, Outcome, Plan};
pub use fallback::{fallback_select, subsample_pool};
pub use search::{Backend, SearchIndex};
pub use support::{selection, support_pool, Neighbour, SupportPool, POOL_SEED, POOL_SIZE};
pub use topk::{in_prompt_order, normalize_row, top_k, top_k_batch, Features, Hit};

/// How support examples were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Nearest neighbours by cosine similarity of image features.
    Rices,
    /// No features: seeded random choice per query (not RICES).
    RandomFallback { seed: u64 },
}

impl Method {
    /// Label for logs and reports.
    pub fn label(&self) -> String {
        match self {
            Method::Rices => "rices".to_owned(),
            Method::RandomFallback { seed } => {
                format!("random-fallback(seed={seed}; no features, not RICES)")
            }
        }
    }
}

/// Pool indices of the support examples, in prompt order (most similar last, as OpenFlamingo),
/// and how they were chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub indices: Vec<usize>,
    pub method: Method,
    /// Cosine similarity of each support example to the query, same order (empty: not RICES).
    pub similarities: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RetrievalError {
    #[error("feature matrix: {0}")]
    BadFeatures(String),
    #[error("query has {got} dimensions, pool has {want}")]
    DimMismatch { got: usize, want: usize },
    #[error("asked for {k} support examples, pool has {pool}")]
    PoolTooSmall { k: usize, pool: usize },
    #[error("{0}")]
    Backend(String),
}

/// Selects `k` support examples for one query: RICES when both the pool's and the query's features
/// are given, else the seeded fallback keyed by `query_key` (the query's sample id).
pub fn select(
    pool: Option<&Features>,
    query: Option<&[f32]>,
    query_key: &str,
    pool_len: usize,
    k: usize,
    seed: u64,
) -> Result<Selection, RetrievalError> {
    if k > pool_len {
        return Err(RetrievalError::PoolTooSmall { k, pool: pool_len });
    }
    match (pool, query) {
        (Some(p), Some(q)) => {
            if p.rows() != pool_len {
                return Err(RetrievalError::BadFeatures(format!(
                    "{} rows for a pool of {pool_len}",
                    p.rows()
                )));
            }
            let hits = top_k(p, q, k)?;
            let similarities = hits.iter().rev().map(|h| h.score).collect();
            Ok(Selection { indices: in_prompt_order(&hits), method: Method::Rices, similarities })
        }
        _ => Ok(Selection {
            indices: fallback_select(query_key, pool_len, k, seed),
            method: Method::RandomFallback { seed },
            similarities: Vec::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_uses_rices_only_with_features() {
        let pool = Features::new(2, vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8]).unwrap();
        let s = select(Some(&pool), Some(&[0.0, 1.0]), "q", 3, 2, 7).unwrap();
        assert_eq!(s.method, Method::Rices);
        assert_eq!(s.indices, vec![2, 1]); // most similar (1) last
        assert_eq!(s.similarities, vec![0.8, 1.0]);
        let f = select(None, Some(&[0.0, 1.0]), "q", 3, 2, 7).unwrap();
        assert_eq!(f.method, Method::RandomFallback { seed: 7 });
        assert!(f.method.label().contains("not RICES"));
        assert!(select(None, None, "q", 3, 4, 7).is_err());
    }
}
