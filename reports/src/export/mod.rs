//! One exporter per format over the typed [`ReportModel`], as hyperfine's `export/` layer: each
//! returns the files it writes; [`ExportManager`] fans out and writes them.
use std::path::Path;

use crate::model::ReportModel;
use crate::Error;

pub mod csv;
pub mod html;
pub mod json;
pub mod markdown;
pub mod plots;

/// A file to write, relative to the output folder.
#[derive(Debug, Clone, PartialEq)]
pub struct OutFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

impl OutFile {
    pub fn text(path: impl Into<String>, text: String) -> Self {
        Self { path: path.into(), bytes: text.into_bytes() }
    }
}

pub trait Exporter {
    fn serialize(&self, model: &ReportModel) -> Result<Vec<OutFile>, Error>;
}

/// All formats: results.md, results.csv, results.json, plots/*.svg|png, index.html.
pub struct ExportManager {
    exporters: Vec<Box<dyn Exporter>>,
}

impl Default for ExportManager {
    fn default() -> Self {
        Self {
            exporters: vec![
                Box::new(markdown::MarkdownExporter),
                Box::new(csv::CsvExporter),
                Box::new(json::JsonExporter),
                Box::new(plots::PlotsExporter),
                Box::new(html::HtmlExporter),
            ],
        }
    }
}

impl ExportManager {
    /// Writes every exporter's files under `out`; returns their paths relative to `out`.
    pub fn write_all(&self, model: &ReportModel, out: &Path) -> Result<Vec<String>, Error> {
        let mut written = Vec::new();
        for e in &self.exporters {
            for f in e.serialize(model)? {
                let path = out.join(&f.path);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| Error::Write(dir.to_owned(), e.to_string()))?;
                }
                std::fs::write(&path, &f.bytes)
                    .map_err(|e| Error::Write(path.clone(), e.to_string()))?;
                written.push(f.path);
            }
        }
        Ok(written)
    }
}

/// A number with `decimals` places; "–" when absent.
pub fn fmt_value(v: Option<f64>, decimals: usize) -> String {
    v.map_or("–".to_owned(), |v| format!("{v:.decimals$}"))
}

/// A signed delta ("+1.20", "-0.35").
pub fn fmt_delta(d: f64, decimals: usize) -> String {
    format!("{d:+.decimals$}")
}

/// Decimals for our values: one more than the paper prints.
pub fn our_decimals(table_decimals: usize) -> usize {
    table_decimals + 1
}
