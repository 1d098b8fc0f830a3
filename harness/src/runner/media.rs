//! Media of the prompt stages → pixel buffers (`emu::pixels`), decoded on worker threads ahead of
//! the model.
use std::collections::HashMap;
use std::sync::Arc;

use prompts::MediaSlot;
use rayon::prelude::*;
use tasks::media::image::Normalisation;

use crate::pixels::media_pixels;

/// One decoded image or video frame: CHW float32, normalised.
pub type PixelBuf = Arc<Vec<f32>>;

/// What a media file decodes to: one image, or the `k` sampled frames of a video.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MediaKey {
    pub path: String,
    /// Frames sampled from a video (`None` for an image).
    pub frames: Option<usize>,
}

impl MediaKey {
    pub fn of(slot: &MediaSlot) -> Self {
        MediaKey { path: slot.path.clone(), frames: slot.frame.map(|(_, k)| k) }
    }
}

/// Decoded media by key: the pixels, or the one-line reason it could not be decoded.
pub type Decoded = HashMap<MediaKey, Result<Vec<PixelBuf>, String>>;

/// Decodes every key in parallel (rayon).
pub fn decode_all(keys: Vec<MediaKey>, norm: &Normalisation) -> Decoded {
    keys.into_par_iter()
        .map(|k| {
            let px = decode(&k, norm);
            (k, px)
        })
        .collect()
}

fn decode(k: &MediaKey, norm: &Normalisation) -> Result<Vec<PixelBuf>, String> {
    Ok(media_pixels(std::path::Path::new(&k.path), k.frames, norm)?
        .into_iter()
        .map(Arc::new)
        .collect())
}

/// The pixels feeding one media slot.
pub fn slot_pixels(decoded: &Decoded, slot: &MediaSlot) -> Result<PixelBuf, String> {
    let key = MediaKey::of(slot);
    let bufs = decoded
        .get(&key)
        .ok_or_else(|| format!("{}: not prefetched", slot.path))?
        .as_ref()
        .map_err(Clone::clone)?;
    let i = slot.frame.map_or(0, |(i, _)| i);
    bufs.get(i).cloned().ok_or_else(|| format!("{}: frame {i} missing", slot.path))
}
