//! Fréchet distance between two feature matrices (spec section 6.1, pytorch-fid 0.3.0
//! conventions: features as float64, column mean, sample covariance with n - 1).
//!
//! The trace of `(S1 S2)^(1/2)` uses the spec's symmetric eigendecomposition route instead
//! of scipy's Schur-based `sqrtm`: with `S1 = V diag(w) V^T` and `U = V diag(sqrt(max(w, 0)))`,
//! the eigenvalues of `S1 S2` are those of the symmetric PSD matrix `U^T S2 U` (orthogonally
//! similar to the spec's `S1^(1/2) S2 S1^(1/2)`), so `tr((S1 S2)^(1/2)) = sum sqrt(max(l, 0))`.
//! Columns of `U` for `w <= 0` are zero and are dropped, which shrinks the problem for
//! rank-deficient covariances.
use std::path::Path;

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, Mat, MatRef, Par, Side};

use super::fid_source::{self, FidSource};
use super::npy;
use crate::input::InputError;
use crate::limits;

/// FID between two statistics sources: `.npy` feature matrices (rows = samples, columns =
/// features) or pytorch-fid `.npz` statistics (`mu`, `sigma`). With fewer samples than
/// features the distance goes through the small Gram matrices ([`fid_source::route`]).
///
/// Errors: unreadable or malformed files, fewer than 2 rows, non-finite values, different
/// feature widths, or an eigendecomposition that does not converge.
pub fn fid_files(a: &Path, b: &Path) -> Result<f64, InputError> {
    let (sa, sb) = (FidSource::load(a)?, FidSource::load(b)?);
    let (d1, d2) = (sa.width(), sb.width());
    if d1 != d2 {
        return Err(InputError::field(
            b,
            "header.shape",
            format!("feature width {d2} differs from {d1} in {}", a.display()),
        ));
    }
    let fid = fid_source::terms(&sa, &sb).distance();
    if fid.is_finite() {
        Ok(fid)
    } else {
        Err(InputError::file(
            a,
            format!(
                "Fréchet distance with {} is not finite (eigendecomposition failed)",
                b.display()
            ),
        ))
    }
}

/// Reads one feature file and returns `(mu, sigma, width)`. The shape is checked from the
/// header before the values are decoded or any covariance is allocated.
pub(crate) fn file_stats(path: &Path) -> Result<(Vec<f64>, Vec<f64>, usize), InputError> {
    let (rows, cols, data) = read_features(path)?;
    let (mu, sigma) = stats(rows, cols, &data);
    Ok((mu, sigma, cols))
}

/// Reads one feature file as `(rows, cols, row-major values)`: the shape is checked from the
/// header before the values are decoded, and every value must be finite.
pub(crate) fn read_features(path: &Path) -> Result<(usize, usize, Vec<f64>), InputError> {
    let bytes =
        std::fs::read(path).map_err(|e| InputError::file(path, format!("cannot read: {e}")))?;
    let header =
        npy::parse_header(&bytes).map_err(|(field, msg)| InputError::new(path, field, msg))?;
    if let [rows, cols] = header.shape[..] {
        check_shape(path, rows, cols)?;
    }
    let (rows, cols, data) =
        npy::parse_matrix(&bytes).map_err(|(field, msg)| InputError::new(path, field, msg))?;
    check_shape(path, rows, cols)?;
    if let Some(i) = data.iter().position(|x| !x.is_finite()) {
        return Err(InputError::file(
            path,
            format!("non-finite value {} at row {}, column {}", data[i], i / cols, i % cols),
        ));
    }
    Ok((rows, cols, data))
}

/// At least 2 rows, at least 1 column, and a covariance within [`limits::FID_FEATURES`].
fn check_shape(path: &Path, rows: usize, cols: usize) -> Result<(), InputError> {
    if rows < 2 {
        return Err(InputError::field(
            path,
            "header.shape",
            format!("{rows} rows; the covariance needs at least 2 samples"),
        ));
    }
    if cols == 0 {
        return Err(InputError::field(path, "header.shape", "0 feature columns"));
    }
    let mib = (cols as f64).powi(2) * 8.0 / (1u64 << 20) as f64;
    limits::FID_FEATURES
        .check(
            cols as u64,
            &format!("{cols} feature columns (each covariance matrix needs {mib:.0} MiB)"),
        )
        .map_err(|m| InputError::field(path, "header.shape", m.to_string()))
}

/// Column mean and sample covariance (`np.mean(axis=0)`, `np.cov(rowvar=False)`, denominator
/// n - 1) of a row-major `rows x cols` matrix. `sigma` is row-major `cols x cols`, exactly
/// symmetric. With one row the covariance is NaN/inf, as numpy's.
pub fn stats(rows: usize, cols: usize, data: &[f64]) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(rows * cols, data.len(), "stats: data length is not rows * cols");
    let mu = column_mean(rows, cols, data);
    let sigma = covariance(rows, cols, data, &mu);
    (mu, sigma)
}

/// `np.mean(X, axis=0)` in float64.
pub(crate) fn column_mean(rows: usize, cols: usize, data: &[f64]) -> Vec<f64> {
    let mut sum = vec![0.0; cols];
    for row in data.chunks_exact(cols.max(1)) {
        sum.iter_mut().zip(row).for_each(|(s, x)| *s += x);
    }
    sum.iter().map(|s| s / rows as f64).collect()
}

/// `np.cov(X, rowvar=False)`: `(X - mu)^T (X - mu) / (n - 1)`; only the lower triangle is
/// multiplied (a symmetric rank-k update), then mirrored.
fn covariance(rows: usize, cols: usize, data: &[f64], mu: &[f64]) -> Vec<f64> {
    let centered: Vec<f64> = data
        .chunks_exact(cols.max(1))
        .flat_map(|row| row.iter().zip(mu).map(|(x, m)| x - m))
        .collect();
    let xc = MatRef::from_row_major_slice(&centered, rows, cols);
    let mut c = Mat::<f64>::zeros(cols, cols);
    let denom = rows as f64 - 1.0;
    triangular::matmul(
        c.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        xc.transpose(),
        BlockStructure::Rectangular,
        xc,
        BlockStructure::Rectangular,
        1.0 / denom,
        par(),
    );
    symmetric_row_major(&c)
}

/// Row-major copy of a symmetric matrix given by its lower triangle.
fn symmetric_row_major(lower: &Mat<f64>) -> Vec<f64> {
    let n = lower.nrows();
    let mut out = vec![0.0; n * n];
    for j in 0..n {
        for i in j..n {
            let v = lower[(i, j)];
            out[i * n + j] = v;
            out[j * n + i] = v;
        }
    }
    out
}

fn par() -> Par {
    Par::rayon(0)
}

/// The terms of `FID = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrechetTerms {
    pub mean_term: f64,
    pub trace_sigma1: f64,
    pub trace_sigma2: f64,
    /// `tr((S1 S2)^(1/2))`; NaN when an eigendecomposition did not converge.
    pub trace_sqrt: f64,
}

impl FrechetTerms {
    /// Summed in pytorch-fid's order: `diff.dot(diff) + tr(S1) + tr(S2) - 2 * tr_covmean`.
    pub fn distance(&self) -> f64 {
        self.mean_term + self.trace_sigma1 + self.trace_sigma2 - 2.0 * self.trace_sqrt
    }
}

/// pytorch-fid `calculate_frechet_distance` (trace of the square root by the symmetric route).
/// `sigma1`, `sigma2` are row-major `d x d` symmetric matrices, `d = mu1.len()`.
/// NaN when an eigendecomposition does not converge.
pub fn frechet_distance(mu1: &[f64], sigma1: &[f64], mu2: &[f64], sigma2: &[f64]) -> f64 {
    frechet_terms(mu1, sigma1, mu2, sigma2).distance()
}

/// The terms of [`frechet_distance`].
pub fn frechet_terms(mu1: &[f64], sigma1: &[f64], mu2: &[f64], sigma2: &[f64]) -> FrechetTerms {
    let d = mu1.len();
    assert!(
        mu2.len() == d && sigma1.len() == d * d && sigma2.len() == d * d,
        "frechet_distance: dimensions differ (mu1 {d}, mu2 {}, sigma1 {}, sigma2 {})",
        mu2.len(),
        sigma1.len(),
        sigma2.len()
    );
    FrechetTerms {
        mean_term: mu1.iter().zip(mu2).map(|(a, b)| (a - b) * (a - b)).sum(),
        trace_sigma1: trace(d, sigma1),
        trace_sigma2: trace(d, sigma2),
        trace_sqrt: trace_sqrt_product(d, sigma1, sigma2).unwrap_or(f64::NAN),
    }
}

fn trace(d: usize, m: &[f64]) -> f64 {
    (0..d).map(|i| m[i * d + i]).sum()
}

/// `tr((S1 S2)^(1/2))` for symmetric PSD `S1`, `S2` (row-major `d x d`): eigenvalues of
/// `U^T S2 U` with `U = V diag(sqrt(w))` over the positive eigenvalues `w` of `S1`.
/// Negative round-off eigenvalues are clamped to 0. `None` if an eigensolver fails.
pub fn trace_sqrt_product(d: usize, sigma1: &[f64], sigma2: &[f64]) -> Option<f64> {
    let s1 = MatRef::from_row_major_slice(sigma1, d, d);
    let s2 = MatRef::from_row_major_slice(sigma2, d, d);
    let eig = s1.self_adjoint_eigen(Side::Lower).ok()?;
    let w = eig.S().column_vector();
    let keep: Vec<usize> = (0..d).filter(|&i| w[i] > 0.0).collect();
    if keep.is_empty() {
        return Some(0.0);
    }
    let v = eig.U();
    let u = Mat::<f64>::from_fn(d, keep.len(), |i, k| v[(i, keep[k])] * w[keep[k]].sqrt());
    let mut s2u = Mat::<f64>::zeros(d, keep.len());
    matmul(s2u.as_mut(), Accum::Replace, s2, u.as_ref(), 1.0, par());
    let mut m = Mat::<f64>::zeros(keep.len(), keep.len());
    triangular::matmul(
        m.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        u.transpose(),
        BlockStructure::Rectangular,
        s2u.as_ref(),
        BlockStructure::Rectangular,
        1.0,
        par(),
    );
    let l = m.self_adjoint_eigenvalues(Side::Lower).ok()?;
    Some(l.iter().map(|&x| x.max(0.0).sqrt()).sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden/fid");

    fn rel_err(got: f64, want: f64) -> f64 {
        (got - want).abs() / want.abs()
    }

    #[test]
    fn stats_match_numpy_cov_by_hand() {
        // x = [[1, 2], [3, 6], [5, 7]]: mean (3, 5); cov [[4, 5], [5, 7]].
        let (mu, s) = stats(3, 2, &[1.0, 2.0, 3.0, 6.0, 5.0, 7.0]);
        assert_eq!(mu, vec![3.0, 5.0]);
        let want = [4.0, 5.0, 5.0, 7.0];
        s.iter().zip(want).for_each(|(g, w)| assert!((g - w).abs() < 1e-12, "{s:?}"));
    }

    #[test]
    fn diagonal_covariances_have_closed_form() {
        // Commuting diagonal matrices: tr((S1 S2)^(1/2)) = sum sqrt(a_i b_i).
        let s1 = [4.0, 0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 0.0];
        let s2 = [1.0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 5.0];
        let t = trace_sqrt_product(3, &s1, &s2).unwrap();
        assert!((t - 8.0).abs() < 1e-12, "{t}");
        let fid = frechet_distance(&[1.0, 0.0, 0.0], &s1, &[0.0, 0.0, 2.0], &s2);
        assert!((fid - (5.0 + 13.0 + 10.0 - 16.0)).abs() < 1e-12, "{fid}");
        assert_eq!(trace_sqrt_product(2, &[0.0; 4], &[1.0, 0.0, 0.0, 1.0]), Some(0.0));
    }

    #[test]
    fn non_commuting_2x2_matches_explicit_sqrt() {
        // For 2x2 A with positive eigenvalues, tr(A^(1/2)) = sqrt(tr A + 2 sqrt(det A)).
        let s1 = [2.0, 1.0, 1.0, 3.0];
        let s2 = [1.0, -0.5, -0.5, 2.0];
        let a: [f64; 4] = [1.5, 1.0, -0.5, 5.5]; // S1 S2
        let det = a[0] * a[3] - a[1] * a[2];
        let want = (a[0] + a[3] + 2.0 * det.sqrt()).sqrt();
        let got = trace_sqrt_product(2, &s1, &s2).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }

    #[test]
    fn golden_parity_every_case() {
        let cases_path = Path::new(GOLDEN).join("fid_cases.json");
        let root: Value = crate::input::read_json(&cases_path).unwrap();
        let cases = root["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 4);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let a = Path::new(GOLDEN).join(case["a"].as_str().unwrap());
            let b = Path::new(GOLDEN).join(case["b"].as_str().unwrap());
            let (mu1, s1, _) = file_stats(&a).unwrap();
            let (mu2, s2, _) = file_stats(&b).unwrap();
            let dense = frechet_terms(&mu1, &s1, &mu2, &s2);
            let (sa, sb) = (FidSource::load(&a).unwrap(), FidSource::load(&b).unwrap());
            let terms = fid_source::terms(&sa, &sb);
            let fid = fid_files(&a, &b).unwrap();
            assert_eq!(fid, terms.distance(), "{name}");
            let e = (dense.distance() - fid).abs() / fid.abs().max(1e-6);
            assert!(e < 1e-6, "{name}: dense {} vs routed {fid}", dense.distance());
            let want = |k: &str| case[k].as_f64().unwrap();
            if name == "identical" {
                assert!(fid.abs() < 1e-6, "{name}: {fid}");
                continue;
            }
            for (k, got) in [
                ("mean_term", terms.mean_term),
                ("trace_sigma_a", terms.trace_sigma1),
                ("trace_sigma_b", terms.trace_sigma2),
            ] {
                assert!(rel_err(got, want(k)) < 1e-9, "{name} {k}: {got} vs {}", want(k));
            }
            let full_rank = case["rank_sigma_a"] == case["shape_a"][1]
                && case["rank_sigma_b"] == case["shape_b"][1];
            let tol = if full_rank { 1e-6 } else { 1e-4 };
            let e = rel_err(fid, want("fid_pytorch_fid"));
            let e_eigh = rel_err(fid, want("fid_eigh_reference"));
            println!("{name}: fid {fid}, rel. err vs pytorch-fid {e:.2e}, vs eigh reference {e_eigh:.2e}");
            assert!(
                e < tol,
                "{name}: {fid} vs pytorch-fid {} (rel {e:e})",
                want("fid_pytorch_fid")
            );
            let e = rel_err(fid, want("fid_eigh_reference"));
            assert!(
                e < 1e-6,
                "{name}: {fid} vs eigh reference {} (rel {e:e})",
                want("fid_eigh_reference")
            );
        }
    }

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("fid_{}_{name}.npy", std::process::id()))
    }

    #[test]
    fn file_errors() {
        let (a, b, c) = (temp("a"), temp("b"), temp("c"));
        npy::write_matrix(&a, 3, 2, &[1.0, 2.0, 3.0, 4.0, 5.0, 7.0], npy::Dtype::F32).unwrap();
        npy::write_matrix(&b, 3, 3, &[1.0; 9], npy::Dtype::F32).unwrap();
        npy::write_matrix(&c, 1, 2, &[1.0, 2.0], npy::Dtype::F64).unwrap();
        let width = fid_files(&a, &b).unwrap_err().to_string();
        let one_row = fid_files(&a, &c).unwrap_err().to_string();
        npy::write_matrix(&c, 2, 2, &[1.0, f64::NAN, 2.0, 3.0], npy::Dtype::F64).unwrap();
        let nan = fid_files(&c, &a).unwrap_err().to_string();
        let same = fid_files(&a, &a).unwrap();
        for p in [&a, &b, &c] {
            std::fs::remove_file(p).unwrap();
        }
        assert!(width.contains("header.shape: feature width 3 differs from 2"), "{width}");
        assert!(one_row.contains("1 rows"), "{one_row}");
        assert!(nan.contains("non-finite value NaN at row 0, column 1"), "{nan}");
        assert!(same.abs() < 1e-9, "{same}");
    }
}
