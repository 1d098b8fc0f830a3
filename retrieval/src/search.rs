//! Cosine top-k search over L2-normalised pool features, with two interchangeable backends.
//!
//! A backend only proposes candidates (the exact matmul, or faiss). Every candidate is then
//! re-scored with one canonical inner product ([`cosine`], f64 accumulation) and ranked by
//! (score desc, pool row asc). For an exhaustive backend the candidate list is widened until the
//! k-th re-scored hit lies more than [`TOLERANCE`] above the weakest candidate's backend score,
//! so no pool row outside the list can reach the top k: both backends return identical
//! neighbours and similarities. Pool rows are ordered by sample id, so the row tie-break is the
//! sample-id tie-break.
#[cfg(feature = "faiss")]
use std::sync::Mutex;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;

use crate::topk::{best_first, Features, Hit};
use crate::RetrievalError;

/// Bound on |backend score − canonical score| for unit vectors (f32 accumulation over ≤ 10⁴
/// dimensions stays far below it).
pub const TOLERANCE: f32 = 2e-4;
/// Extra candidates fetched beyond k and the excluded rows in the first round.
const MARGIN: usize = 32;
/// Upper bound on pool rows × queries of one score block of the exact backend (64 MiB of f32).
const BLOCK: usize = 1 << 24;

/// Which engine proposes candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Exact inner products by a blocked matrix product (faer); no system packages.
    Exact,
    /// faiss built from an index-factory string (`Flat` = `IndexFlatIP`); needs the `faiss`
    /// cargo feature. Factories other than `Flat` are approximate.
    Faiss { factory: String },
}

impl Backend {
    /// From `--backend exact|faiss` and `--index-factory` (which implies faiss).
    pub fn from_args(name: Option<&str>, factory: Option<&str>) -> Result<Self, RetrievalError> {
        match (name, factory) {
            (None | Some("exact"), None) => Ok(Backend::Exact),
            (Some("exact"), Some(_)) => {
                Err(RetrievalError::Backend("--index-factory needs --backend faiss".into()))
            }
            (None | Some("faiss"), f) => {
                let b = Backend::Faiss { factory: f.unwrap_or("Flat").to_owned() };
                b.check_available()?;
                Ok(b)
            }
            (Some(other), _) => Err(RetrievalError::Backend(format!(
                "--backend: unknown backend `{other}` (exact, faiss)"
            ))),
        }
    }

    /// Label for logs and reports: `exact` or `faiss:<factory>`.
    pub fn label(&self) -> String {
        match self {
            Backend::Exact => "exact".into(),
            Backend::Faiss { factory } => format!("faiss:{factory}"),
        }
    }

    /// Whether candidates cover the true top k (exact search).
    fn exhaustive(&self) -> bool {
        match self {
            Backend::Exact => true,
            Backend::Faiss { factory } => factory == "Flat",
        }
    }

    fn check_available(&self) -> Result<(), RetrievalError> {
        match self {
            Backend::Faiss { .. } if !cfg!(feature = "faiss") => Err(RetrievalError::Backend(
                "--backend faiss: this emu-eval was built without the `faiss` cargo feature (rebuild with --features faiss)".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// Proposes, per query, up to `kc` pool rows with their backend scores, best first.
trait Candidates: Send + Sync {
    fn candidates(
        &self,
        pool: &Features,
        queries: &Features,
        kc: usize,
    ) -> Result<Vec<Vec<Hit>>, RetrievalError>;
}

/// A searchable pool.
pub struct SearchIndex {
    pool: Features,
    backend: Backend,
    engine: Box<dyn Candidates>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SearchIndex({} × {}, {})",
            self.pool.rows(),
            self.pool.dim(),
            self.backend.label()
        )
    }
}

impl SearchIndex {
    /// Indexes `pool` (rows already L2-normalised, in sample-id order) with `backend`.
    pub fn build(pool: Features, backend: &Backend) -> Result<Self, RetrievalError> {
        backend.check_available()?;
        let engine: Box<dyn Candidates> = match backend {
            Backend::Exact => Box::new(ExactEngine),
            Backend::Faiss { factory } => faiss_engine(&pool, factory)?,
        };
        Ok(Self { pool, backend: backend.clone(), engine })
    }

    pub fn len(&self) -> usize {
        self.pool.rows()
    }
    pub fn is_empty(&self) -> bool {
        self.pool.rows() == 0
    }
    pub fn backend(&self) -> &Backend {
        &self.backend
    }
    pub fn pool(&self) -> &Features {
        &self.pool
    }

    /// For each query row, the `k` pool rows with the largest cosine similarity, best first,
    /// ties to the smaller row; rows in `exclude[q]` (sorted or not) are never returned.
    pub fn search(
        &self,
        queries: &Features,
        k: usize,
        exclude: &[Vec<usize>],
    ) -> Result<Vec<Vec<Hit>>, RetrievalError> {
        if queries.dim() != self.pool.dim() {
            return Err(RetrievalError::DimMismatch { got: queries.dim(), want: self.pool.dim() });
        }
        if exclude.len() != queries.rows() {
            return Err(RetrievalError::BadFeatures(format!(
                "{} exclusion lists for {} queries",
                exclude.len(),
                queries.rows()
            )));
        }
        let n = self.pool.rows();
        let widest = exclude.iter().map(Vec::len).max().unwrap_or(0);
        let kc = (k + widest + MARGIN).min(n);
        if k == 0 || n == 0 {
            return Ok(vec![Vec::new(); queries.rows()]);
        }
        let first = self.engine.candidates(&self.pool, queries, kc)?;
        first
            .into_par_iter()
            .enumerate()
            .map(|(q, cands)| {
                let mut cands = cands;
                let mut kc = kc;
                loop {
                    if let Some(hits) = self.refine(queries.row(q), &cands, k, &exclude[q], kc >= n)
                    {
                        return Ok(hits);
                    }
                    kc = (kc * 2).min(n);
                    let one = Features::new(queries.dim(), queries.row(q).to_vec())?;
                    cands = self.engine.candidates(&self.pool, &one, kc)?.pop().unwrap_or_default();
                }
            })
            .collect()
    }

    /// Re-scores candidates canonically and ranks them; `None` when the list may miss a top-k row.
    fn refine(
        &self,
        query: &[f32],
        cands: &[Hit],
        k: usize,
        exclude: &[usize],
        complete: bool,
    ) -> Option<Vec<Hit>> {
        let mut hits: Vec<Hit> = cands
            .iter()
            .filter(|h| !exclude.contains(&h.index))
            .map(|h| Hit { index: h.index, score: cosine(self.pool.row(h.index), query) })
            .collect();
        hits.sort_by(best_first);
        let weakest = cands.iter().map(|h| h.score).fold(f32::INFINITY, f32::min);
        let enough = hits.len() >= k && hits[k - 1].score > weakest + TOLERANCE;
        if complete || !self.backend.exhaustive() || enough {
            hits.truncate(k);
            Some(hits)
        } else {
            None
        }
    }
}

/// The canonical similarity: inner product accumulated in f64, rounded to f32.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum::<f64>() as f32
}

/// Exact scores by blocks: S = P·Qᵀ (pool × query block), then a partial sort per query.
struct ExactEngine;

impl Candidates for ExactEngine {
    fn candidates(
        &self,
        pool: &Features,
        queries: &Features,
        kc: usize,
    ) -> Result<Vec<Vec<Hit>>, RetrievalError> {
        let (n, d) = (pool.rows(), pool.dim());
        let p = MatRef::from_row_major_slice(pool.as_slice(), n, d);
        let per_block = (BLOCK / n.max(1)).max(1);
        let mut out = Vec::with_capacity(queries.rows());
        for start in (0..queries.rows()).step_by(per_block) {
            let m = per_block.min(queries.rows() - start);
            let q =
                MatRef::from_row_major_slice(&queries.as_slice()[start * d..(start + m) * d], m, d);
            let mut s = Mat::<f32>::zeros(n, m); // (pool, queries), column-major: one query per column
            matmul(s.as_mut(), Accum::Replace, p, q.transpose(), 1.0f32, Par::rayon(0));
            let block: Vec<Vec<Hit>> =
                (0..m).into_par_iter().map(|j| best_of(s.col_as_slice(j), kc)).collect();
            out.extend(block);
        }
        Ok(out)
    }
}

/// The `kc` best entries of a score column, best first (ties to the smaller row). A buffer of
/// at most 2·kc hits is cut back to kc whenever it fills; scores below the kc-th kept one are
/// skipped, so no per-query copy of the whole column is made.
fn best_of(scores: &[f32], kc: usize) -> Vec<Hit> {
    let kc = kc.max(1);
    let mut kept: Vec<Hit> = Vec::with_capacity(2 * kc);
    let mut floor = f32::NEG_INFINITY;
    for (index, &score) in scores.iter().enumerate() {
        if score < floor {
            continue;
        }
        kept.push(Hit { index, score });
        if kept.len() == 2 * kc {
            kept.select_nth_unstable_by(kc - 1, best_first);
            kept.truncate(kc);
            floor = kept[kc - 1].score;
        }
    }
    if kept.len() > kc {
        kept.select_nth_unstable_by(kc - 1, best_first);
        kept.truncate(kc);
    }
    kept.sort_by(best_first);
    kept
}

#[cfg(feature = "faiss")]
fn faiss_engine(pool: &Features, factory: &str) -> Result<Box<dyn Candidates>, RetrievalError> {
    use faiss::{index_factory, Index, MetricType};
    let err =
        |e: faiss::error::Error| RetrievalError::Backend(format!("faiss index `{factory}`: {e}"));
    let mut index =
        index_factory(pool.dim() as u32, factory, MetricType::InnerProduct).map_err(err)?;
    if !index.is_trained() {
        index.train(pool.as_slice()).map_err(err)?;
    }
    index.add(pool.as_slice()).map_err(err)?;
    Ok(Box::new(FaissEngine { index: Mutex::new(index), factory: factory.to_owned() }))
}

#[cfg(not(feature = "faiss"))]
fn faiss_engine(_pool: &Features, _factory: &str) -> Result<Box<dyn Candidates>, RetrievalError> {
    Err(RetrievalError::Backend("faiss: built without the `faiss` cargo feature".into()))
}

#[cfg(feature = "faiss")]
struct FaissEngine {
    index: Mutex<faiss::index::IndexImpl>,
    factory: String,
}

#[cfg(feature = "faiss")]
impl Candidates for FaissEngine {
    fn candidates(
        &self,
        _pool: &Features,
        queries: &Features,
        kc: usize,
    ) -> Result<Vec<Vec<Hit>>, RetrievalError> {
        use faiss::Index;
        let mut index = self
            .index
            .lock()
            .map_err(|_| RetrievalError::Backend("faiss index lock poisoned".into()))?;
        let res = index.search(queries.as_slice(), kc).map_err(|e| {
            RetrievalError::Backend(format!("faiss index `{}`: search: {e}", self.factory))
        })?;
        Ok(res
            .labels
            .chunks(kc)
            .zip(res.distances.chunks(kc))
            .map(|(labels, scores)| {
                labels
                    .iter()
                    .zip(scores)
                    .filter_map(|(l, &score)| l.get().map(|i| Hit { index: i as usize, score }))
                    .collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasks::rng::SplitMix64;

    pub(crate) fn random_unit(rows: usize, dim: usize, seed: u64) -> Features {
        let mut rng = SplitMix64::new(seed);
        let mut f =
            Features::new(dim, (0..rows * dim).map(|_| rng.uniform() as f32 - 0.5).collect())
                .unwrap();
        f.normalize();
        f
    }

    fn brute(pool: &Features, q: &[f32], k: usize, exclude: &[usize]) -> Vec<Hit> {
        let mut all: Vec<Hit> = (0..pool.rows())
            .filter(|i| !exclude.contains(i))
            .map(|i| Hit { index: i, score: cosine(pool.row(i), q) })
            .collect();
        all.sort_by(best_first);
        all.truncate(k);
        all
    }

    #[test]
    fn exact_matches_brute_force_with_exclusions() {
        let pool = random_unit(700, 24, 1);
        let queries = random_unit(40, 24, 2);
        let index = SearchIndex::build(pool.clone(), &Backend::Exact).unwrap();
        let exclude: Vec<Vec<usize>> =
            (0..40).map(|q| if q % 3 == 0 { vec![q, q + 100] } else { vec![] }).collect();
        for k in [1, 5, 64] {
            let got = index.search(&queries, k, &exclude).unwrap();
            for (q, hits) in got.iter().enumerate() {
                assert_eq!(hits, &brute(&pool, queries.row(q), k, &exclude[q]), "q={q} k={k}");
            }
        }
    }

    #[test]
    fn duplicate_rows_tie_to_the_smaller_row_beyond_the_margin() {
        // 100 identical rows (a tie group wider than the first candidate round) among random ones.
        let base = random_unit(300, 8, 3);
        let dup = base.row(0).to_vec();
        let data: Vec<f32> = (0..300)
            .flat_map(|i| if i % 3 == 0 { dup.clone() } else { base.row(i).to_vec() })
            .collect();
        let pool = Features::new(8, data).unwrap();
        let index = SearchIndex::build(pool.clone(), &Backend::Exact).unwrap();
        let q = Features::new(8, dup.clone()).unwrap();
        let hits = index.search(&q, 90, &[vec![0, 3]]).unwrap().remove(0);
        assert_eq!(hits, brute(&pool, &dup, 90, &[0, 3]));
        assert_eq!(hits[0].index, 6);
        assert!(hits.iter().all(|h| h.index % 3 == 0));
    }

    #[test]
    fn small_pools_and_bad_input() {
        let pool = random_unit(3, 4, 5);
        let index = SearchIndex::build(pool, &Backend::Exact).unwrap();
        let q = random_unit(2, 4, 6);
        let got = index.search(&q, 10, &[vec![], vec![1]]).unwrap();
        assert_eq!(got[0].len(), 3);
        assert_eq!(got[1].len(), 2);
        assert!(index.search(&random_unit(1, 5, 1), 1, &[vec![]]).is_err());
        assert!(index.search(&q, 1, &[vec![]]).is_err());
    }

    #[test]
    fn backend_arguments() {
        assert_eq!(Backend::from_args(None, None).unwrap(), Backend::Exact);
        assert!(Backend::from_args(Some("exact"), Some("IVF16,Flat")).is_err());
        assert!(Backend::from_args(Some("annoy"), None).is_err());
        let f = Backend::from_args(None, Some("HNSW32"));
        assert_eq!(f.is_ok(), cfg!(feature = "faiss"));
        if let Err(e) = f {
            assert!(e.to_string().contains("`faiss` cargo feature"), "{e}");
        }
    }

    #[cfg(feature = "faiss")]
    #[test]
    fn faiss_flat_equals_exact() {
        let pool = random_unit(2000, 32, 7);
        let queries = random_unit(100, 32, 8);
        let exclude: Vec<Vec<usize>> = (0..100).map(|q| vec![q * 7]).collect();
        let exact = SearchIndex::build(pool.clone(), &Backend::Exact).unwrap();
        let faiss = SearchIndex::build(pool, &Backend::Faiss { factory: "Flat".into() }).unwrap();
        for k in [1, 8, 50] {
            assert_eq!(
                exact.search(&queries, k, &exclude).unwrap(),
                faiss.search(&queries, k, &exclude).unwrap()
            );
        }
        // An approximate factory passes through and still returns ranked, valid rows.
        let hnsw =
            SearchIndex::build(exact.pool().clone(), &Backend::Faiss { factory: "HNSW16".into() })
                .unwrap();
        let hits = hnsw.search(&queries, 8, &exclude).unwrap();
        assert!(hits
            .iter()
            .all(|h| h.len() == 8 && h.windows(2).all(|w| best_first(&w[0], &w[1]).is_le())));
        assert!(SearchIndex::build(
            exact.pool().clone(),
            &Backend::Faiss { factory: "NoSuchIndex".into() }
        )
        .is_err());
    }
}
