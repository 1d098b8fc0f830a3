//! Sources of the Fréchet distance (feature matrices or pytorch-fid statistics) and the
//! cheapest exact route between two of them.
//!
//! With fewer samples than features the covariances have low rank and need not be formed.
//! Write `S = A^T A` with `A` the centered rows divided by `sqrt(n - 1)` (`n x d`):
//! - two feature matrices: `S1 S2 = A^T (A B^T) B` has the non-zero eigenvalues of `M M^T`,
//!   `M = A B^T` (`n1 x n2`), so `tr((S1 S2)^(1/2))` is the sum of the singular values of `M`,
//!   and `tr(S) = ||A||_F^2` ([`trace_sqrt_gram`]);
//! - statistics `S1` and a feature matrix `B`: `S1 B^T B` has the non-zero eigenvalues of
//!   `B S1 B^T` (`n2 x n2`) ([`trace_sqrt_mixed`]).
//!
//! The dense route ([`fid::frechet_terms`]) is taken where a flop estimate says it is cheaper
//! ([`route`]); every route computes the same quantity.
use std::path::Path;

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, Mat, MatRef, Par, Side};

use super::fid::{self, FrechetTerms};
use crate::input::InputError;

/// One side of the Fréchet distance.
#[derive(Debug, Clone)]
pub enum FidSource {
    /// A feature matrix (rows = samples), row-major, with its column mean.
    Features { rows: usize, cols: usize, data: Vec<f64>, mu: Vec<f64> },
    /// pytorch-fid statistics: mean and row-major `d x d` covariance.
    Stats { mu: Vec<f64>, sigma: Vec<f64> },
}

impl FidSource {
    /// An `.npz` (pytorch-fid statistics) or an `.npy` feature matrix, checked as
    /// [`fid::fid_files`] documents.
    pub fn load(path: &Path) -> Result<Self, InputError> {
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz")) {
            let (mu, sigma, _) = super::npz::read_stats(path)?;
            Ok(Self::Stats { mu, sigma })
        } else {
            let (rows, cols, data) = fid::read_features(path)?;
            Ok(Self::features(rows, cols, data))
        }
    }

    /// A row-major `rows x cols` feature matrix.
    pub fn features(rows: usize, cols: usize, data: Vec<f64>) -> Self {
        assert_eq!(rows * cols, data.len(), "FidSource: data length is not rows * cols");
        let mu = fid::column_mean(rows, cols, &data);
        Self::Features { rows, cols, data, mu }
    }

    /// Feature width `d`.
    pub fn width(&self) -> usize {
        self.mu().len()
    }

    pub fn mu(&self) -> &[f64] {
        match self {
            Self::Features { mu, .. } | Self::Stats { mu, .. } => mu,
        }
    }

    /// Sample count of a feature matrix; `None` for statistics.
    fn samples(&self) -> Option<usize> {
        match self {
            Self::Features { rows, .. } => Some(*rows),
            Self::Stats { .. } => None,
        }
    }

    /// `(mu, sigma)`, the covariance formed as `fid::stats` forms it.
    pub fn stats(&self) -> (Vec<f64>, Vec<f64>) {
        match self {
            Self::Features { rows, cols, data, .. } => fid::stats(*rows, *cols, data),
            Self::Stats { mu, sigma } => (mu.clone(), sigma.clone()),
        }
    }

    /// `tr(sigma)`; for features the summed squared deviations over `n - 1`.
    fn trace(&self) -> f64 {
        match self {
            Self::Features { rows, cols, data, mu } => {
                let ss: f64 = data
                    .chunks_exact(*cols)
                    .map(|r| r.iter().zip(mu).map(|(x, m)| (x - m) * (x - m)).sum::<f64>())
                    .sum();
                ss / (*rows as f64 - 1.0)
            }
            Self::Stats { mu, sigma } => (0..mu.len()).map(|i| sigma[i * mu.len() + i]).sum(),
        }
    }

    /// `A`: the centered rows divided by `sqrt(n - 1)`, so that `sigma = A^T A`.
    fn scaled_centered(&self) -> Option<Mat<f64>> {
        let Self::Features { rows, cols, data, mu } = self else { return None };
        let s = 1.0 / (*rows as f64 - 1.0).sqrt();
        Some(Mat::from_fn(*rows, *cols, |i, j| (data[i * cols + j] - mu[j]) * s))
    }
}

/// How the trace of the square root is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Both `d x d` covariances, two symmetric eigendecompositions of size up to `d`.
    Dense,
    /// Two feature matrices: singular values of `A B^T` (`n1 x n2`).
    Gram,
    /// Statistics and a feature matrix of `n` rows: eigenvalues of `B S1 B^T` (`n x n`).
    Mixed,
}

/// The route with the smallest flop estimate for sample counts `n1`, `n2` (`None` for
/// statistics) and width `d`. Eigendecompositions and SVDs are counted as `10 k^3`.
pub fn route(n1: Option<usize>, n2: Option<usize>, d: usize) -> Route {
    let d = d as f64;
    let cov = |n: Option<usize>| n.map_or(0.0, |n| n as f64 * d * d);
    let dense = cov(n1) + cov(n2) + 10.0 * d.powi(3);
    let other = match (n1, n2) {
        (Some(a), Some(b)) => {
            let (a, b) = (a as f64, b as f64);
            (Route::Gram, a * b * d + 10.0 * a * b * a.min(b))
        }
        (Some(n), None) | (None, Some(n)) => {
            let n = n as f64;
            (Route::Mixed, n * d * d + n * n * d + 10.0 * n.powi(3))
        }
        (None, None) => return Route::Dense,
    };
    if other.1 < dense {
        other.0
    } else {
        Route::Dense
    }
}

/// The terms of the Fréchet distance between two sources of equal width, by [`route`].
/// `trace_sqrt` is NaN when a decomposition does not converge.
pub fn terms(a: &FidSource, b: &FidSource) -> FrechetTerms {
    assert_eq!(a.width(), b.width(), "fid_source::terms: widths differ");
    match route(a.samples(), b.samples(), a.width()) {
        Route::Dense => {
            let ((mu1, s1), (mu2, s2)) = (a.stats(), b.stats());
            fid::frechet_terms(&mu1, &s1, &mu2, &s2)
        }
        Route::Gram | Route::Mixed => low_rank_terms(a, b),
    }
}

/// [`terms`] by the Gram or mixed route (at least one side must be a feature matrix).
pub fn low_rank_terms(a: &FidSource, b: &FidSource) -> FrechetTerms {
    let d = a.width();
    let mean_term = a.mu().iter().zip(b.mu()).map(|(x, y)| (x - y) * (x - y)).sum();
    let (ma, mb) = (a.scaled_centered(), b.scaled_centered());
    let trace_sqrt = match (&ma, &mb, a, b) {
        (Some(x), Some(y), _, _) => trace_sqrt_gram(x.as_ref(), y.as_ref()),
        (Some(x), None, _, FidSource::Stats { sigma, .. })
        | (None, Some(x), FidSource::Stats { sigma, .. }, _) => {
            trace_sqrt_mixed(MatRef::from_row_major_slice(sigma, d, d), x.as_ref())
        }
        _ => panic!("fid_source::low_rank_terms: two statistics files take the dense route"),
    };
    FrechetTerms {
        mean_term,
        trace_sigma1: a.trace(),
        trace_sigma2: b.trace(),
        trace_sqrt: trace_sqrt.unwrap_or(f64::NAN),
    }
}

/// `tr((A^T A B^T B)^(1/2))` = the sum of the singular values of `A B^T`. `None` if the SVD
/// does not converge.
pub fn trace_sqrt_gram(a: MatRef<f64>, b: MatRef<f64>) -> Option<f64> {
    let mut m = Mat::<f64>::zeros(a.nrows(), b.nrows());
    matmul(m.as_mut(), Accum::Replace, a, b.transpose(), 1.0, par());
    Some(m.singular_values().ok()?.iter().sum())
}

/// `tr((S B^T B)^(1/2))` = `sum sqrt(eig(B S B^T))` for symmetric PSD `S` (`d x d`) and `B`
/// (`n x d`); negative round-off eigenvalues are clamped to 0. `None` if the eigensolver fails.
pub fn trace_sqrt_mixed(sigma: MatRef<f64>, b: MatRef<f64>) -> Option<f64> {
    let n = b.nrows();
    let mut bs = Mat::<f64>::zeros(n, sigma.ncols());
    matmul(bs.as_mut(), Accum::Replace, b, sigma, 1.0, par());
    let mut g = Mat::<f64>::zeros(n, n);
    triangular::matmul(
        g.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        bs.as_ref(),
        BlockStructure::Rectangular,
        b.transpose(),
        BlockStructure::Rectangular,
        1.0,
        par(),
    );
    let l = g.self_adjoint_eigenvalues(Side::Lower).ok()?;
    Some(l.iter().map(|&x| x.max(0.0).sqrt()).sum())
}

fn par() -> Par {
    Par::rayon(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64 uniform in (-1, 1), a deterministic stand-in for random features.
    fn random(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = s;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
            })
            .collect()
    }

    fn dense(a: &FidSource, b: &FidSource) -> FrechetTerms {
        let ((mu1, s1), (mu2, s2)) = (a.stats(), b.stats());
        fid::frechet_terms(&mu1, &s1, &mu2, &s2)
    }

    fn close(got: f64, want: f64, tol: f64, what: &str) {
        let e = (got - want).abs() / want.abs().max(1e-12);
        assert!(e < tol, "{what}: {got} vs dense {want} (rel {e:e})");
    }

    #[test]
    fn routes_follow_the_cost_estimate() {
        assert_eq!(route(Some(3), Some(3), 8000), Route::Gram);
        assert_eq!(route(Some(500), Some(500), 2048), Route::Gram);
        assert_eq!(route(Some(10_000), Some(10_000), 2048), Route::Dense);
        assert_eq!(route(None, Some(3), 8000), Route::Mixed);
        assert_eq!(route(Some(50_000), None, 2048), Route::Dense);
        assert_eq!(route(None, None, 4), Route::Dense);
    }

    #[test]
    fn gram_and_mixed_routes_equal_dense_on_random_data() {
        // (n1, n2, d): fewer samples than features, more, and mixed.
        for (n1, n2, d) in [(3, 5, 40), (7, 7, 30), (12, 4, 9), (40, 35, 20), (2, 2, 3)] {
            let a = FidSource::features(n1, d, random(n1 * d, n1 as u64));
            let b = FidSource::features(n2, d, random(n2 * d, 100 + n2 as u64));
            let want = dense(&a, &b);
            let gram = low_rank_terms(&a, &b);
            let what = format!("gram {n1}x{d} vs {n2}x{d}");
            close(gram.trace_sigma1, want.trace_sigma1, 1e-12, &what);
            close(gram.trace_sigma2, want.trace_sigma2, 1e-12, &what);
            close(gram.mean_term, want.mean_term, 1e-12, &what);
            // Where a covariance is rank-deficient the dense route keeps round-off eigenvalues
            // (~1e-16) of it, each adding ~1e-8 to the trace: its own error, not the Gram's.
            let tol = if n1.min(n2) > d { 1e-10 } else { 1e-6 };
            close(gram.trace_sqrt, want.trace_sqrt, tol, &what);
            close(gram.distance(), want.distance(), tol, &what);
            let (mu, sigma) = a.stats();
            let stats = FidSource::Stats { mu, sigma };
            for (x, y) in [(&stats, &b), (&b, &stats)] {
                let mixed = low_rank_terms(x, y);
                // B S1 B^T has rank min(n, d): round-off eigenvalues again where n > d.
                close(mixed.distance(), want.distance(), 1e-6, &format!("mixed: {what}"));
            }
        }
    }

    #[test]
    fn identical_low_rank_sources_are_at_distance_zero() {
        let a = FidSource::features(3, 50, random(150, 9));
        let t = terms(&a, &a);
        assert!(t.distance().abs() < 1e-12 * t.trace_sigma1, "{t:?}");
    }

    #[test]
    fn three_by_eight_thousand_takes_the_gram_route_and_is_finite() {
        // The case: its covariances have rank 2; the dense route would need two
        // 8000 x 8000 eigendecompositions. This one multiplies 3 x 8000 by 8000 x 3.
        let (n, d) = (3, 8000);
        let a = FidSource::features(n, d, random(n * d, 1));
        let b = FidSource::features(n, d, random(n * d, 2));
        assert_eq!(route(Some(n), Some(n), d), Route::Gram);
        let t = terms(&a, &b);
        assert!(t.distance().is_finite() && t.distance() > 0.0, "{t:?}");
        assert!(t.trace_sqrt <= (t.trace_sigma1 * t.trace_sigma2).sqrt() + 1e-9, "{t:?}");
    }
}
