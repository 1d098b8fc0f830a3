//! OK-VQA v1.1 (datasets.md §6): val (scored, images in `val2014/`) and train (RICES pool).
use std::path::Path;

use super::{unknown_split, vqa_common, Sample};
use crate::input::InputError;

pub const SPLITS: &[&str] = &["val", "train"];

/// `(questions, annotations, image folder)` of a split.
pub fn files(split: &str) -> Option<(&'static str, Option<&'static str>, &'static str)> {
    match split {
        "val" => Some((
            "OpenEnded_mscoco_val2014_questions.json",
            Some("mscoco_val2014_annotations.json"),
            "val2014",
        )),
        "train" => Some((
            "OpenEnded_mscoco_train2014_questions.json",
            Some("mscoco_train2014_annotations.json"),
            "train2014",
        )),
        _ => None,
    }
}

pub fn load(dir: &Path, split: &str) -> Result<Vec<Sample>, InputError> {
    let (q, a, subset) = files(split).ok_or_else(|| unknown_split(dir, "okvqa", split, SPLITS))?;
    vqa_common::load(dir, q, a, subset)
}
