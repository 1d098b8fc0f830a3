//! VQA accuracy: official, Emu (LAVIS), OKVQA and VizWiz variants.
use std::path::Path;
use serde_json::Value;
use crate::input::InputError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant { Official, Emu, Okvqa, Vizwiz }

/// Scores `{"questions":[…]}` with the given variant; returns the contract JSON.
pub fn score_file(path: &Path, variant: Variant) -> Result<Value, InputError> {
    let _ = variant;
    Err(InputError::file(path, "not implemented yet"))
}
