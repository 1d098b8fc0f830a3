//! `emu-eval metric caption`: BLEU-1..4, ROUGE-L, CIDEr-D over PTB-tokenized captions.
use std::path::Path;
use serde_json::Value;
use crate::input::InputError;

/// Scores `{"images":[{"image_id","candidate","references"}]}`; returns the contract JSON.
pub fn score_file(path: &Path) -> Result<Value, InputError> {
    Err(InputError::file(path, "not implemented yet"))
}
