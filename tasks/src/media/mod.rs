//! Media preprocessing: still images (decode, Pillow-exact bicubic resize, CLIP normalisation)
//! and video frames (FFmpeg decode, Emu's frame sampler). Plain `Vec<f32>`/`Vec<u8>` outputs.
mod ffmpeg;
pub mod image;
pub mod resample;
pub mod turbojpeg;
pub mod video;

use std::path::PathBuf;

/// A decoding error; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{}: not found", .0.display())]
    NotFound(PathBuf),
    #[error("{}: cannot read: {}", .0.display(), .1)]
    Io(PathBuf, String),
    #[error("{}: cannot decode: {}", .0.display(), .1)]
    Decode(PathBuf, String),
}

impl MediaError {
    pub fn path(&self) -> &std::path::Path {
        match self {
            MediaError::NotFound(p) | MediaError::Io(p, _) | MediaError::Decode(p, _) => p,
        }
    }
    pub fn reason(&self) -> String {
        match self {
            MediaError::NotFound(_) => "not found".to_owned(),
            MediaError::Io(_, m) => format!("cannot read: {m}"),
            MediaError::Decode(_, m) => format!("cannot decode: {m}"),
        }
    }
}

/// Preprocessed pixels: CHW float32 with their shape `[channels, height, width]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    pub data: Vec<f32>,
    pub shape: [usize; 3],
}
