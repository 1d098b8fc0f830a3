//! Exact inner-product top-k over an in-memory feature matrix (rows = pool items).
//! With L2-normalised rows (see [`Features::normalize`]) the inner product is the cosine similarity
//! RICES ranks by.
use std::cmp::Ordering;

use rayon::prelude::*;

use crate::RetrievalError;

/// Row-major `rows × dim` f32 matrix of finite values.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    dim: usize,
    data: Vec<f32>,
}

/// One retrieved pool item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub index: usize,
    pub score: f32,
}

impl Features {
    pub fn new(dim: usize, data: Vec<f32>) -> Result<Self, RetrievalError> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(RetrievalError::BadFeatures(format!(
                "{} values do not form rows of {dim}",
                data.len()
            )));
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(RetrievalError::BadFeatures(format!(
                "non-finite value in row {}",
                i / dim
            )));
        }
        Ok(Self { dim, data })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn rows(&self) -> usize {
        self.data.len() / self.dim
    }

    /// All rows, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Scales every row to unit L2 norm (all-zero rows stay zero).
    pub fn normalize(&mut self) {
        let dim = self.dim;
        self.data.par_chunks_mut(dim).for_each(normalize_row);
    }

    /// Mean of rows (a video's feature = mean of its frame features, datasets.md 1).
    pub fn mean_row(rows: &[&[f32]]) -> Option<Vec<f32>> {
        let first = rows.first()?;
        let mut acc = vec![0f64; first.len()];
        for r in rows {
            if r.len() != acc.len() {
                return None;
            }
            acc.iter_mut().zip(r.iter()).for_each(|(a, v)| *a += *v as f64);
        }
        Some(acc.into_iter().map(|a| (a / rows.len() as f64) as f32).collect())
    }
}

/// Scales `r` to unit L2 norm (norm in f64; an all-zero row stays zero).
pub fn normalize_row(r: &mut [f32]) {
    let n = r.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>().sqrt();
    if n > 0.0 {
        r.iter_mut().for_each(|v| *v = (*v as f64 / n) as f32);
    }
}

/// Best first: larger score, then smaller index (deterministic tie-break).
pub(crate) fn best_first(a: &Hit, b: &Hit) -> Ordering {
    b.score.total_cmp(&a.score).then(a.index.cmp(&b.index))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The `k` pool rows with the largest inner product with `query`, best first; ties go to the
/// smaller index.
pub fn top_k(pool: &Features, query: &[f32], k: usize) -> Result<Vec<Hit>, RetrievalError> {
    if query.len() != pool.dim {
        return Err(RetrievalError::DimMismatch { got: query.len(), want: pool.dim });
    }
    if query.iter().any(|v| !v.is_finite()) {
        return Err(RetrievalError::BadFeatures("non-finite value in the query".into()));
    }
    let mut hits: Vec<Hit> = pool
        .data
        .par_chunks(pool.dim)
        .enumerate()
        .map(|(index, r)| Hit { index, score: dot(r, query) })
        .collect();
    let k = k.min(hits.len());
    if k == 0 {
        return Ok(Vec::new());
    }
    if k < hits.len() {
        hits.select_nth_unstable_by(k - 1, best_first);
        hits.truncate(k);
    }
    hits.sort_by(best_first);
    Ok(hits)
}

/// [`top_k`] for every row of `queries`, queries in parallel.
pub fn top_k_batch(
    pool: &Features,
    queries: &Features,
    k: usize,
) -> Result<Vec<Vec<Hit>>, RetrievalError> {
    (0..queries.rows()).into_par_iter().map(|i| top_k(pool, queries.row(i), k)).collect()
}

/// Pool indices in prompt order: the most similar example last, right before the query
/// (OpenFlamingo's RICES reverses its best-first list the same way).
pub fn in_prompt_order(hits: &[Hit]) -> Vec<usize> {
    hits.iter().rev().map(|h| h.index).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(pool: &Features, q: &[f32], k: usize) -> Vec<usize> {
        let mut all: Vec<Hit> =
            (0..pool.rows()).map(|i| Hit { index: i, score: dot(pool.row(i), q) }).collect();
        all.sort_by(best_first);
        all.into_iter().take(k).map(|h| h.index).collect()
    }

    #[test]
    fn matches_brute_force_with_ties() {
        // 50 rows of 4 dims with many repeated rows (ties).
        let data: Vec<f32> = (0..200).map(|i| ((i * 37 % 11) as f32 - 5.0) / 3.0).collect();
        let pool = Features::new(4, data).unwrap();
        for q in [[1.0, 0.0, 0.0, 0.0], [0.5, -1.0, 2.0, 0.0], [0.0; 4]] {
            for k in [0, 1, 3, 8, 50, 60] {
                let got: Vec<usize> =
                    top_k(&pool, &q, k).unwrap().iter().map(|h| h.index).collect();
                assert_eq!(got, brute(&pool, &q, k), "q={q:?} k={k}");
            }
        }
        // All-zero query: every score ties, so the first k indices win.
        let got: Vec<usize> = top_k(&pool, &[0.0; 4], 3).unwrap().iter().map(|h| h.index).collect();
        assert_eq!(got, vec![0, 1, 2]);
    }

    #[test]
    fn batch_equals_single_queries() {
        let pool = Features::new(3, (0..90).map(|i| (i as f32 * 0.7).sin()).collect()).unwrap();
        let queries = Features::new(3, (0..15).map(|i| (i as f32 * 1.3).cos()).collect()).unwrap();
        let batch = top_k_batch(&pool, &queries, 4).unwrap();
        for (i, hits) in batch.iter().enumerate() {
            assert_eq!(hits, &top_k(&pool, queries.row(i), 4).unwrap());
        }
    }

    #[test]
    fn normalize_gives_cosine() {
        let mut f = Features::new(2, vec![3.0, 4.0, 0.0, 0.0]).unwrap();
        f.normalize();
        assert_eq!(f.row(0), &[0.6, 0.8]);
        assert_eq!(f.row(1), &[0.0, 0.0]);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(Features::new(3, vec![1.0; 4]).is_err());
        assert!(Features::new(1, vec![f32::NAN]).is_err());
        let f = Features::new(2, vec![1.0; 4]).unwrap();
        assert!(top_k(&f, &[1.0], 1).is_err());
        assert!(top_k(&f, &[f32::INFINITY, 0.0], 1).is_err());
    }

    #[test]
    fn prompt_order_puts_best_last() {
        let hits = [Hit { index: 5, score: 0.9 }, Hit { index: 2, score: 0.5 }];
        assert_eq!(in_prompt_order(&hits), vec![2, 5]);
        assert_eq!(Features::mean_row(&[&[1.0, 2.0], &[3.0, 4.0]]), Some(vec![2.0, 3.0]));
    }
}
