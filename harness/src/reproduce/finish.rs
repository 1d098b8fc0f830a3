//! `reproduce --finish`: every unit checked against the plan (missing, unfinished, running or
//! failed units and foreign folders are listed), sharded cells merged, and one report of the
//! finished cells written to `<output>/report/`. `finish.json` records the state.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Result};
use serde::Serialize;

use super::{Plan, Unit};
use crate::runner::{self, files, lock};

/// A unit that is not finished, with what is wrong.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub unit: usize,
    pub cell: String,
    pub folder: PathBuf,
    pub problem: String,
}

/// What `--finish` found and wrote (`finish.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Finished {
    pub cells: usize,
    pub reported: Vec<PathBuf>,
    pub problems: Vec<Problem>,
    /// Folders under `runs/` or `units/` that the plan does not name (not reported).
    pub foreign: Vec<PathBuf>,
    /// Samples that failed in the reported cells, by cell.
    pub failed_samples: Vec<(String, u64)>,
    pub report: PathBuf,
}

/// The state of one unit's folder: None when finished.
pub fn unit_problem(u: &Unit) -> Option<String> {
    if let Some(who) = lock::holder(&u.folder) {
        return Some(format!("running ({who})"));
    }
    if !u.folder.join(files::RUN_JSON).is_file() {
        return Some("not started".into());
    }
    if !u.folder.join(files::METRICS).is_file() {
        return Some(format!(
            "unfinished or failed (no {}; rerun: emu-eval reproduce --output … --unit {})",
            files::METRICS,
            u.index
        ));
    }
    None
}

fn problems(plan: &Plan) -> Vec<Problem> {
    plan.units
        .iter()
        .filter_map(|u| {
            unit_problem(u).map(|problem| Problem {
                unit: u.index,
                cell: u.cell.clone(),
                folder: u.folder.clone(),
                problem,
            })
        })
        .collect()
}

/// Folders in `runs/` and `units/*/` that no cell or unit of the plan names.
fn foreign(plan: &Plan) -> Vec<PathBuf> {
    let out = &plan.inputs.output;
    let known: Vec<&Path> = plan
        .cells
        .iter()
        .map(|c| c.folder.as_path())
        .chain(plan.units.iter().map(|u| u.folder.as_path()))
        .collect();
    let mut dirs = Vec::new();
    let list = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d)
            .map(|it| it.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
            .unwrap_or_default()
    };
    dirs.extend(list(&out.join("runs")));
    for cell in list(&out.join("units")) {
        if plan.cells.iter().any(|c| cell.ends_with(&c.name)) {
            dirs.extend(list(&cell));
        } else {
            dirs.push(cell);
        }
    }
    dirs.retain(|d| !known.contains(&d.as_path()));
    dirs.sort();
    dirs
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Waits up to `wait` for every unit to finish, merges and reports. Errors (after writing what
/// it can) when a unit is not finished.
pub fn finish(plan: &Plan, wait: Option<Duration>) -> Result<Finished> {
    let start = Instant::now();
    let mut probs = problems(plan);
    while let (false, Some(w)) = (probs.is_empty(), wait) {
        if start.elapsed() >= w {
            break;
        }
        crate::signals::check()?;
        std::thread::sleep(Duration::from_secs(5).min(w));
        probs = problems(plan);
    }
    let inputs = &plan.inputs;
    let fid = runner::t2i::MergeFid {
        inception: inputs.inception.clone(),
        device: crate::cli::device::parse_device(&inputs.device)?,
        reference_stats: None,
        cache: inputs.cache.clone(),
        batch: 8,
    };
    let mut reported = Vec::new();
    let mut failed_samples = Vec::new();
    for cell in &plan.cells {
        let units: Vec<&Unit> = plan.units_of(cell).collect();
        if units.iter().any(|u| probs.iter().any(|p| p.unit == u.index)) {
            continue;
        }
        if cell.shards > 1 {
            let merged = cell.folder.join(files::METRICS);
            let newest =
                units.iter().filter_map(|u| modified(&u.folder.join(files::METRICS))).max();
            let fresh = matches!((modified(&merged), newest), (Some(m), Some(n)) if m >= n);
            if !fresh {
                let dirs: Vec<PathBuf> = units.iter().map(|u| u.folder.clone()).collect();
                runner::merge::merge(
                    &dirs,
                    &cell.folder,
                    None,
                    inputs.wordnet.as_deref(),
                    None,
                    &fid,
                )?;
            }
        }
        let m = tasks::run_folder::read_metrics(&cell.folder)?;
        if m.counts.failed > 0 {
            failed_samples.push((cell.name.clone(), m.counts.failed));
        }
        reported.push(cell.folder.clone());
    }
    let report = inputs.output.join("report");
    let foreign = foreign(plan);
    if !reported.is_empty() {
        let (model, _) = reports::report(&reported, &report, &reports::ReportOptions::default())?;
        for n in &model.notes {
            crate::log::note(format!("report: {n}"));
        }
    }
    let done = Finished {
        cells: plan.cells.len(),
        reported,
        problems: probs,
        foreign,
        failed_samples,
        report,
    };
    files::write_json(&inputs.output.join("finish.json"), &done)?;
    Ok(done)
}

/// One line per problem, then an error when the plan is not complete.
pub fn check_complete(done: &Finished) -> Result<()> {
    for f in &done.foreign {
        crate::log::warn(format!("{}: not in the plan (left out of the report)", f.display()));
    }
    for (cell, n) in &done.failed_samples {
        crate::log::warn(format!("{cell}: {n} failed sample(s) (see its predictions.jsonl)"));
    }
    for p in &done.problems {
        eprintln!("emu-eval: unit {} ({}): {}: {}", p.unit, p.cell, p.folder.display(), p.problem);
    }
    if !done.problems.is_empty() {
        bail!(
            "reproduce: {} of the plan's units are not finished; the report in {} holds {} of {} cells",
            done.problems.len(),
            done.report.display(),
            done.reported.len(),
            done.cells
        );
    }
    Ok(())
}
