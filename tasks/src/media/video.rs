//! Video frames (datasets.md §12, emu-model.md §6): decode with FFmpeg in presentation order,
//! count the frames that actually decode, pick K with Emu's sampler, convert those to RGB.
//! Memory holds at most the K picked frames, whatever the clip length. FFmpeg is loaded on first
//! use (`super::ffmpeg`).
use crate::media::DecodeError;
use std::ffi::c_int;
use std::path::Path;

use super::ffmpeg;

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

/// Owned FFmpeg objects, freed on drop.
struct Decoding<'a> {
    api: &'a ffmpeg::Api,
    input: *mut ffmpeg::AVFormatContext,
    codec: *mut ffmpeg::AVCodecContext,
    packet: *mut ffmpeg::AVPacket,
    frame: *mut ffmpeg::AVFrame,
    rgb: *mut ffmpeg::AVFrame,
    scaler: *mut ffmpeg::SwsContext,
    /// The scaler's input: (width, height, pixel format).
    scaler_input: (c_int, c_int, c_int),
}

impl Drop for Decoding<'_> {
    fn drop(&mut self) {
        let a = self.api;
        // SAFETY: each pointer is null or owned by this value; the free functions accept null.
        unsafe {
            if !self.scaler.is_null() {
                (a.sws_freeContext)(self.scaler);
            }
            (a.av_frame_free)(&mut self.rgb);
            (a.av_frame_free)(&mut self.frame);
            (a.av_packet_free)(&mut self.packet);
            (a.avcodec_free_context)(&mut self.codec);
            if !self.input.is_null() {
                (a.avformat_close_input)(&mut self.input);
            }
        }
    }
}

impl Decoding<'_> {
    /// Receives every frame the decoder has ready; `keep(i)` frames go to `sink` as RGB24.
    fn drain(
        &mut self,
        count: &mut usize,
        size: &mut (u32, u32),
        keep: &dyn Fn(usize) -> bool,
        sink: &mut dyn FnMut(usize, RgbImage),
    ) -> Result<(), DecodeError> {
        let a = self.api;
        // SAFETY: `codec` is open, `frame` allocated; receive_frame unrefs `frame` first.
        while unsafe { (a.avcodec_receive_frame)(self.codec, self.frame) } >= 0 {
            let i = *count;
            *count += 1;
            if !keep(i) {
                continue;
            }
            // SAFETY: a received frame is a valid AVFrame.
            let (w, h, format) =
                unsafe { ((*self.frame).width, (*self.frame).height, (*self.frame).format) };
            let (wu, hu) = (u32::try_from(w).unwrap_or(0), u32::try_from(h).unwrap_or(0));
            crate::limits::check_image_size(wu as u64, hu as u64)?;
            *size = (wu, hu);
            if self.scaler.is_null() || self.scaler_input != (w, h, format) {
                // SAFETY: frees the stale scaler and RGB frame (null-safe), then allocates new ones.
                unsafe {
                    if !self.scaler.is_null() {
                        (a.sws_freeContext)(self.scaler);
                    }
                    self.scaler = (a.sws_getContext)(
                        w,
                        h,
                        format,
                        w,
                        h,
                        ffmpeg::AV_PIX_FMT_RGB24,
                        ffmpeg::SWS_BILINEAR,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        std::ptr::null(),
                    );
                    if self.scaler.is_null() {
                        return Err(DecodeError(format!(
                            "cannot convert pixel format {format} to RGB"
                        )));
                    }
                    self.scaler_input = (w, h, format);
                    (a.av_frame_free)(&mut self.rgb);
                    self.rgb = (a.av_frame_alloc)();
                    if self.rgb.is_null() {
                        return Err("out of memory".into());
                    }
                    (*self.rgb).format = ffmpeg::AV_PIX_FMT_RGB24;
                    (*self.rgb).width = w;
                    (*self.rgb).height = h;
                    let r = (a.av_frame_get_buffer)(self.rgb, 32);
                    if r < 0 {
                        return Err(a.error(r).into());
                    }
                }
            }
            let (wu, hu) = (wu as usize, hu as usize);
            // SAFETY: the scaler was made for this frame's size and format; `rgb` holds a w×h RGB24
            // buffer whose first plane has `linesize[0] >= 3w` bytes per row.
            let data = unsafe {
                let (src, dst) = (&*self.frame, &*self.rgb);
                (a.sws_scale)(
                    self.scaler,
                    src.data.as_ptr() as *const *const u8,
                    src.linesize.as_ptr(),
                    0,
                    h,
                    dst.data.as_ptr(),
                    dst.linesize.as_ptr(),
                );
                let stride = dst.linesize[0] as usize;
                let plane = std::slice::from_raw_parts(dst.data[0], stride * (hu - 1) + wu * 3);
                let mut data = Vec::with_capacity(wu * hu * 3);
                for y in 0..hu {
                    data.extend_from_slice(&plane[y * stride..y * stride + wu * 3]);
                }
                data
            };
            sink(i, RgbImage::new(wu, hu, data));
        }
        Ok(())
    }
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
    let err = |m: DecodeError| MediaError::decode(path, m);
    let a = ffmpeg::api().map_err(err)?;
    let url = ffmpeg::c_path(path).map_err(err)?;
    let null = std::ptr::null_mut();
    let mut d = Decoding {
        api: a,
        input: null as _,
        codec: null as _,
        packet: null as _,
        frame: null as _,
        rgb: null as _,
        scaler: null as _,
        scaler_input: (0, 0, -1),
    };
    // SAFETY: FFmpeg's documented call sequence; every object is owned by `d` and freed on drop.
    let (index, container_frames, width, height) = unsafe {
        let r = (a.avformat_open_input)(&mut d.input, url.as_ptr(), std::ptr::null(), null as _);
        if r < 0 {
            d.input = null as _; // freed by FFmpeg on failure
            return Err(err(a.error(r).into()));
        }
        let r = (a.avformat_find_stream_info)(d.input, null as _);
        if r < 0 {
            return Err(err(a.error(r).into()));
        }
        let index =
            (a.av_find_best_stream)(d.input, ffmpeg::AVMEDIA_TYPE_VIDEO, -1, -1, null as _, 0);
        if index < 0 {
            return Err(err("no video stream".into()));
        }
        let stream = *(*d.input).streams.add(index as usize);
        let container_frames = u64::try_from((*stream).nb_frames).ok().filter(|&n| n > 0);
        let par = (*stream).codecpar;
        d.codec = (a.avcodec_alloc_context3)(std::ptr::null());
        if d.codec.is_null() {
            return Err(err("out of memory".into()));
        }
        let r = (a.avcodec_parameters_to_context)(d.codec, par);
        if r < 0 {
            return Err(err(a.error(r).into()));
        }
        // The codec id, read as its C type (an id newer than our headers is not a valid Rust enum).
        let codec_id = *(std::ptr::addr_of!((*par).codec_id) as *const c_int);
        let decoder = (a.avcodec_find_decoder)(codec_id);
        if decoder.is_null() {
            return Err(err("Decoder not found".into()));
        }
        let r = (a.avcodec_open2)(d.codec, decoder, null as _);
        if r < 0 {
            return Err(err(a.error(r).into()));
        }
        d.packet = (a.av_packet_alloc)();
        d.frame = (a.av_frame_alloc)();
        if d.packet.is_null() || d.frame.is_null() {
            return Err(err("out of memory".into()));
        }
        (index, container_frames, (*d.codec).width, (*d.codec).height)
    };
    let (width, height) = (u32::try_from(width).unwrap_or(0), u32::try_from(height).unwrap_or(0));
    // The stream's stated size, then every frame's, against the pixel limit before conversion.
    crate::limits::check_image_size(width as u64, height as u64).map_err(|e| err(e.into()))?;
    let mut count = 0usize;
    let mut size = (width, height);
    loop {
        // SAFETY: `input` is open and `packet` allocated (and unreferenced here).
        let r = unsafe { (a.av_read_frame)(d.input, d.packet) };
        if r == ffmpeg::AVERROR_INVALIDDATA {
            // A corrupt packet: the demuxer resyncs past it.
            continue;
        }
        if r < 0 {
            // End of file, or an I/O error FFmpeg latches (retrying would return it forever).
            break;
        }
        // SAFETY: a packet just read; unreferenced after sending.
        let sent = unsafe {
            let ok = (*d.packet).stream_index == index
                && (a.avcodec_send_packet)(d.codec, d.packet) >= 0;
            (a.av_packet_unref)(d.packet);
            ok
        };
        // A damaged packet is skipped: only frames that decode are counted.
        if sent {
            d.drain(&mut count, &mut size, keep, sink).map_err(err)?;
        }
    }
    // Flush: without a null packet the decoder keeps its last (reordered) frames.
    // SAFETY: a null packet enters draining mode.
    if unsafe { (a.avcodec_send_packet)(d.codec, std::ptr::null()) } >= 0 {
        d.drain(&mut count, &mut size, keep, sink).map_err(err)?;
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
            MediaError::Decode(
                path.to_owned(),
                format!("frame {i} decoded in the first pass but not in the second"),
            )
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
