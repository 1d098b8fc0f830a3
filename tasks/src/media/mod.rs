//! Media preprocessing: still images (decode, Pillow-exact bicubic resize, CLIP normalisation)
//! and video frames (FFmpeg decode, Emu's frame sampler). Plain `Vec<f32>`/`Vec<u8>` outputs.
mod ffmpeg;
pub mod image;
pub mod resample;
pub mod turbojpeg;
pub mod video;

use std::path::PathBuf;

/// Why bytes could not be decoded; [`MediaError::Decode`] adds the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

impl From<String> for DecodeError {
    fn from(s: String) -> Self {
        DecodeError(s)
    }
}

impl From<&str> for DecodeError {
    fn from(s: &str) -> Self {
        DecodeError(s.to_owned())
    }
}

impl From<crate::limits::LimitExceeded> for DecodeError {
    fn from(e: crate::limits::LimitExceeded) -> Self {
        DecodeError(e.to_string())
    }
}

impl MediaError {
    /// A decoding error of `path`.
    pub fn decode(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        MediaError::Decode(path.to_owned(), e.to_string())
    }
}

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
