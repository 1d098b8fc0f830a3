//! MSVD-QA (datasets.md §9, trap 8): `video_id` is the N of `vidN` in `youtube_mapping.txt`;
//! clip `YouTubeClips/<clip_name>.avi`. Clip names may start with `-` and contain `_`.
use std::collections::HashMap;
use std::path::Path;

use super::{require, unknown_split, video_qa, Media, Sample};
use crate::input::{read_text, InputError};

pub const SPLITS: &[&str] = &["test", "val", "train"];
pub const MAPPING: &str = "youtube_mapping.txt";

/// Parses `<clip_name> vid<N>` lines by their `vidN` token (not by line number); the clip name is
/// everything before the last space, never split on `_`.
pub fn parse_mapping(path: &Path, text: &str) -> Result<HashMap<u64, String>, InputError> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let field = format!("line {}", i + 1);
        let (clip, vid) = line.trim().rsplit_once(' ').ok_or_else(|| {
            InputError::field(
                path,
                &field,
                format!("expected `<clip_name> vid<N>`, found {line:?}"),
            )
        })?;
        let n = vid.strip_prefix("vid").and_then(|n| n.parse::<u64>().ok()).ok_or_else(|| {
            InputError::field(path, &field, format!("expected `vid<N>`, found {vid:?}"))
        })?;
        if out.insert(n, clip.trim().to_owned()).is_some() {
            return Err(InputError::field(path, &field, format!("vid{n} is mapped twice")));
        }
    }
    Ok(out)
}

pub fn load(dir: &Path, split: &str) -> Result<Vec<Sample>, InputError> {
    if !SPLITS.contains(&split) {
        return Err(unknown_split(dir, "msvd_qa", split, SPLITS));
    }
    let qa = require(dir, &format!("{split}_qa.json"))?;
    let map_path = require(dir, MAPPING)?;
    let mapping = parse_mapping(&map_path, &read_text(&map_path)?)?;
    video_qa::load(&qa, |video_id| {
        let clip = mapping.get(&video_id).ok_or_else(|| {
            crate::input::Invalid(format!(
                "video_id {video_id} has no vid{video_id} line in {}",
                map_path.display()
            ))
        })?;
        Ok(Media::Video {
            key: format!("vid{video_id}"),
            path: dir.join("YouTubeClips").join(format!("{clip}.avi")),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_keeps_leading_dash_and_underscores() {
        let m = parse_mapping(
            Path::new("m.txt"),
            "-vZ3hQk9bLs_12_20 vid1301\nzzit5b_-ukg_5_20 vid1970\n",
        )
        .unwrap();
        assert_eq!(m[&1301], "-vZ3hQk9bLs_12_20");
        assert_eq!(m[&1970], "zzit5b_-ukg_5_20");
        assert!(parse_mapping(Path::new("m.txt"), "abc vidX").is_err());
    }
}
