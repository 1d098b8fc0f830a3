//! The end of a run: predictions sorted into canonical order, scored once with the code of
//! `emu-eval score`, the official result file and `metrics.json`, all written atomically.
use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use tasks::datasets::predictions::{self, Prediction};
use tasks::metrics::result::{Detail, MetricResult};
use tasks::metrics::{vqa, wordnet::WordNet};

use tasks::run_folder::{Counts, Headline, Metrics, Timing};

use super::files::{self, RunConfig};
use super::stages::prediction_from_json;
use super::ModelInfo;
use crate::plan::TaskData;

/// The run's lines in canonical order (the split's), checked against the positions it evaluates.
pub fn ordered_lines(out: &Path, data: &TaskData, positions: &[usize]) -> Result<Vec<Value>> {
    lines_in_order(out, positions.iter().map(|&p| data.queries[p].id.as_str()))
}

/// The run's lines in the order of `ids`: one line per id, no other line.
pub fn lines_in_order<'a>(
    out: &Path,
    ids: impl ExactSizeIterator<Item = &'a str>,
) -> Result<Vec<Value>> {
    let path = out.join(files::PREDICTIONS);
    let lines = files::read_predictions(&path, false)?;
    let mut by_id: HashMap<String, Value> = HashMap::new();
    for l in lines {
        let id = l["id"]
            .as_str()
            .ok_or_else(|| anyhow!("{}: a line without \"id\"", path.display()))?
            .to_owned();
        if by_id.insert(id.clone(), l).is_some() {
            return Err(anyhow!("{}: sample {id} appears twice", path.display()));
        }
    }
    let mut ordered = Vec::with_capacity(ids.len());
    for id in ids {
        ordered.push(
            by_id
                .remove(id)
                .ok_or_else(|| anyhow!("{}: sample {id} has no line", path.display()))?,
        );
    }
    if let Some(extra) = by_id.keys().next() {
        return Err(anyhow!("{}: sample {extra} is not part of this run", path.display()));
    }
    Ok(ordered)
}

/// Sorts the predictions file, scores it, writes the result file and `metrics.json`.
#[allow(clippy::too_many_arguments)]
pub fn finish(
    out: &Path,
    data: &TaskData,
    positions: &[usize],
    fp: &RunConfig,
    model: &ModelInfo,
    variant: vqa::Variant,
    wordnet: Option<&WordNet>,
    timing: Timing,
) -> Result<Metrics> {
    let task = data.task;
    let lines = ordered_lines(out, data, positions)?;
    super::rewrite_lines(&out.join(files::PREDICTIONS), &lines)?;

    let mut records = Vec::new();
    let mut joined = Vec::with_capacity(lines.len());
    let mut failed = 0;
    for (l, &p) in lines.iter().zip(positions) {
        let sample = &data.split.samples[p];
        let pred: Option<Prediction> = if l["error"].is_null() {
            prediction_from_json(&l["prediction"], l["answerable"].as_f64())
        } else {
            None
        };
        // A failed sample stays in the result file as what the score counts it as.
        let pred = pred.unwrap_or_else(|| {
            failed += 1;
            predictions::stand_in(task, sample)
        });
        records.push(predictions::record(task, sample, &pred).map_err(|e| anyhow!(e))?);
        joined.push((sample, Some(pred)));
    }
    files::write_json(&out.join(task.result_file), &Value::Array(records))?;

    // Aggregate only: the per-sample scores are in predictions.jsonl.
    let (metric, headline) =
        match predictions::score(task, &joined, variant, wordnet, Detail::Aggregate) {
            Ok(m) => {
                let h = m.headline();
                (
                    serde_json::to_value(&m)?,
                    Some(Headline { name: h.name.to_owned(), value: h.value }),
                )
            }
            Err(e) => (json!({"unscored": e.to_string()}), None),
        };
    let metrics = Metrics {
        task: task.id.into(),
        split: fp.split.clone(),
        counts: Counts {
            samples: lines.len() as u64,
            scored: (lines.len() - failed) as u64,
            failed: failed as u64,
        },
        failed_counted_as_wrong: Some(failed > 0),
        failed_left_out: None,
        headline,
        metric,
        fid_statistics: None,
        result_file: task.result_file.into(),
        config: run_config(fp, model),
        timing,
    };
    files::write_json(&out.join(files::METRICS), &metrics).context("metrics.json")?;
    Ok(metrics)
}

/// `metrics.json`'s `config`: the run's configuration with the device.
pub fn run_config(fp: &RunConfig, model: &ModelInfo) -> RunConfig {
    RunConfig { device: Some(model.device.clone()), ..fp.clone() }
}

/// The small table printed at the end of `run` and `merge`.
pub fn table(rows: &[Metrics]) -> String {
    let mut s = String::from("| task | split | family | shots | samples | failed | metric | value |\n|---|---|---|---|---|---|---|---|\n");
    for m in rows {
        let (name, value) = match &m.headline {
            Some(h) => (h.name.clone(), h.value.map_or("–".into(), |v| format!("{v:.2}"))),
            None => ("(unscored)".into(), "–".into()),
        };
        let c = &m.config;
        s.push_str(&format!(
            "| {} | {} | {} | {}{}{} | {} | {} | {} | {} |\n",
            m.task,
            m.split,
            c.model_family,
            c.shots,
            if c.cot { " cot" } else { "" },
            if c.text_examples { " text" } else { "" },
            m.counts.samples,
            m.counts.failed,
            name,
            value
        ));
    }
    s
}
