//! The typed report: every run, the paper-layout tables with our rows beside the published ones,
//! and the notes a reader needs. Exporters only format this.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::paper::{self, Paper, RowMatch};
use crate::runs::{Counts, Family, Headline, Run, RunConfig, Timing};
use crate::samples::RunSamples;

/// Schema of `results.json`.
pub const RESULTS_SCHEMA: u32 = 1;

/// The note printed whenever a captioning run covers a subset.
pub const CIDER_SUBSET_NOTE: &str =
    "CIDEr on a subset (--limit or a shard) uses that subset's document frequencies: \
it is not comparable to full-set CIDEr.";

/// The note of every report with a run over built-in data or the built-in model.
pub const BUILTIN_NOTE: &str =
    "Runs marked \"built-in\" scored emu-eval's built-in sample data or \
its random built-in model: their numbers only show that the pipeline runs, are never compared \
with the paper's, and stand apart from the paper rows.";

/// Where a run's data came from, as tables and pages show it.
pub fn data_label(c: &RunConfig) -> String {
    match (c.data.builtin, c.model == tasks::run_folder::BUILTIN_MODEL) {
        (true, true) => "built-in sample data, built-in random model".to_owned(),
        (true, false) => "built-in sample data".to_owned(),
        (false, true) => format!("{} (built-in random model)", c.data.root),
        (false, false) => c.data.root.clone(),
    }
}

/// One run, as the leaderboard and `compare` see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEntry {
    /// The run folder's name.
    pub name: String,
    pub task: String,
    pub config: RunConfig,
    pub headline: Headline,
    pub lower_is_better: bool,
    pub counts: Counts,
    pub timing: Timing,
    /// The paper cell this run is compared with, if any.
    pub paper: Option<PaperCell>,
    /// Per-sample scores by id (failed samples count 0, as the metric counts them wrong); None for
    /// corpus-level metrics (CIDEr, FID), whose per-sample lines carry no score.
    pub sample_scores: Option<BTreeMap<String, f64>>,
    /// Every sample id the run evaluated, sorted (what `compare` checks the overlap of).
    #[serde(default)]
    pub sample_ids: Vec<String>,
}

/// A matched paper value and our delta to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperCell {
    /// "Table 1, row Emu".
    pub source: String,
    pub value: Option<f64>,
    /// Ours − paper.
    pub delta: Option<f64>,
    pub differences: Vec<String>,
}

impl RunEntry {
    pub fn from_run(run: &Run, paper: &Paper) -> RunEntry {
        let cfg = run.config();
        let lower_is_better =
            tasks::registry::get(&cfg.task).is_some_and(|t| t.metric.lower_is_better());
        // A built-in run is never placed beside a published number.
        let matched = paper::table_for(cfg, paper)
            .filter(|_| !cfg.is_builtin())
            .and_then(|t| paper::matching_row(cfg, t));
        let headline = run.metrics.headline.clone().unwrap_or_else(|| Headline {
            name: tasks::registry::get(&cfg.task).map_or("score", |t| t.metric.name()).to_owned(),
            value: None,
        });
        let paper_cell = matched.map(|m| {
            let value = paper
                .get(&m.table, &m.row, &cfg.task, if m.table == "2" { 0 } else { cfg.shots as u32 })
                .and_then(|v| v.value);
            PaperCell {
                source: paper::source(&m.table, &m.row),
                value,
                delta: value.zip(headline.value).map(|(p, o)| o - p),
                differences: m.differences,
            }
        });
        RunEntry {
            name: run.name.clone(),
            task: cfg.task.clone(),
            config: cfg.clone(),
            headline,
            lower_is_better,
            counts: run.metrics.counts.clone(),
            timing: run.metrics.timing.clone(),
            paper: paper_cell,
            sample_scores: sample_scores(run),
            sample_ids: {
                let mut ids: Vec<String> = run.predictions.iter().map(|p| p.id.clone()).collect();
                ids.sort();
                ids
            },
        }
    }

    /// "vqav2 · emu · 4-shot" plus CoT / text examples: what `compare` pairs runs on.
    pub fn key(&self) -> String {
        let c = &self.config;
        let mut k = format!("{} {} {}-shot", c.task, c.model_family, c.shots);
        if c.cot {
            k.push_str(" cot");
        }
        if c.text_examples {
            k.push_str(" text");
        }
        k
    }
}

fn sample_scores(run: &Run) -> Option<BTreeMap<String, f64>> {
    if run.predictions.iter().all(|p| p.score.is_none()) {
        return None;
    }
    let mut out = BTreeMap::new();
    for p in &run.predictions {
        match (p.score, &p.error) {
            (Some(s), _) => out.insert(p.id.clone(), s),
            (None, Some(_)) => out.insert(p.id.clone(), 0.0),
            (None, None) => None,
        };
    }
    Some(out)
}

/// A column of a paper table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// "VQAv2" (Table 1) or "VQAv2 k=4" (Table 3).
    pub label: String,
    pub task: String,
    pub shots: u32,
}

/// One cell: a value, and for our rows the delta to the matching paper row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub value: Option<f64>,
    pub delta: Option<f64>,
    /// The run this value comes from (our rows).
    pub run: Option<String>,
}

/// A row: the paper's or ours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub label: String,
    pub ours: bool,
    /// Paper rows: "Table 1, row Emu". Ours: the paper row our deltas are against, if any.
    pub source: Option<String>,
    /// Table 2's kind (unimodal / multimodal).
    pub kind: Option<String>,
    pub cells: Vec<Cell>,
}

/// A table in the paper's layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// "1", "2", "3".
    pub id: String,
    pub title: String,
    /// Decimals the paper prints.
    pub decimals: usize,
    pub lower_is_better: bool,
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportModel {
    pub schema: u32,
    pub emu_eval_version: String,
    pub runs: Vec<RunEntry>,
    pub tables: Vec<Table>,
    pub notes: Vec<String>,
    /// Sample views for the HTML page (not in `results.json`: they hold thumbnails).
    #[serde(skip)]
    pub samples: Vec<RunSamples>,
}

const TABLES: [(&str, &str, usize); 3] = [
    ("1", "Table 1: zero-shot", 1),
    ("3", "Table 3: few-shot (k = 2, 4, 8)", 1),
    ("2", "Table 2: zero-shot text-to-image FID (lower is better)", 2),
];

impl ReportModel {
    /// Builds the report from loaded runs (sorted by name) and the published numbers.
    pub fn build(runs: &[Run], paper: &Paper, samples: Vec<RunSamples>) -> ReportModel {
        let mut entries: Vec<RunEntry> =
            runs.iter().map(|r| RunEntry::from_run(r, paper)).collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut notes = Vec::new();
        let mut tables = Vec::new();
        for (id, title, decimals) in TABLES {
            let members: Vec<&RunEntry> =
                entries.iter().filter(|e| paper::table_for(&e.config, paper) == Some(id)).collect();
            if id == "2" && members.is_empty() {
                continue;
            }
            tables.push(build_table(id, title, decimals, &members, paper, &mut notes));
        }
        notes.extend(run_notes(&entries, paper));
        ReportModel {
            schema: RESULTS_SCHEMA,
            emu_eval_version: entries
                .first()
                .map(|e| e.config.emu_eval_version.clone())
                .unwrap_or_default(),
            runs: entries,
            tables,
            notes,
            samples,
        }
    }
}

/// Our row identity within a table: everything but task (and shots in Table 3, where shots are columns).
fn row_key(
    c: &RunConfig,
    table: &str,
) -> (Family, bool, bool, String, String, String, String, u64, Option<usize>, String) {
    let support = if table == "3" { c.support_method.clone() } else { String::new() };
    (
        c.model_family,
        c.text_examples,
        c.cot,
        c.model.clone(),
        c.weights_hash.clone(),
        c.dtype.clone(),
        support,
        c.seed,
        c.limit,
        c.template_version.clone(),
    )
}

/// "ours: Emu * [emu-tiny, f32, CoT, seed 0, limit 4]".
pub fn row_label(c: &RunConfig, table: &str) -> String {
    let mut parts = vec![c.model_name().to_owned(), c.dtype.clone()];
    if c.cot {
        parts.push("CoT".to_owned());
    }
    if table == "3" {
        parts.push(c.support_method.clone());
    }
    parts.push(format!("seed {}", c.seed));
    if let Some(l) = c.limit {
        parts.push(format!("limit {l}"));
    }
    let star = if c.text_examples { " *" } else { "" };
    let label = format!("ours: {}{star} [{}]", c.model_family.paper_name(), parts.join(", "));
    if c.is_builtin() {
        format!("{label} (built-in: {})", data_label(c))
    } else {
        label
    }
}

fn build_table(
    id: &str,
    title: &str,
    decimals: usize,
    members: &[&RunEntry],
    paper: &Paper,
    notes: &mut Vec<String>,
) -> Table {
    let columns: Vec<Column> = paper
        .columns(id)
        .into_iter()
        .map(|(label, task, shots)| Column {
            label: if id == "3" { format!("{label} k={shots}") } else { label.to_owned() },
            task: task.to_owned(),
            shots,
        })
        .collect();
    let cell_of = |task: &str, shots: u32| {
        columns.iter().position(|c| c.task == task && (id == "2" || c.shots == shots))
    };
    // Our rows, grouped by configuration.
    let mut ours: BTreeMap<_, (RunConfig, Vec<Cell>)> = BTreeMap::new();
    for e in members {
        let Some(col) = cell_of(&e.task, e.config.shots as u32) else { continue };
        let (_, cells) = ours.entry(row_key(&e.config, id)).or_insert_with(|| {
            (e.config.clone(), vec![Cell { value: None, delta: None, run: None }; columns.len()])
        });
        if let Some(prev) = &cells[col].run {
            notes.push(format!(
                "Table {id}: runs {prev} and {} fill the same cell; the table shows {prev}",
                e.name
            ));
            continue;
        }
        cells[col] = Cell {
            value: e.headline.value,
            delta: e.paper.as_ref().and_then(|p| p.delta),
            run: Some(e.name.clone()),
        };
    }
    let mut our_rows: Vec<(Option<RowMatch>, Row)> = ours
        .into_values()
        .map(|(cfg, cells)| {
            let m = if cfg.is_builtin() { None } else { paper::matching_row(&cfg, id) };
            let row = Row {
                label: row_label(&cfg, id),
                ours: true,
                source: m.as_ref().map(|m| paper::source(&m.table, &m.row)),
                kind: None,
                cells,
            };
            (m, row)
        })
        .collect();
    let mut rows = Vec::new();
    // The table's rows, then values the text quotes beside it ("1 text": Flamingo-80B).
    let quoted = format!("{id} text");
    let paper_rows = paper
        .rows(id)
        .into_iter()
        .map(|r| (id, r))
        .chain(paper.rows(&quoted).into_iter().map(|r| (quoted.as_str(), r)));
    for (tab, label) in paper_rows {
        let cells = columns
            .iter()
            .map(|c| Cell {
                value: paper.get(tab, label, &c.task, c.shots).and_then(|v| v.value),
                delta: None,
                run: None,
            })
            .collect();
        let kind =
            paper.get(tab, label, &columns[0].task, columns[0].shots).and_then(|v| v.kind.clone());
        rows.push(Row {
            label: label.to_owned(),
            ours: false,
            source: Some(paper::source(tab, label)),
            kind,
            cells,
        });
        // Our rows stand right below the paper row they are compared with.
        let (mine, rest): (Vec<_>, Vec<_>) =
            our_rows.into_iter().partition(|(m, _)| m.as_ref().is_some_and(|m| m.row == label));
        rows.extend(mine.into_iter().map(|(_, r)| r));
        our_rows = rest;
    }
    rows.extend(our_rows.into_iter().map(|(_, r)| r));
    let lower_is_better = columns
        .iter()
        .any(|c| tasks::registry::get(&c.task).is_some_and(|t| t.metric.lower_is_better()));
    Table { id: id.to_owned(), title: title.to_owned(), decimals, lower_is_better, columns, rows }
}

/// Whether the task's metric is CIDEr, whose IDF comes from the scored corpus itself.
pub(crate) fn is_cider(task: &str) -> bool {
    tasks::registry::get(task).is_some_and(|t| t.metric == tasks::registry::Metric::Cider)
}

fn run_notes(entries: &[RunEntry], paper: &Paper) -> Vec<String> {
    let mut notes = Vec::new();
    if entries.iter().any(|e| e.config.is_builtin()) {
        notes.push(BUILTIN_NOTE.to_owned());
    }
    if entries
        .iter()
        .any(|e| is_cider(&e.task) && (e.config.limit.is_some() || e.config.shard.is_some()))
    {
        notes.push(CIDER_SUBSET_NOTE.to_owned());
    }
    if entries.iter().any(|e| e.config.limit.is_some()) {
        notes.push("Runs with --limit score a subset of the split; the paper's numbers are full-split numbers.".to_owned());
    }
    for e in entries {
        if e.counts.failed > 0 {
            notes.push(format!(
                "{}: {} of {} samples failed and count as wrong.",
                e.name, e.counts.failed, e.counts.samples
            ));
        }
        if let Some(p) = &e.paper {
            for d in &p.differences {
                notes.push(format!("{}: compared with {}: {d}.", e.name, p.source));
            }
        }
        if paper::table_for(&e.config, paper).is_none() {
            notes.push(format!(
                "{}: the paper reports no {} {}-shot number; the run is listed under Runs only.",
                e.name, e.task, e.config.shots
            ));
        }
    }
    notes
}
