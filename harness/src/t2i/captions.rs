//! The COCO text-to-image prompt list: a seeded sample of the val2014 caption annotations (the
//! usual 30,000-prompt protocol), written next to the results so that a run can be reproduced.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tasks::datasets::{Content, Media, Sample};

/// Prompts of the paper's FID protocol.
pub const COCO_T2I_PROMPTS: usize = 30_000;

/// One prompt: the caption annotation id (the PNG's name), the raw caption text and its real
/// image (an FID reference image).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Caption {
    pub id: u64,
    pub caption: String,
    pub image: PathBuf,
}

/// The captions of `samples` (coco_t2i's loader output) at `tasks::rng::subsample(n, k, seed)`
/// (sorted positions; all of them when there are at most `k`).
pub fn sample_captions(samples: &[Sample], k: usize, seed: u64) -> Vec<Caption> {
    let all: Vec<Caption> = samples
        .iter()
        .filter_map(|s| match (&s.content, &s.media) {
            (Content::TextToImage { annotation_id, caption }, Media::Image { path, .. }) => {
                Some(Caption { id: *annotation_id, caption: caption.clone(), image: path.clone() })
            }
            _ => None,
        })
        .collect();
    tasks::rng::subsample(all.len(), k, seed).into_iter().map(|i| all[i].clone()).collect()
}

/// Writes the list as JSON (`[{"id", "caption", "image"}, …]`).
pub fn write_captions(path: &Path, captions: &[Caption]) -> Result<()> {
    let text = serde_json::to_string_pretty(captions)?;
    std::fs::write(path, text + "\n").with_context(|| format!("{}: cannot write", path.display()))
}

/// Reads a list written by [`write_captions`].
pub fn read_captions(path: &Path) -> Result<Vec<Caption>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: malformed caption list", path.display()))
}
