//! `results.json`: the whole [`ReportModel`] (runs with per-sample scores, tables, notes), which
//! `emu-eval compare` also reads.
use super::{Exporter, OutFile};
use crate::model::ReportModel;
use crate::Error;

pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn serialize(&self, model: &ReportModel) -> Result<Vec<OutFile>, Error> {
        let mut text = serde_json::to_string_pretty(model)
            .map_err(|e| Error::Format(format!("results.json: {e}")))?;
        text.push('\n');
        Ok(vec![OutFile::text("results.json", text)])
    }
}
