//! Video frames (datasets.md §12, emu-model.md §6): decode with FFmpeg in presentation order,
//! count the frames that actually decode, pick K with Emu's sampler, convert those to RGB.
//! Memory holds at most the K picked frames, whatever the clip length.
use std::path::Path;

use ffmpeg_next as ffmpeg;

use super::image::{preprocess, RgbImage};
use super::{MediaError, Pixels};

/// Frames per query video.
pub const QUERY_FRAMES: usize = 8;
/// Frames per few-shot support video.
pub const SUPPORT_FRAMES: usize = 2;

/// Emu's `process_video` sampler: `seg = (n-1)/k`, `start = floor(seg/2)`,
/// `idx_i = start + round_half_even(seg·i)` (NumPy rounding). Repeats indices when `n < k`;
/// never exceeds `n-1`. `n = 0` gives an empty list.
pub fn emu_frame_indices(n: usize, k: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let seg = (n - 1) as f64 / k as f64;
    let start = (seg / 2.0).floor();
    (0..k).map(|i| ((start + (seg * i as f64).round_ties_even()) as usize).min(n - 1)).collect()
}

/// What decoding a whole clip found.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// Frames the decoder produced.
    pub decoded_frames: usize,
    /// The container's `nb_frames`, when it states one.
    pub container_frames: Option<u64>,
    pub width: u32,
    pub height: u32,
}

/// K frames picked from a clip.
#[derive(Debug, Clone)]
pub struct SampledFrames {
    pub info: VideoInfo,
    pub indices: Vec<usize>,
    /// One RGB frame per index, in index order (repeated indices repeat the frame).
    pub frames: Vec<RgbImage>,
}

fn init() -> Result<(), String> {
    static INIT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    INIT.get_or_init(|| {
        ffmpeg::init().map_err(|e| e.to_string())?;
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
        Ok(())
    })
    .clone()
}

/// Decodes every frame of the best video stream in presentation order. For each frame index `i`
/// with `keep(i)`, the frame is converted to RGB24 at native size and handed to `sink`.
fn decode(
    path: &Path,
    keep: &dyn Fn(usize) -> bool,
    sink: &mut dyn FnMut(usize, RgbImage),
) -> Result<VideoInfo, MediaError> {
    if !path.exists() {
        return Err(MediaError::NotFound(path.to_owned()));
    }
    let err = |m: String| MediaError::Decode(path.to_owned(), m);
    init().map_err(err)?;
    let mut ictx = ffmpeg::format::input(&path).map_err(|e| err(e.to_string()))?;
    let stream = ictx.streams().best(ffmpeg::media::Type::Video).ok_or_else(|| err("no video stream".into()))?;
    let index = stream.index();
    let container_frames = u64::try_from(stream.frames()).ok().filter(|&n| n > 0);
    let ctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters()).map_err(|e| err(e.to_string()))?;
    let mut decoder = ctx.decoder().video().map_err(|e| err(e.to_string()))?;
    // The stream's stated size, then every frame's, against the pixel limit before conversion.
    crate::limits::check_image_size(decoder.width() as u64, decoder.height() as u64).map_err(err)?;
    let mut scaler: Option<ffmpeg::software::scaling::Context> = None;
    let mut count = 0usize;
    let mut frame = ffmpeg::util::frame::Video::empty();
    let mut rgb = ffmpeg::util::frame::Video::empty();
    let mut size = (decoder.width(), decoder.height());
    let mut drain = |decoder: &mut ffmpeg::decoder::Video, count: &mut usize| -> Result<(), MediaError> {
        while decoder.receive_frame(&mut frame).is_ok() {
            let i = *count;
            *count += 1;
            if !keep(i) {
                continue;
            }
            let (w, h) = (frame.width(), frame.height());
            crate::limits::check_image_size(w as u64, h as u64).map_err(err)?;
            size = (w, h);
            let stale = scaler.as_ref().is_none_or(|s| s.input().width != w || s.input().height != h || s.input().format != frame.format());
            if stale {
                let s = ffmpeg::software::scaling::Context::get(
                    frame.format(),
                    w,
                    h,
                    ffmpeg::format::Pixel::RGB24,
                    w,
                    h,
                    ffmpeg::software::scaling::Flags::BILINEAR,
                )
                .map_err(|e| err(e.to_string()))?;
                scaler = Some(s);
            }
            let Some(s) = scaler.as_mut() else { continue };
            s.run(&frame, &mut rgb).map_err(|e| err(e.to_string()))?;
            let (w, h) = (w as usize, h as usize);
            let stride = rgb.stride(0);
            let plane = rgb.data(0);
            let mut data = Vec::with_capacity(w * h * 3);
            for y in 0..h {
                data.extend_from_slice(&plane[y * stride..y * stride + w * 3]);
            }
            sink(i, RgbImage::new(w, h, data));
        }
        Ok(())
    };
    for (s, packet) in ictx.packets() {
        if s.index() != index {
            continue;
        }
        // A damaged packet is skipped: only frames that decode are counted.
        if decoder.send_packet(&packet).is_ok() {
            drain(&mut decoder, &mut count)?;
        }
    }
    // Flush: without send_eof the decoder keeps its last (reordered) frames.
    if decoder.send_eof().is_ok() {
        drain(&mut decoder, &mut count)?;
    }
    if count == 0 {
        return Err(err("no decodable video frames".into()));
    }
    Ok(VideoInfo { decoded_frames: count, container_frames, width: size.0, height: size.1 })
}

/// Decodes the whole clip once to count its frames (no colour conversion).
pub fn probe(path: &Path) -> Result<VideoInfo, MediaError> {
    decode(path, &|_| false, &mut |_, _| {})
}

/// Picks `k` frames with Emu's sampler over the frames that actually decode (two decoding passes:
/// count, then keep only the picked frames).
pub fn read_frames(path: &Path, k: usize) -> Result<SampledFrames, MediaError> {
    let info = probe(path)?;
    let indices = emu_frame_indices(info.decoded_frames, k);
    let wanted: std::collections::BTreeSet<usize> = indices.iter().copied().collect();
    let mut kept: std::collections::BTreeMap<usize, RgbImage> = Default::default();
    decode(path, &|i| wanted.contains(&i), &mut |i, img| {
        kept.insert(i, img);
    })?;
    let mut frames = Vec::with_capacity(k);
    for i in &indices {
        let f = kept.get(i).ok_or_else(|| {
            MediaError::Decode(path.to_owned(), format!("frame {i} decoded in the first pass but not in the second"))
        })?;
        frames.push(f.clone());
    }
    Ok(SampledFrames { info, indices, frames })
}

/// `k` frames, each through the still-image pipeline (224×224, CLIP-normalised CHW float32).
pub fn preprocess_video(path: &Path, k: usize) -> Result<Vec<Pixels>, MediaError> {
    Ok(read_frames(path, k)?.frames.iter().map(preprocess).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers of emu-model.md §7.5 and datasets.md §12.1.
    #[test]
    fn sampler_known_answers() {
        assert_eq!(emu_frame_indices(8, 8), [0, 1, 2, 3, 4, 4, 5, 6]);
        assert_eq!(emu_frame_indices(9, 8), [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(emu_frame_indices(10, 8), [0, 1, 2, 3, 4, 6, 7, 8]);
        assert_eq!(emu_frame_indices(17, 8), [1, 3, 5, 7, 9, 11, 13, 15]);
        assert_eq!(emu_frame_indices(100, 8), [6, 18, 31, 43, 56, 68, 80, 93]);
        assert_eq!(emu_frame_indices(250, 8), [15, 46, 77, 108, 139, 171, 202, 233]);
        assert_eq!(emu_frame_indices(301, 8), [18, 56, 93, 130, 168, 206, 243, 280]);
        assert_eq!(emu_frame_indices(75, 8), [4, 13, 22, 32, 41, 50, 60, 69]);
        assert_eq!(emu_frame_indices(50, 2), [12, 36]);
        assert_eq!(emu_frame_indices(5, 8), [0, 0, 1, 2, 2, 2, 3, 4]);
        assert!(emu_frame_indices(0, 8).is_empty());
    }
}
