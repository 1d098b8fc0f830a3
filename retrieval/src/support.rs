//! The RICES support pool and selection from it.
//!
//! Pool: per task, [`POOL_SIZE`] training samples drawn with [`support_pool`] (seed
//! [`POOL_SEED`] unless given), or the whole split when it is smaller (datasets.md §1). Rows are
//! kept in sample-id order, so ties in similarity go to the smaller sample id. A query never
//! retrieves itself or a pool sample showing the same image or video (same media key).
use std::collections::HashMap;

use crate::cache::FeatureSet;
use crate::search::{Backend, SearchIndex};
use crate::topk::{Features, Hit};
use crate::{subsample_pool, Method, RetrievalError, Selection};

/// Support pool size (datasets.md §1: a fixed random subset of 5,000 training samples).
pub const POOL_SIZE: usize = tasks::registry::RICES_POOL_SIZE;
/// Default pool seed.
pub const POOL_SEED: u64 = 0;

/// Split positions of the pool: a SplitMix64(`seed`) partial Fisher–Yates draw of
/// [`POOL_SIZE`] of `n` positions, sorted; all `n` positions when `n <= POOL_SIZE`.
pub fn support_pool(n: usize, seed: u64) -> Vec<usize> {
    subsample_pool(n, POOL_SIZE, seed)
}

/// One retrieved support sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbour {
    /// Pool row.
    pub row: usize,
    pub id: String,
    pub similarity: f32,
}

/// A searchable support pool: per-sample features (sample-id order) and their media keys.
#[derive(Debug)]
pub struct SupportPool {
    set: FeatureSet,
    index: SearchIndex,
    by_id: HashMap<String, usize>,
    by_media: HashMap<String, Vec<usize>>,
}

impl SupportPool {
    /// Indexes the samples of `set` (rows already in sample-id order) with `backend`.
    pub fn new(set: FeatureSet, backend: &Backend) -> Result<Self, RetrievalError> {
        let index = SearchIndex::build(set.sample_features(), backend)?;
        let by_id = set.plan.ids.iter().enumerate().map(|(r, id)| (id.clone(), r)).collect();
        let mut by_media: HashMap<String, Vec<usize>> = HashMap::new();
        for (r, &m) in set.plan.sample_media.iter().enumerate() {
            by_media.entry(set.plan.media[m].clone()).or_default().push(r);
        }
        Ok(Self { set, index, by_id, by_media })
    }

    pub fn len(&self) -> usize {
        self.set.plan.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Sample ids in row order (the audited pool).
    pub fn ids(&self) -> &[String] {
        &self.set.plan.ids
    }
    pub fn backend(&self) -> &Backend {
        self.index.backend()
    }

    /// Rows a query may not retrieve: itself and every sample showing its media item.
    pub fn excluded(&self, id: &str, media: &str) -> Vec<usize> {
        let mut rows = self.by_media.get(media).cloned().unwrap_or_default();
        rows.extend(self.by_id.get(id).copied().filter(|r| !rows.contains(r)));
        rows
    }

    /// The `k` most similar pool samples of each query `(id, media key)` whose feature is the
    /// matching row of `features`, best first (fewer when the pool runs out).
    pub fn neighbours(
        &self,
        queries: &[(String, String)],
        features: &Features,
        k: usize,
    ) -> Result<Vec<Vec<Neighbour>>, RetrievalError> {
        if queries.len() != features.rows() {
            return Err(RetrievalError::BadFeatures(format!(
                "{} feature rows for {} queries",
                features.rows(),
                queries.len()
            )));
        }
        let exclude: Vec<Vec<usize>> = queries.iter().map(|(id, m)| self.excluded(id, m)).collect();
        let hits = self.index.search(features, k, &exclude)?;
        Ok(hits.into_iter().map(|h| h.iter().map(|h| self.neighbour(h)).collect()).collect())
    }

    fn neighbour(&self, h: &Hit) -> Neighbour {
        Neighbour { row: h.index, id: self.set.plan.ids[h.index].clone(), similarity: h.score }
    }
}

/// A RICES selection of `k` from best-first neighbours, in prompt order (most similar last,
/// as OpenFlamingo's RICES reverses its ranking).
pub fn selection(
    best_first: &[Neighbour],
    k: usize,
    pool: usize,
) -> Result<Selection, RetrievalError> {
    if best_first.len() < k {
        return Err(RetrievalError::PoolTooSmall { k, pool });
    }
    let chosen = &best_first[..k];
    Ok(Selection {
        indices: chosen.iter().rev().map(|n| n.row).collect(),
        similarities: chosen.iter().rev().map(|n| n.similarity).collect(),
        method: Method::Rices,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Plan;

    /// Six pool samples on four images; features by image: e0, e1, e0+e1, e2.
    fn pool() -> SupportPool {
        let plan = Plan::new(
            [("1", "a"), ("2", "a"), ("3", "b"), ("4", "c"), ("5", "d"), ("6", "c")]
                .map(|(i, m)| (i.to_owned(), m.to_owned())),
        );
        let h = std::f32::consts::FRAC_1_SQRT_2;
        let features =
            Features::new(3, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, h, h, 0.0, 0.0, 0.0, 1.0]).unwrap();
        SupportPool::new(FeatureSet { plan, features }, &Backend::Exact).unwrap()
    }

    #[test]
    fn excludes_self_and_same_media_and_breaks_ties_by_id() {
        let p = pool();
        assert_eq!(p.excluded("3", "b"), vec![2]);
        assert_eq!(p.excluded("1", "x"), vec![0]);
        // Query on image "a" (feature e0): samples 1 and 2 share it and are skipped; image "c"
        // (samples 4 and 6, cos 1/√2) comes next, ties to the smaller id.
        let q = Features::new(3, vec![1.0, 0.0, 0.0]).unwrap();
        let n = p.neighbours(&[("9".into(), "a".into())], &q, 3).unwrap().remove(0);
        let ids: Vec<&str> = n.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(ids, ["4", "6", "3"]);
        assert!((n[0].similarity - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        // Another query id on another image sees the "a" samples.
        let n = p.neighbours(&[("9".into(), "z".into())], &q, 2).unwrap().remove(0);
        assert_eq!(n.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), ["1", "2"]);
    }

    #[test]
    fn selection_is_in_prompt_order() {
        let p = pool();
        let q = Features::new(3, vec![0.0, 1.0, 0.1]).unwrap();
        let n = p.neighbours(&[("1".into(), "a".into())], &q, 2).unwrap().remove(0);
        let s = selection(&n, 2, p.len()).unwrap();
        assert_eq!(s.method, Method::Rices);
        assert_eq!(s.indices, [n[1].row, n[0].row]);
        assert!(s.similarities[0] <= s.similarities[1]);
        assert!(selection(&n, 3, p.len()).is_err());
        assert_eq!(support_pool(9, POOL_SEED), (0..9).collect::<Vec<_>>());
        assert_eq!(support_pool(20_000, 3).len(), POOL_SIZE);
    }
}
