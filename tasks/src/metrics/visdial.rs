//! VisDial v1.0 metrics: R@k, mean rank, MRR, NDCG (spec section 3; reference
//! visdial-challenge-starter-pytorch `visdialch/metrics.py`).
use crate::input::Invalid;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::input::{index, read_json, InputError, Json};
use crate::metrics::result::{Detail, Headline, MetricResult};

/// Scores `{"rounds":[{"ranks","gt_index","gt_relevance"?}]}`.
///
/// Validates every round: `ranks` a permutation of 1..N, `gt_index < N`, `gt_relevance` (when
/// present) N finite non-negative numbers with at least one non-zero (otherwise the reference
/// NDCG is 0/0 = NaN). Other fields of a round are ignored.
pub fn score_file(path: &Path, detail: Detail) -> Result<VisdialResult, InputError> {
    let root = read_json(path)?;
    let rounds = parse_rounds(path, &root)?;
    Ok(score(&rounds, detail))
}

/// Reads and validates the `rounds` array of a VisDial ranks file.
pub fn parse_rounds(path: &Path, root: &Value) -> Result<Vec<VisdialRound>, InputError> {
    let j = Json::new(path);
    let items = j.array(j.get(root, "", "rounds")?, "rounds")?;
    if items.is_empty() {
        return Err(j.err("rounds", "no rounds to score"));
    }
    items.iter().enumerate().map(|(i, item)| parse_round(&j, item, &index("rounds", i))).collect()
}

fn parse_round(j: &Json, item: &Value, field: &str) -> Result<VisdialRound, InputError> {
    let ranks_field = format!("{field}.ranks");
    let ranks = j.i64s(j.get(item, field, "ranks")?, &ranks_field)?;
    let ranks = check_permutation(&ranks).map_err(|m| j.err(&ranks_field, m.0))?;
    let n = ranks.len();
    let gt_field = format!("{field}.gt_index");
    let gt = j.i64(j.get(item, field, "gt_index")?, &gt_field)?;
    let gt_index = usize::try_from(gt)
        .ok()
        .filter(|&g| g < n)
        .ok_or_else(|| j.err(&gt_field, format!("{gt} out of range 0..{n}")))?;
    let rel_field = format!("{field}.gt_relevance");
    let gt_relevance = match j.opt(item, field, "gt_relevance")? {
        None => None,
        Some(v) => {
            let rel = j.f64s(v, &rel_field)?;
            check_relevance(&rel, n).map_err(|m| j.err(&rel_field, m.0))?;
            Some(rel)
        }
    };
    Ok(VisdialRound { ranks, gt_index, gt_relevance })
}

/// `ranks` must hold each of 1..N exactly once.
fn check_permutation(ranks: &[i64]) -> Result<Vec<u32>, Invalid> {
    let n = ranks.len();
    if n == 0 {
        return Err("empty; expected a permutation of 1..N".into());
    }
    let mut seen = vec![false; n];
    for (i, &r) in ranks.iter().enumerate() {
        if r < 1 || r as u64 > n as u64 {
            return Err(format!(
                "[{i}] = {r} out of range 1..{n}; expected a permutation of 1..{n}"
            )
            .into());
        }
        let slot = &mut seen[(r - 1) as usize];
        if *slot {
            return Err(
                format!("[{i}] = {r} repeats a rank; expected a permutation of 1..{n}").into()
            );
        }
        *slot = true;
    }
    Ok(ranks.iter().map(|&r| r as u32).collect())
}

/// Relevance: one finite value >= 0 per option, at least one non-zero. The reference sums
/// them in float32, so each must stay below `f32::MAX / N` (no sum of N of them overflows)
/// and one must be non-zero in float32.
pub fn check_relevance(rel: &[f64], n: usize) -> Result<(), Invalid> {
    if rel.len() != n {
        return Err(format!("has {} values, ranks has {n}", rel.len()).into());
    }
    if let Some(i) = rel.iter().position(|x| !x.is_finite() || *x < 0.0) {
        return Err(format!("[{i}] = {} is not a finite non-negative number", rel[i]).into());
    }
    let max = f32::MAX as f64 / n.max(1) as f64;
    if let Some(i) = rel.iter().position(|&x| x > max) {
        return Err(format!(
            "[{i}] = {:e} is over {max:e}, past which the float32 sums of NDCG overflow",
            rel[i]
        )
        .into());
    }
    if rel.iter().all(|&x| x as f32 == 0.0) {
        return Err("all values are 0 in float32 (NDCG undefined)".into());
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct VisdialRound {
    /// Rank of each of the 100 options, 1 = best.
    pub ranks: Vec<u32>,
    /// Ground-truth option index, 0-based.
    pub gt_index: usize,
    pub gt_relevance: Option<Vec<f64>>,
}

/// One round of a [`VisdialResult`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisdialRoundScore {
    /// Rank given to the ground-truth option (1 = best).
    pub gt_rank: u32,
    /// The round's float32 NDCG (0–1), `null` without dense relevance.
    pub ndcg: Option<f64>,
}

/// `emu-eval metric visdial`'s output: the reference's metrics (0–1, mean rank in ranks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisdialResult {
    #[serde(rename = "r@1")]
    pub r1: Option<f64>,
    #[serde(rename = "r@5")]
    pub r5: Option<f64>,
    #[serde(rename = "r@10")]
    pub r10: Option<f64>,
    pub mean: Option<f64>,
    pub mrr: Option<f64>,
    pub ndcg: Option<f64>,
    /// Per round, in input order (with [`Detail::PerSample`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<Vec<VisdialRoundScore>>,
}

impl MetricResult for VisdialResult {
    /// NDCG x 100 (the paper prints 47.4); `None` without dense relevance.
    fn headline(&self) -> Headline {
        Headline { name: "NDCG", value: self.ndcg.map(|x| 100.0 * x) }
    }

    /// Per-round NDCG x 100 where the round has dense relevance.
    fn per_sample(&self) -> Option<Vec<Option<f64>>> {
        self.rounds.as_ref().map(|rs| rs.iter().map(|r| r.ndcg.map(|x| 100.0 * x)).collect())
    }

    fn clear_per_sample(&mut self) {
        self.rounds = None;
    }
}

/// The reference's metrics over all rounds.
///
/// Sparse metrics over all rounds (float32 values, as the reference's `.item()` of a float32
/// mean); `ndcg` is the mean of the float32 per-round NDCG over the rounds that carry
/// relevance, `None` when none do. An empty `rounds` gives `None` everywhere (the reference
/// returns an empty dict). Inputs are assumed valid (see [`score_file`]); an out-of-range
/// `gt_index` counts as rank N + 1 rather than panicking.
pub fn score(rounds: &[VisdialRound], detail: Detail) -> VisdialResult {
    let gt_ranks: Vec<u32> = rounds
        .iter()
        .map(|r| r.ranks.get(r.gt_index).copied().unwrap_or(r.ranks.len() as u32 + 1))
        .collect();
    let sparse = sparse_metrics(&gt_ranks);
    let per_round: Vec<Option<f64>> = rounds
        .iter()
        .map(|r| r.gt_relevance.as_ref().map(|rel| ndcg_round(&r.ranks, rel) as f64))
        .collect();
    let dense: Vec<f64> = per_round.iter().flatten().copied().collect();
    let sparse_value = |f: fn(&Sparse) -> f32| sparse.as_ref().map(|s| f(s) as f64);
    VisdialResult {
        r1: sparse_value(|s| s.r1),
        r5: sparse_value(|s| s.r5),
        r10: sparse_value(|s| s.r10),
        mean: sparse_value(|s| s.mean),
        mrr: sparse_value(|s| s.mrr),
        ndcg: mean_f64(dense.iter().copied(), dense.len()),
        rounds: detail.per_sample().then(|| {
            gt_ranks
                .iter()
                .zip(per_round)
                .map(|(&gt_rank, ndcg)| VisdialRoundScore { gt_rank, ndcg })
                .collect()
        }),
    }
}

/// `SparseGTMetrics.retrieve`: means over rounds of the ground-truth rank, in float32.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sparse {
    pub r1: f32,
    pub r5: f32,
    pub r10: f32,
    pub mean: f32,
    pub mrr: f32,
}

/// `SparseGTMetrics`: `r = ranks[gt]` as float32; R@k = mean(r <= k), mean = mean(r),
/// MRR = mean(1/r) with the reciprocal taken in float32. Each mean is summed in f64 and
/// rounded once to f32 (torch's float32 reductions are pairwise; this is within 1 ulp).
/// `None` for no rounds.
pub fn sparse_metrics(gt_ranks: &[u32]) -> Option<Sparse> {
    let n = gt_ranks.len();
    let mean = |f: &dyn Fn(f32) -> f32| {
        mean_f64(gt_ranks.iter().map(|&r| f(r as f32) as f64), n).map(|m| m as f32)
    };
    Some(Sparse {
        r1: mean(&|r| (r <= 1.0) as u8 as f32)?,
        r5: mean(&|r| (r <= 5.0) as u8 as f32)?,
        r10: mean(&|r| (r <= 10.0) as u8 as f32)?,
        mean: mean(&|r| r)?,
        mrr: mean(&|r| 1.0 / r)?,
    })
}

fn mean_f64(values: impl Iterator<Item = f64>, n: usize) -> Option<f64> {
    (n > 0).then(|| values.sum::<f64>() / n as f64)
}

/// `NDCG.observe` for one round, in float32: k = number of options with relevance != 0; the
/// first k options by predicted rank give DCG, the first k by relevance descending give IDCG;
/// gain = relevance, discount = log2(position + 2). Returns DCG / IDCG (NaN when k = 0, as in
/// the reference).
pub fn ndcg_round(ranks: &[u32], relevance: &[f64]) -> f32 {
    let rel: Vec<f32> = relevance.iter().map(|&x| x as f32).collect();
    let k = rel.iter().filter(|&&x| x != 0.0).count();
    // Option indices best first: the inverse permutation of `ranks`.
    let mut order: Vec<usize> = (0..ranks.len()).collect();
    order.sort_by_key(|&i| ranks[i]);
    let mut ideal = rel.clone();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let actual = dcg(order.iter().take(k).map(|&i| rel[i]));
    let idcg = dcg(ideal.into_iter().take(k));
    actual / idcg
}

/// `NDCG._dcg`: sum of gain / log2(j + 2) over positions j, in float32.
fn dcg(gains: impl Iterator<Item = f32>) -> f32 {
    gains.enumerate().map(|(j, g)| g / (j as f32 + 2.0).log2()).sum()
}

/// `scores_to_ranks`: rank of each option (1 = highest score). Ties are broken by option index
/// ascending (the reference's torch sort leaves them unspecified); NaN scores rank last.
pub fn scores_to_ranks(scores: &[f32]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| desc_nan_last(scores[a], scores[b]).then(a.cmp(&b)));
    order_to_ranks(&order)
}

/// The result-file rule: `order` lists options best first; `ranks[o]` = 1-based position of `o`.
pub fn order_to_ranks(order: &[usize]) -> Vec<u32> {
    let mut ranks = vec![0u32; order.len()];
    for (pos, &opt) in order.iter().enumerate() {
        ranks[opt] = pos as u32 + 1;
    }
    ranks
}

/// Descending order of two scores, NaN after every number.
fn desc_nan_last(a: f32, b: f32) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
        (a_nan, b_nan) => a_nan.cmp(&b_nan),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden/ndcg/visdial_rounds.json");

    fn round(ranks: Vec<u32>, gt_index: usize, rel: Option<Vec<f64>>) -> VisdialRound {
        VisdialRound { ranks, gt_index, gt_relevance: rel }
    }

    #[test]
    fn scores_to_ranks_is_inverse_of_argsort() {
        assert_eq!(scores_to_ranks(&[0.1, 0.9, 0.5]), vec![3, 1, 2]);
        // Ties: lower index first; NaN last.
        assert_eq!(scores_to_ranks(&[1.0, 2.0, 1.0, f32::NAN, 2.0]), vec![3, 1, 4, 5, 2]);
        assert_eq!(scores_to_ranks(&[]), Vec::<u32>::new());
    }

    #[test]
    fn sparse_metrics_by_hand() {
        let s = sparse_metrics(&[1, 2, 6, 20]).unwrap();
        assert_eq!((s.r1, s.r5, s.r10), (0.25, 0.5, 0.75));
        assert_eq!(s.mean, 29.0 / 4.0);
        assert_eq!(s.mrr, ((1.0 + 0.5 + 1.0 / 6.0 + 0.05) / 4.0) as f32);
        assert_eq!(sparse_metrics(&[]), None);
    }

    #[test]
    fn ndcg_cutoff_is_number_of_relevant_options() {
        // Two relevant options (k = 2): options 2 and 0. Prediction ranks option 0 first,
        // option 1 second (irrelevant), option 2 third: option 2 is cut off.
        let rel = [1.0, 0.0, 0.5, 0.0];
        let got = ndcg_round(&[1, 2, 3, 4], &rel);
        let want = 1.0 / (1.0 + 0.5 / 3f32.log2());
        assert!((got - want).abs() < 1e-7, "{got} vs {want}");
        assert_eq!(ndcg_round(&[2, 4, 1, 3], &[0.0, 0.0, 1.0, 0.0]), 1.0);
        assert!(ndcg_round(&[1, 2], &[0.0, 0.0]).is_nan());
    }

    #[test]
    fn score_reports_null_ndcg_without_relevance() {
        let r = score(&[round(vec![2, 1, 3], 0, None)], Detail::PerSample);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["r@1"], 0.0);
        assert_eq!(v["r@5"], 1.0);
        assert_eq!(v["mean"], 2.0);
        assert_eq!(v["mrr"], 0.5);
        assert!(v["ndcg"].is_null());
        assert_eq!(r.headline().value, None);
        assert_eq!(r.per_sample(), Some(vec![None]));
        assert!(serde_json::to_value(score(&[], Detail::Aggregate)).unwrap()["mean"].is_null());
    }

    #[test]
    fn golden_parity_every_round() {
        let path = Path::new(GOLDEN);
        let root = read_json(path).unwrap();
        let rounds = root["rounds"].as_array().unwrap();
        assert_eq!(rounds.len(), 60);
        for (i, r) in rounds.iter().enumerate() {
            let scores: Vec<f32> = r["scores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            let ranks: Vec<u32> =
                r["ranks"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
            assert_eq!(scores_to_ranks(&scores), ranks, "round {i} ranks");
            let gt = r["gt_index"].as_u64().unwrap() as usize;
            assert_eq!(ranks[gt] as u64, r["gt_rank"].as_u64().unwrap(), "round {i} gt_rank");
            let rel: Vec<f64> =
                r["gt_relevance"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            let got = ndcg_round(&ranks, &rel) as f64;
            for key in ["ndcg_float32", "ndcg_float64"] {
                let want = r[key].as_f64().unwrap();
                assert!((got - want).abs() <= 1e-6, "round {i} {key}: {got} vs {want}");
            }
        }
        let result = score_file(path, Detail::PerSample).unwrap();
        let got = serde_json::to_value(&result).unwrap();
        let want = &root["metrics"];
        for key in ["r@1", "r@5", "r@10", "mean", "mrr", "ndcg"] {
            let (g, w) = (got[key].as_f64().unwrap(), want[key].as_f64().unwrap());
            assert!((g - w).abs() <= 1e-6, "{key}: {g} vs {w}");
        }
        let g = got["ndcg"].as_f64().unwrap();
        assert!((g - want["ndcg_float64"].as_f64().unwrap()).abs() <= 1e-6);
        // Per-round values are the golden per-round NDCG x 100; their mean is the headline.
        let per = result.per_sample().unwrap();
        for (i, (p, r)) in per.iter().zip(rounds).enumerate() {
            let want = 100.0 * r["ndcg_float32"].as_f64().unwrap();
            assert!((p.unwrap() - want).abs() <= 1e-4, "round {i}: {p:?} vs {want}");
        }
        let mean = per.iter().map(|p| p.unwrap()).sum::<f64>() / per.len() as f64;
        assert!((result.headline().value.unwrap() - mean).abs() <= 1e-9);
    }

    fn file_error(body: &str) -> String {
        let path = std::env::temp_dir().join(format!(
            "visdial_{}_{}.json",
            std::process::id(),
            body.len()
        ));
        std::fs::write(&path, body).unwrap();
        let e = score_file(&path, Detail::Aggregate).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        e
    }

    #[test]
    fn validation_errors_name_the_field() {
        let e = file_error(
            r#"{"rounds":[{"ranks":[1,2,3],"gt_index":0},{"ranks":[1,1,3],"gt_index":0}]}"#,
        );
        assert!(e.contains(": rounds[1].ranks: [1] = 1 repeats a rank"), "{e}");
        let e = file_error(r#"{"rounds":[{"ranks":[1,4,3],"gt_index":0}]}"#);
        assert!(e.contains(": rounds[0].ranks: [1] = 4 out of range 1..3"), "{e}");
        let e = file_error(r#"{"rounds":[{"ranks":[1,2,3],"gt_index":3}]}"#);
        assert!(e.contains(": rounds[0].gt_index: 3 out of range 0..3"), "{e}");
        let e = file_error(r#"{"rounds":[{"ranks":[1,2,3],"gt_index":0,"gt_relevance":[1,0]}]}"#);
        assert!(e.contains(": rounds[0].gt_relevance: has 2 values, ranks has 3"), "{e}");
        let e = file_error(r#"{"rounds":[{"ranks":[1,2,3],"gt_index":0,"gt_relevance":[0,0,0]}]}"#);
        assert!(e.contains(": rounds[0].gt_relevance: all values are 0"), "{e}");
        let e = file_error(r#"{"rounds":[{"ranks":[1,2,3]}]}"#);
        assert!(e.contains(": rounds[0].gt_index: missing field"), "{e}");
        let e = file_error(r#"{"rounds":[]}"#);
        assert!(e.contains(": rounds: no rounds to score"), "{e}");
    }

    /// Finite relevances whose float32 sums overflow (the issue's 1.7e308), or that are all 0
    /// in float32, would give a NaN NDCG: they are errors naming the round.
    #[test]
    fn relevance_outside_float32_sums_is_an_error() {
        let body = |rel: &str| {
            format!(r#"{{"rounds":[{{"ranks":[1,2,3],"gt_index":0,"gt_relevance":{rel}}}]}}"#)
        };
        let e = file_error(&body("[1.7e308, 1.7e308, 0]"));
        assert!(e.contains(": rounds[0].gt_relevance: [0] = 1.7e308 is over"), "{e}");
        let e = file_error(&body("[3e38, 3e38, 0]"));
        assert!(e.contains("float32 sums of NDCG overflow"), "{e}");
        let e = file_error(&body("[1e-50, 0, 0]"));
        assert!(e.contains("all values are 0 in float32"), "{e}");
        // The largest accepted values give a finite NDCG.
        let max = f32::MAX as f64 / 3.0;
        let r = round(vec![2, 1, 3], 0, Some(vec![max, max, max]));
        let ndcg = score(&[r], Detail::Aggregate).ndcg.unwrap();
        assert!(ndcg.is_finite() && ndcg > 0.99, "{ndcg}");
    }

    #[test]
    fn file_without_relevance_scores_sparse_only() {
        let path = std::env::temp_dir().join(format!("visdial_ok_{}.json", std::process::id()));
        std::fs::write(
            &path,
            r#"{"rounds":[{"ranks":[3,1,2],"gt_index":2},{"ranks":[1,2,3],"gt_index":0,"gt_relevance":[1,0,0]}]}"#,
        )
        .unwrap();
        let v = serde_json::to_value(score_file(&path, Detail::Aggregate).unwrap()).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(v["r@1"], 0.5);
        assert_eq!(v["mean"], 1.5);
        assert_eq!(v["mrr"], 0.75);
        assert_eq!(v["ndcg"], 1.0);
    }
}
