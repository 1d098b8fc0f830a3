//! `emu-eval compare`: a baseline against a candidate, task by task, as a CI regression gate.
//!
//! Runs are paired on task, family, shots, CoT and text examples. A regression is flagged only
//! when the candidate is worse by more than the task's tolerance (absolute, on the headline scale)
//! and, with `paired`, the drop is significant under a seeded paired bootstrap over the samples
//! both runs scored (one-sided, p < 0.05). Corpus-level metrics (CIDEr, FID) have no per-sample
//! scores: the tolerance alone decides. A task missing from the candidate, or a pair whose
//! configuration differs, is reported and fails the gate as well.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tasks::input::{read_text, InputError};
use tasks::rng::SplitMix64;

use crate::model::{RunEntry, CIDER_SUBSET_NOTE};
use crate::paper::Paper;
use crate::runs::{parse, Run};

/// Significance level of the one-sided paired bootstrap.
pub const ALPHA: f64 = 0.05;

/// `results.json` as `compare` needs it.
#[derive(Deserialize)]
struct ResultsJson {
    schema: u32,
    runs: Vec<RunEntry>,
}

/// Loads runs from a run folder, a folder of run folders, a report folder (with `results.json`)
/// or a `results.json` file.
pub fn load_side(path: &Path) -> Result<Vec<RunEntry>, InputError> {
    let paper = Paper::published();
    if path.is_file() {
        let r: ResultsJson = parse(path, &read_text(path)?)?;
        if r.schema != crate::model::RESULTS_SCHEMA {
            return Err(InputError::field(
                path,
                "schema",
                format!("{} is not supported", r.schema),
            ));
        }
        return Ok(r.runs);
    }
    if !path.is_dir() {
        return Err(InputError::file(path, "not found"));
    }
    if !path.join("metrics.json").is_file() && path.join("results.json").is_file() {
        return load_side(&path.join("results.json"));
    }
    let (dirs, _unfinished) = crate::runs::discover(&[path.to_owned()])?;
    if dirs.is_empty() {
        return Err(InputError::file(path, "no finished run folder (metrics.json) inside"));
    }
    dirs.iter().map(|d| Run::load(d).map(|r| RunEntry::from_run(&r, &paper))).collect()
}

/// Options of a comparison.
#[derive(Debug, Clone)]
pub struct Options {
    /// Absolute tolerance per task id; `default_tolerance` for others.
    pub tolerance: BTreeMap<String, f64>,
    pub default_tolerance: f64,
    pub paired: bool,
    pub seed: u64,
    pub resamples: usize,
    /// Least share of the two sides' samples (of their union) that both must have scored.
    pub min_overlap: f64,
    /// Model comparison: the model, its weights and dtype may differ (they are what is compared);
    /// everything else, the data included, must not. Implies the paired bootstrap.
    pub models: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            tolerance: BTreeMap::new(),
            default_tolerance: 0.0,
            paired: false,
            seed: 0,
            resamples: 10_000,
            min_overlap: 1.0,
            models: false,
        }
    }
}

/// Parses `task=abs,task=abs` (a bare number, or `*=abs`, sets the default).
pub fn parse_tolerances(spec: &str, opts: &mut Options) -> Result<(), crate::Error> {
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (task, v) = match part.split_once('=') {
            Some((t, v)) => (t.trim(), v.trim()),
            None => ("*", part),
        };
        let v: f64 =
            v.parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0).ok_or_else(|| {
                format!("--tolerance: `{part}`: expected TASK=ABS with ABS a non-negative number")
            })?;
        if task == "*" {
            opts.default_tolerance = v;
        } else if tasks::registry::get(task).is_none() {
            return Err(format!(
                "--tolerance: unknown task `{task}` (known: {})",
                tasks::registry::ids().join(", ")
            )
            .into());
        } else {
            opts.tolerance.insert(task.to_owned(), v);
        }
    }
    Ok(())
}

/// Paired bootstrap of the mean per-sample difference (candidate − baseline).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bootstrap {
    /// Samples both runs scored.
    pub pairs: usize,
    pub mean_diff: f64,
    /// 95% percentile interval of the mean difference.
    pub ci_low: f64,
    pub ci_high: f64,
    /// One-sided: the share of resamples in which the candidate is not worse.
    pub p_worse: f64,
}

/// Resamples `diffs` (already oriented so that negative is worse) `resamples` times with the
/// SplitMix64 stream of `seed`. Deterministic for a seed. Empty input gives None.
pub fn paired_bootstrap(diffs: &[f64], resamples: usize, seed: u64) -> Option<Bootstrap> {
    let n = diffs.len();
    if n == 0 || resamples == 0 {
        return None;
    }
    let mut rng = SplitMix64::new(seed);
    let mut means = Vec::with_capacity(resamples);
    let mut not_worse = 0usize;
    for _ in 0..resamples {
        let mut sum = 0.0;
        for _ in 0..n {
            sum += diffs[rng.below(n)];
        }
        let m = sum / n as f64;
        if m >= 0.0 {
            not_worse += 1;
        }
        means.push(m);
    }
    means.sort_by(f64::total_cmp);
    let q = |p: f64| means[((p * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    Some(Bootstrap {
        pairs: n,
        mean_diff: diffs.iter().sum::<f64>() / n as f64,
        ci_low: q(0.025),
        ci_high: q(0.975),
        p_worse: (not_worse + 1) as f64 / (resamples + 1) as f64,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    Improved,
    Regression,
    MissingInCandidate,
    NewInCandidate,
    ConfigChanged,
    /// The two sides scored different data (files or media differ).
    DataChanged,
    /// The two sides share fewer samples than `--min-overlap` asks.
    TooLittleOverlap,
}

impl Verdict {
    pub fn fails(self) -> bool {
        matches!(
            self,
            Verdict::Regression
                | Verdict::MissingInCandidate
                | Verdict::ConfigChanged
                | Verdict::DataChanged
                | Verdict::TooLittleOverlap
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Improved => "improved",
            Verdict::Regression => "REGRESSION",
            Verdict::MissingInCandidate => "MISSING in candidate",
            Verdict::NewInCandidate => "new in candidate",
            Verdict::ConfigChanged => "CONFIG CHANGED",
            Verdict::DataChanged => "DATA CHANGED",
            Verdict::TooLittleOverlap => "TOO LITTLE OVERLAP",
        }
    }
}

/// One line of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub key: String,
    pub task: String,
    pub baseline: Option<f64>,
    pub candidate: Option<f64>,
    /// Candidate − baseline, on the headline scale.
    pub delta: Option<f64>,
    pub tolerance: f64,
    pub lower_is_better: bool,
    pub bootstrap: Option<Bootstrap>,
    pub verdict: Verdict,
    /// Why: config differences, unpaired samples, "tolerance only".
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub lines: Vec<Line>,
    pub notes: Vec<String>,
}

impl Comparison {
    pub fn failures(&self) -> Vec<&Line> {
        self.lines.iter().filter(|l| l.verdict.fails()).collect()
    }
}

fn index(runs: &[RunEntry]) -> Result<BTreeMap<String, &RunEntry>, crate::Error> {
    let mut m = BTreeMap::new();
    for r in runs {
        if let Some(prev) = m.insert(r.key(), r) {
            return Err(format!(
                "runs {} and {} are both `{}`: compare one run per task and setting",
                prev.name,
                r.name,
                r.key()
            )
            .into());
        }
    }
    Ok(m)
}

/// The run-config fields a model comparison lets differ.
const MODEL_FIELDS: [&str; 3] = ["model", "weights_hash", "dtype"];

/// Share of the union of two sides' sample ids that both have (1 when both are empty).
fn overlap(a: &[String], b: &[String]) -> f64 {
    let sa: std::collections::BTreeSet<&String> = a.iter().collect();
    let sb: std::collections::BTreeSet<&String> = b.iter().collect();
    let union = sa.union(&sb).count();
    if union == 0 {
        return 1.0;
    }
    sa.intersection(&sb).count() as f64 / union as f64
}

/// Model mode: better or worse only where the paired interval says so (tolerance only for
/// corpus-level metrics, which have no per-sample scores).
fn model_verdict(bs: Option<&Bootstrap>, worse_by: Option<f64>, tolerance: f64) -> Verdict {
    match bs {
        Some(b) if b.ci_low > 0.0 => Verdict::Improved,
        Some(b) if b.ci_high < 0.0 && -b.mean_diff > tolerance => Verdict::Regression,
        Some(_) => Verdict::Ok,
        None => match worse_by {
            Some(w) if w > tolerance => Verdict::Regression,
            Some(w) if w < -tolerance => Verdict::Improved,
            _ => Verdict::Ok,
        },
    }
}

/// Compares runs pairwise. Errors only on ambiguous input (two runs with the same key on one side).
pub fn compare(
    baseline: &[RunEntry],
    candidate: &[RunEntry],
    opts: &Options,
) -> Result<Comparison, crate::Error> {
    let (b, c) = (index(baseline)?, index(candidate)?);
    let mut lines = Vec::new();
    let mut keys: Vec<&String> = b.keys().chain(c.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (base, cand) = (b.get(key).copied(), c.get(key).copied());
        let any = base.or(cand).expect("key from one side");
        let tolerance = opts.tolerance.get(&any.task).copied().unwrap_or(opts.default_tolerance);
        let mut line = Line {
            key: key.clone(),
            task: any.task.clone(),
            baseline: base.and_then(|r| r.headline.value),
            candidate: cand.and_then(|r| r.headline.value),
            delta: None,
            tolerance,
            lower_is_better: any.lower_is_better,
            bootstrap: None,
            verdict: Verdict::Ok,
            notes: Vec::new(),
        };
        let (Some(base), Some(cand)) = (base, cand) else {
            line.verdict =
                if base.is_some() { Verdict::MissingInCandidate } else { Verdict::NewInCandidate };
            lines.push(line);
            continue;
        };
        line.delta = line.baseline.zip(line.candidate).map(|(b, c)| c - b);
        let fb = base.config.fingerprint();
        let fc = cand.config.fingerprint();
        // In model mode the model is what is compared; without support examples the seed
        // draws nothing but a built-in model's weights.
        let zero_shot = base.config.shots == 0 && cand.config.shots == 0;
        let compared: &[&str] = match (opts.models, zero_shot) {
            (true, true) => &["model", "weights_hash", "dtype", "seed"],
            (true, false) => &MODEL_FIELDS,
            (false, _) => &[],
        };
        for ((name, vb), (_, vc)) in fb.iter().zip(&fc) {
            if vb != vc && compared.contains(name) {
                line.notes.push(format!("compared: {name}: {vb} → {vc}"));
            } else if vb != vc {
                line.notes.push(format!("{name}: {vb} → {vc}"));
            }
        }
        let changed = line.notes.iter().any(|n| !n.starts_with("compared: "));
        let data_changed = base.config.data.content_difference(&cand.config.data);
        if let Some(d) = &data_changed {
            line.notes.push(format!("data: {d}"));
        }
        let overlap = overlap(&base.sample_ids, &cand.sample_ids);
        if overlap < opts.min_overlap {
            line.notes.push(format!(
                "{:.1}% of the samples are scored on both sides; --min-overlap asks {:.1}%",
                100.0 * overlap,
                100.0 * opts.min_overlap
            ));
        }
        // Oriented so that positive is better.
        let sign = if line.lower_is_better { -1.0 } else { 1.0 };
        let worse_by = line.delta.map(|d| -sign * d);
        let beyond = worse_by.is_some_and(|w| w > tolerance);
        let significant = if opts.paired || opts.models {
            match (&base.sample_scores, &cand.sample_scores) {
                (Some(sb), Some(sc)) => {
                    let diffs: Vec<f64> = sb
                        .iter()
                        .filter_map(|(id, vb)| sc.get(id).map(|vc| sign * (vc - vb)))
                        .collect();
                    let unpaired = sb.len() + sc.len() - 2 * diffs.len();
                    if unpaired > 0 {
                        line.notes.push(format!("{unpaired} sample(s) scored on one side only"));
                    }
                    line.bootstrap = paired_bootstrap(&diffs, opts.resamples, opts.seed);
                    line.bootstrap.as_ref().is_some_and(|bs| bs.p_worse < ALPHA)
                }
                _ => {
                    line.notes.push(
                        "no per-sample scores (corpus-level metric): tolerance only".to_owned(),
                    );
                    true
                }
            }
        } else {
            true
        };
        if line.baseline.is_none() || line.candidate.is_none() {
            line.notes.push("headline value missing".to_owned());
        }
        line.verdict = if data_changed.is_some() {
            Verdict::DataChanged
        } else if overlap < opts.min_overlap {
            Verdict::TooLittleOverlap
        } else if changed {
            Verdict::ConfigChanged
        } else if opts.models {
            model_verdict(line.bootstrap.as_ref(), worse_by, tolerance)
        } else if beyond && significant {
            Verdict::Regression
        } else if worse_by.is_some_and(|w| w < -tolerance) {
            Verdict::Improved
        } else {
            Verdict::Ok
        };
        if beyond && !significant {
            line.notes.push(format!(
                "worse by more than the tolerance but not significant (p ≥ {ALPHA})"
            ));
        }
        lines.push(line);
    }
    let mut notes = Vec::new();
    if baseline.iter().chain(candidate).any(|r| {
        crate::model::is_cider(&r.task) && (r.config.limit.is_some() || r.config.shard.is_some())
    }) {
        notes.push(CIDER_SUBSET_NOTE.to_owned());
    }
    Ok(Comparison { lines, notes })
}

/// The comparison as a fixed-width text table.
pub fn render(c: &Comparison) -> String {
    let num = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2}"));
    let header = [
        "run (task family shots)",
        "baseline",
        "candidate",
        "delta",
        "tol",
        "paired mean [95% CI]",
        "p",
        "verdict",
    ];
    let mut rows: Vec<[String; 8]> = Vec::new();
    for l in &c.lines {
        let (ci, p) = match &l.bootstrap {
            Some(b) => (
                format!("{:+.2} [{:+.2}, {:+.2}] n={}", b.mean_diff, b.ci_low, b.ci_high, b.pairs),
                format!("{:.4}", b.p_worse),
            ),
            None => ("–".to_owned(), "–".to_owned()),
        };
        let key =
            if l.lower_is_better { format!("{} (lower is better)", l.key) } else { l.key.clone() };
        rows.push([
            key,
            num(l.baseline),
            num(l.candidate),
            l.delta.map_or("–".to_owned(), |d| format!("{d:+.2}")),
            format!("{:.2}", l.tolerance),
            ci,
            p,
            l.verdict.as_str().to_owned(),
        ]);
    }
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut s = String::new();
    let line = |s: &mut String, cells: &[String]| {
        let parts: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(s, "{}", parts.join("  ").trim_end());
    };
    line(&mut s, &header.map(str::to_owned));
    line(&mut s, &widths.map(|w| "-".repeat(w)));
    for r in &rows {
        line(&mut s, r);
    }
    for l in &c.lines {
        for n in &l.notes {
            let _ = writeln!(s, "{}: {n}", l.key);
        }
    }
    for n in &c.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_is_deterministic_for_a_seed() {
        let diffs: Vec<f64> = (0..50).map(|i| if i % 3 == 0 { -100.0 } else { 0.0 }).collect();
        let a = paired_bootstrap(&diffs, 2000, 7).unwrap();
        let b = paired_bootstrap(&diffs, 2000, 7).unwrap();
        let c = paired_bootstrap(&diffs, 2000, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!((a.mean_diff - (-34.0)).abs() < 1e-9);
        assert!(a.ci_low < a.mean_diff && a.mean_diff < a.ci_high);
        assert!(a.p_worse < ALPHA, "{a:?}");
    }

    #[test]
    fn no_difference_is_not_significant() {
        let diffs = [0.0; 20];
        let b = paired_bootstrap(&diffs, 500, 0).unwrap();
        assert_eq!(b.p_worse, 1.0);
        let mixed: Vec<f64> = (0..40).map(|i| if i % 2 == 0 { 100.0 } else { -100.0 }).collect();
        assert!(paired_bootstrap(&mixed, 1000, 0).unwrap().p_worse > ALPHA);
        assert!(paired_bootstrap(&[], 10, 0).is_none());
    }

    #[test]
    fn tolerance_spec() {
        let mut o = Options::default();
        parse_tolerances("vqav2=1.5, coco_caption=3,0.25", &mut o).unwrap();
        assert_eq!(o.tolerance["vqav2"], 1.5);
        assert_eq!(o.tolerance["coco_caption"], 3.0);
        assert_eq!(o.default_tolerance, 0.25);
        assert!(parse_tolerances("vqa=1", &mut o)
            .unwrap_err()
            .to_string()
            .contains("unknown task `vqa`"));
        assert!(parse_tolerances("vqav2=-1", &mut o).is_err());
        assert!(parse_tolerances("vqav2=x", &mut o).is_err());
    }
}
