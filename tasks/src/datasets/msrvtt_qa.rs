//! MSRVTT-QA (datasets.md §10, trap 9): integer `video_id`, file `videos/video{id}.mp4`.
use std::path::Path;

use super::{require, unknown_split, video_qa, Media, Sample};
use crate::input::InputError;

pub const SPLITS: &[&str] = &["test", "val", "train"];

pub fn load(dir: &Path, split: &str) -> Result<Vec<Sample>, InputError> {
    if !SPLITS.contains(&split) {
        return Err(unknown_split(dir, "msrvtt_qa", split, SPLITS));
    }
    let qa = require(dir, &format!("{split}_qa.json"))?;
    video_qa::load(&qa, |id| {
        Ok(Media::Video {
            key: format!("video{id}"),
            path: dir.join("videos").join(format!("video{id}.mp4")),
        })
    })
}
