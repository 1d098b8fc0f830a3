//! VizWiz specifics (metrics.md 2.5): the challenge `vqaEval.py` contraction table with U+2019
//! apostrophes, and the answerability scores (scikit-learn `average_precision_score`, `f1_score`).
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::metrics::vqa::normalize::Contractions;
use crate::metrics::vqa::tables::CONTRACTIONS;

/// Keys whose values keep the ASCII apostrophe in the VizWiz table.
pub const ASCII_VALUE_KEYS: [&str; 8] =
    ["aint", "arent", "cant", "couldve", "couldnt", "weve", "wheres", "whove"];
/// Keys that keep the ASCII apostrophe in the VizWiz table.
pub const ASCII_KEYS: [&str; 2] = ["couldn'tve", "hadn'tve"];

/// `contractions` of the VizWiz `vqaEval.py`: the official table with `'` turned into `’`
/// (U+2019) in keys and values, except the values of `ASCII_VALUE_KEYS` and the keys `ASCII_KEYS`.
pub fn vizwiz_contractions() -> &'static Contractions {
    static MAP: OnceLock<Contractions> = OnceLock::new();
    MAP.get_or_init(|| {
        Contractions::from_pairs(CONTRACTIONS.iter().map(|&(k, v)| {
            let key =
                if ASCII_KEYS.contains(&k) { k.to_owned() } else { k.replace('\'', "\u{2019}") };
            let value = if ASCII_VALUE_KEYS.contains(&k) {
                v.to_owned()
            } else {
                v.replace('\'', "\u{2019}")
            };
            (key, value)
        }))
    })
}

/// Unanswerability scores as the VizWiz script computes them, on the 0–1 scale (x 100 inside a
/// `VqaResult`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Unanswerability {
    pub average_precision: f64,
    pub f1_score: f64,
}

/// `average_precision_score(1 - answerable, 1 - answerable_pred)` and
/// `f1_score(1 - answerable, (1 - answerable_pred) > 0.5)`.
pub fn unanswerability(answerable: &[i64], answerable_pred: &[f64]) -> Unanswerability {
    let y: Vec<bool> = answerable.iter().map(|&a| 1 - a == 1).collect();
    let s: Vec<f64> = answerable_pred.iter().map(|&p| 1.0 - p).collect();
    let pred: Vec<bool> = s.iter().map(|&x| x > 0.5).collect();
    Unanswerability { average_precision: average_precision(&y, &s), f1_score: f1_score(&y, &pred) }
}

/// scikit-learn `average_precision_score` for binary labels: step-wise
/// `-sum(diff(recall) * precision[:-1])` over the precision-recall curve (distinct thresholds,
/// scores descending); recall is all ones when there is no positive label.
pub fn average_precision(y_true: &[bool], scores: &[f64]) -> f64 {
    let n = y_true.len().min(scores.len());
    if n == 0 {
        return f64::NAN;
    }
    // `_binary_clf_curve`: sort descending (ties keep their group together), thresholds at the
    // last index of each run of equal scores.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut tps = Vec::new();
    let mut fps = Vec::new();
    let mut cum = 0.0;
    for (i, &k) in order.iter().enumerate() {
        if y_true[k] {
            cum += 1.0;
        }
        if i + 1 == n || scores[order[i + 1]] != scores[k] {
            tps.push(cum);
            fps.push(1.0 + i as f64 - cum);
        }
    }
    let last_tp = *tps.last().unwrap_or(&0.0);
    let precision: Vec<f64> = tps
        .iter()
        .zip(&fps)
        .map(|(&tp, &fp)| if tp + fp != 0.0 { tp / (tp + fp) } else { 0.0 })
        .collect();
    let recall: Vec<f64> =
        tps.iter().map(|&tp| if last_tp == 0.0 { 1.0 } else { tp / last_tp }).collect();
    // Reversed curve with the (recall 0, precision 1) end point appended.
    let mut rec_rev: Vec<f64> = recall.iter().rev().copied().collect();
    rec_rev.push(0.0);
    let prec_rev: Vec<f64> = precision.iter().rev().copied().collect();
    let terms: Vec<f64> =
        (0..prec_rev.len()).map(|i| (rec_rev[i + 1] - rec_rev[i]) * prec_rev[i]).collect();
    -numpy_sum(&terms)
}

/// `np.sum` of a contiguous float64 array: first element plus numpy's pairwise sum of the rest.
pub fn numpy_sum(xs: &[f64]) -> f64 {
    match xs.split_first() {
        None => 0.0,
        Some((first, rest)) => first + pairwise_sum(rest),
    }
}

/// numpy `pairwise_sum_DOUBLE` (block size 128, 8-way unrolled).
fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[i..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// scikit-learn `f1_score` (binary, positive label 1): `2 tp / (true + predicted)`, 0 when both
/// are empty (`zero_division="warn"`).
pub fn f1_score(y_true: &[bool], y_pred: &[bool]) -> f64 {
    let tp = y_true.iter().zip(y_pred).filter(|(&t, &p)| t && p).count();
    let true_sum = y_true.iter().filter(|&&t| t).count();
    let pred_sum = y_pred.iter().filter(|&&p| p).count();
    let denom = true_sum + pred_sum;
    if denom == 0 {
        0.0
    } else {
        (2 * tp) as f64 / denom as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contraction_table_uses_typographic_apostrophes() {
        let c = vizwiz_contractions();
        assert_eq!(c.len(), 120);
        assert_eq!(c.get("dont"), Some("don\u{2019}t"));
        assert_eq!(c.get("cant"), Some("can't"));
        assert_eq!(c.get("whove"), Some("who've"));
        assert_eq!(c.get("couldn'tve"), Some("couldn\u{2019}t\u{2019}ve"));
        assert_eq!(c.get("he\u{2019}dve"), Some("he\u{2019}d\u{2019}ve"));
        assert_eq!(c.get("he'dve"), None);
    }

    #[test]
    fn average_precision_matches_sklearn_examples() {
        // sklearn docs: average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.8333...
        let ap = average_precision(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]);
        assert!((ap - 0.8333333333333333).abs() < 1e-15, "{ap}");
        // ties form one threshold: one positive and one negative at the same score
        let ap = average_precision(&[true, false], &[0.5, 0.5]);
        assert_eq!(ap, 0.5);
        // no positive label: 0
        assert_eq!(average_precision(&[false, false], &[0.2, 0.7]), 0.0);
    }

    #[test]
    fn f1_counts() {
        assert_eq!(f1_score(&[true, true, false], &[true, false, true]), 0.5);
        assert_eq!(f1_score(&[false], &[false]), 0.0);
    }

    #[test]
    fn numpy_pairwise_sum_blocks() {
        let xs: Vec<f64> = (0..300).map(|i| i as f64 * 0.1).collect();
        let seq: f64 = xs.iter().sum();
        assert!((numpy_sum(&xs) - seq).abs() < 1e-9);
        assert_eq!(numpy_sum(&[]), 0.0);
    }
}
