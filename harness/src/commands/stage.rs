//! `generate --stage FILE` / `rank --stage FILE`: one stage object as `prompt --json` prints it
//! (`text`, `images`, `frames`) or as `predictions.jsonl` records it, read back into the text and
//! its media slots; the pixels come from the runner's media code, so a video frame `[i, k]` is
//! the frame `run` feeds.
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use prompts::MediaSlot;
use serde::Deserialize;

use crate::pixels::normalisation;
use crate::runner::media::{decode_all, slot_pixels, MediaKey};
use models::emu::Emu;

/// A stage's text and the media feeding its image blocks, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct StageInput {
    pub text: String,
    pub media: Vec<MediaSlot>,
}

/// The fields read; others (`stage`, `kind`, `output`, `ids`, …) are ignored.
#[derive(Deserialize)]
struct StageFields {
    text: String,
    #[serde(default)]
    images: Vec<String>,
    /// Per image: `null`, or `[i, k]` (frame i of the k sampled from a video); absent: all images.
    frames: Option<Vec<Option<(usize, usize)>>>,
}

impl StageInput {
    /// Reads one stage object from `path` (`-`: stdin); errors name the file and the field.
    pub fn read(path: &Path) -> Result<Self> {
        let stdin = path == Path::new("-");
        let name = if stdin { "<stdin>".to_owned() } else { path.display().to_string() };
        let mut text = String::new();
        if stdin {
            std::io::stdin()
                .read_to_string(&mut text)
                .with_context(|| format!("{name}: reading the stage"))?;
        } else {
            text = std::fs::read_to_string(path).with_context(|| format!("{name}: cannot read"))?;
        }
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{name}: {e}"))
    }

    /// Parses and checks one stage object; the error is `FIELD: MESSAGE`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let f: StageFields = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                format!("{inner}")
            } else {
                format!("{path}: {inner}")
            }
        })?;
        let frames = f.frames.unwrap_or_else(|| vec![None; f.images.len()]);
        if frames.len() != f.images.len() {
            return Err(format!("frames: {} entries for {} images", frames.len(), f.images.len()));
        }
        for (n, fr) in frames.iter().enumerate() {
            if let Some((i, k)) = fr {
                if i >= k {
                    return Err(format!(
                        "frames[{n}]: frame {i} of {k} sampled frames does not exist"
                    ));
                }
            }
        }
        let media = f
            .images
            .into_iter()
            .zip(frames)
            .map(|(path, frame)| MediaSlot { path, frame })
            .collect();
        Ok(StageInput { text: f.text, media })
    }

    /// Image files (not video frames), for the header checks before the model is loaded.
    pub fn image_files(&self) -> Vec<PathBuf> {
        self.media.iter().filter(|m| m.frame.is_none()).map(|m| PathBuf::from(&m.path)).collect()
    }
}

/// The pixels of `media` as (n, 3, size, size) f32, decoded as `run` decodes them; `None`
/// without media.
pub fn media_tensor(emu: &Emu, media: &[MediaSlot]) -> Result<Option<Tensor>> {
    if media.is_empty() {
        return Ok(None);
    }
    let mut seen = HashSet::new();
    let keys: Vec<MediaKey> =
        media.iter().map(MediaKey::of).filter(|k| seen.insert(k.clone())).collect();
    let norm = normalisation(emu);
    let decoded = decode_all(keys, &norm);
    let mut data = Vec::with_capacity(media.len() * 3 * norm.size * norm.size);
    for slot in media {
        data.extend_from_slice(&slot_pixels(&decoded, slot).map_err(anyhow::Error::msg)?);
    }
    Ok(Some(Tensor::from_vec(data, (media.len(), 3, norm.size, norm.size), &Device::Cpu)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_prompt_json_prints() {
        let s = StageInput::parse(
            r#"{"stage":"answer","kind":"answer","text":"t","images":["a.jpg","v.mp4","v.mp4"],"frames":[null,[0,2],[1,2]],"output":"x"}"#,
        )
        .unwrap();
        assert_eq!(s.text, "t");
        assert_eq!(s.media[0], MediaSlot { path: "a.jpg".into(), frame: None });
        assert_eq!(s.media[2], MediaSlot { path: "v.mp4".into(), frame: Some((1, 2)) });
        assert_eq!(s.image_files(), [PathBuf::from("a.jpg")]);
        let s = StageInput::parse(r#"{"text":"no media"}"#).unwrap();
        assert!(s.media.is_empty());
    }

    #[test]
    fn errors_name_the_field() {
        let e = StageInput::parse(r#"{"images":[]}"#).unwrap_err();
        assert!(e.contains("missing field `text`"), "{e}");
        let e =
            StageInput::parse(r#"{"text":"t","images":["a"],"frames":[null,null]}"#).unwrap_err();
        assert_eq!(e, "frames: 2 entries for 1 images");
        let e = StageInput::parse(r#"{"text":"t","images":["v"],"frames":[[2,2]]}"#).unwrap_err();
        assert!(e.starts_with("frames[0]: frame 2 of 2"), "{e}");
        let e = StageInput::parse(r#"{"text":"t","images":[3]}"#).unwrap_err();
        assert!(e.starts_with("images[0]: invalid type"), "{e}");
    }
}
