//! VQAv2 (datasets.md §5): val (locally scorable), train (RICES pool), test-dev (submission;
//! images in `test2015/`, trap 2).
use std::path::Path;

use super::{unknown_split, vqa_common, Sample};
use crate::input::InputError;

pub const SPLITS: &[&str] = &["val", "train", "test-dev"];

/// `(questions, annotations, image folder)` of a split.
pub fn files(split: &str) -> Option<(&'static str, Option<&'static str>, &'static str)> {
    match split {
        "val" => Some((
            "v2_OpenEnded_mscoco_val2014_questions.json",
            Some("v2_mscoco_val2014_annotations.json"),
            "val2014",
        )),
        "train" => Some((
            "v2_OpenEnded_mscoco_train2014_questions.json",
            Some("v2_mscoco_train2014_annotations.json"),
            "train2014",
        )),
        "test-dev" => Some(("v2_OpenEnded_mscoco_test-dev2015_questions.json", None, "test2015")),
        _ => None,
    }
}

pub fn load(dir: &Path, split: &str) -> Result<Vec<Sample>, InputError> {
    let (q, a, subset) = files(split).ok_or_else(|| unknown_split(dir, "vqav2", split, SPLITS))?;
    vqa_common::load(dir, q, a, subset)
}
