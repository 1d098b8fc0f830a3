//! Reports over `emu-eval run` folders: the paper's tables with our rows beside the published
//! numbers (Markdown, CSV, JSON), plots (SVG, PNG), a self-contained HTML page, and `compare`,
//! a paired-bootstrap regression gate between two sets of runs.
//!
//! Shape: typed run files ([`runs`]) → a typed [`model::ReportModel`] → one exporter per format
//! ([`export`]), as hyperfine's `export/` layer.
use std::path::{Path, PathBuf};

pub mod compare;
pub mod export;
pub mod model;
pub mod paper;
pub mod runs;
pub mod samples;
pub mod synthetic;

pub use model::ReportModel;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Input(#[from] tasks::input::InputError),
    #[error("{}: cannot write: {}", .0.display(), .1)]
    Write(PathBuf, String),
    #[error("{0}")]
    Format(String),
    #[error("plot {0}: {1}")]
    Plot(String, String),
    #[error("{0}")]
    Font(String),
}

/// A message about the input that names what is wrong (tolerance specs, runs that cannot be
/// compared).
impl From<String> for Error {
    fn from(s: String) -> Self {
        Error::Format(s)
    }
}

/// Options of [`report`].
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Samples per view in the HTML page (the first N and the N worst).
    pub samples: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self { samples: 5 }
    }
}

/// Loads run folders and builds the report model (runs sorted by folder name).
pub fn build(run_dirs: &[PathBuf], opts: &ReportOptions) -> Result<ReportModel, Error> {
    let (dirs, skipped) = runs::discover(run_dirs)?;
    let mut runs = dirs.iter().map(|d| runs::Run::load(d)).collect::<Result<Vec<_>, _>>()?;
    runs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut thumbs = samples::Thumbnailer::default();
    let views = runs.iter().map(|r| samples::select(r, opts.samples, &mut thumbs)).collect();
    let mut model = ReportModel::build(&runs, &paper::Paper::published(), views);
    model.notes.extend(skipped);
    Ok(model)
}

/// `emu-eval report`: builds the model and writes every format under `out`.
pub fn report(
    run_dirs: &[PathBuf],
    out: &Path,
    opts: &ReportOptions,
) -> Result<(ReportModel, Vec<String>), Error> {
    let model = build(run_dirs, opts)?;
    let files = export::ExportManager::default().write_all(&model, out)?;
    Ok((model, files))
}
