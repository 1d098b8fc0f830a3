//! `results.csv`: one line per table cell (table, row, column, value, delta), so a spreadsheet
//! pivot gives back the paper layout.
use super::{Exporter, OutFile};
use crate::model::ReportModel;
use crate::Error;

pub struct CsvExporter;

impl Exporter for CsvExporter {
    fn serialize(&self, model: &ReportModel) -> Result<Vec<OutFile>, Error> {
        Ok(vec![OutFile { path: "results.csv".to_owned(), bytes: render(model)? }])
    }
}

pub fn render(model: &ReportModel) -> Result<Vec<u8>, Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| Error::Format(format!("results.csv: {e}"));
    w.write_record([
        "table", "row", "ours", "source", "column", "task", "shots", "value", "delta", "run",
    ])
    .map_err(err)?;
    let num = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for t in &model.tables {
        for r in &t.rows {
            for (c, cell) in t.columns.iter().zip(&r.cells) {
                w.write_record([
                    t.id.as_str(),
                    &r.label,
                    if r.ours { "yes" } else { "no" },
                    r.source.as_deref().unwrap_or(""),
                    &c.label,
                    &c.task,
                    &c.shots.to_string(),
                    &num(cell.value),
                    &num(cell.delta),
                    cell.run.as_deref().unwrap_or(""),
                ])
                .map_err(err)?;
            }
        }
    }
    w.into_inner().map_err(|e| Error::Format(format!("results.csv: {e}")))
}
