//! Media → pixel tensors, the one module for it (official `process_img`, emu-model.md §1.2):
//! `tasks::media`'s pipeline (libjpeg-turbo decode, Pillow-exact bicubic resize to image_size²,
//! /255, mean/std of the config in f64, f32 CHW) for image files and sampled video frames, and
//! pixel tensors stored in safetensors files. [`load_pixels`] is the boundary between image files
//! and tensors; [`media_pixels`] the one for an image or a video's sampled frames as buffers.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use tasks::media::image::{preprocess_file_with, preprocess_with, Normalisation};
use tasks::media::video::read_frames;

use models::emu::Emu;

#[derive(Debug, thiserror::Error)]
pub enum PixelError {
    #[error("{0}: {1}")]
    Decode(String, String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// The image→tensor boundary: file → (1, 3, size, size) f32.
pub fn load_pixels(
    path: &Path,
    size: usize,
    mean: [f64; 3],
    std: [f64; 3],
    device: &Device,
) -> Result<Tensor, PixelError> {
    let px = preprocess_file_with(path, &Normalisation { size, mean, std })
        .map_err(|e| PixelError::Decode(path.display().to_string(), e.reason()))?;
    Ok(Tensor::from_vec(px.data, (1, 3, size, size), device)?)
}

/// The config's preprocessing parameters.
pub fn normalisation(emu: &Emu) -> Normalisation {
    let v = &emu.cfg.vision;
    Normalisation { size: v.image_size, mean: v.image_mean, std: v.image_std }
}

/// One image (`frames: None`) or the `k` frames Emu's sampler picks from a video, each as a CHW
/// f32 buffer; the error is one line naming the file.
pub fn media_pixels(
    path: &Path,
    frames: Option<usize>,
    norm: &Normalisation,
) -> Result<Vec<Vec<f32>>, String> {
    match frames {
        None => preprocess_file_with(path, norm).map(|p| vec![p.data]).map_err(|e| e.to_string()),
        Some(k) => {
            let sampled = read_frames(path, k).map_err(|e| e.to_string())?;
            Ok(sampled.frames.iter().map(|f| preprocess_with(f, norm).data).collect())
        }
    }
}

/// Loads images for one prompt as a (n, 3, size, size) f32 tensor: a `.safetensors` file holds a
/// pixel tensor (its only tensor, or `pixel_values`), anything else is decoded and preprocessed
/// (Pillow bicubic resize, the config's mean/std).
pub fn load_images(emu: &Emu, paths: &[PathBuf]) -> anyhow::Result<Option<Tensor>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let mut all = Vec::new();
    for p in paths {
        all.push(load_image(emu, p).with_context(|| format!("{}: image", p.display()))?);
    }
    Ok(Some(Tensor::cat(&all, 0)?))
}

fn load_image(emu: &Emu, path: &Path) -> anyhow::Result<Tensor> {
    let v = &emu.cfg.vision;
    let t = if path.extension().is_some_and(|e| e == "safetensors") {
        safetensors_pixels(path, None)?
    } else {
        load_pixels(path, v.image_size, v.image_mean, v.image_std, &Device::Cpu)?
    };
    checked_shape(t, v.image_size)
}

/// `FILE[:KEY]` → the pixel tensor `KEY` (default `pixel_values`) of a safetensors file.
pub fn read_pixels(emu: &Emu, spec: &str) -> anyhow::Result<Tensor> {
    let (file, key) = match spec.rsplit_once(':') {
        Some((f, k)) if f.ends_with(".safetensors") => (f, k),
        _ => (spec, "pixel_values"),
    };
    let t = safetensors_pixels(Path::new(file), Some(key)).with_context(|| file.to_owned())?;
    checked_shape(t, emu.cfg.vision.image_size).with_context(|| format!("{file}: {key}"))
}

/// The tensor `key` of a safetensors file; without a key `pixel_values` or the file's only tensor.
fn safetensors_pixels(file: &Path, key: Option<&str>) -> anyhow::Result<Tensor> {
    let mut tensors = candle_core::safetensors::load(file, &Device::Cpu)?;
    let t = match key {
        Some(k) => tensors.remove(k).with_context(|| format!("{k}: no such tensor"))?,
        None => match tensors.remove("pixel_values") {
            Some(t) => t,
            None if tensors.len() == 1 => tensors.into_values().next().context("empty file")?,
            None => bail!("expected one tensor or `pixel_values`"),
        },
    };
    Ok(t.to_dtype(DType::F32)?)
}

/// (3, s, s) becomes (1, 3, s, s); anything but (n, 3, s, s) is an error.
fn checked_shape(t: Tensor, size: usize) -> anyhow::Result<Tensor> {
    let t = if t.rank() == 3 { t.unsqueeze(0)? } else { t };
    let dims = t.dims().to_vec();
    if dims.len() != 4 || dims[1] != 3 || dims[2] != size || dims[3] != size {
        bail!("pixel tensor has shape {dims:?}, expected [n, 3, {size}, {size}]");
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// §7.3: v = 0, 128, 255 with the config's mean/std.
    #[test]
    fn normalisation_values() {
        let n = Normalisation {
            size: 224,
            mean: models::emu::config::clip_mean(),
            std: models::emu::config::clip_std(),
        };
        let t = n.table();
        assert!((t[0][0] - (-1.79226253374815f64) as f32).abs() < 1e-7);
        assert!((t[0][128] - 0.07633607351494368_f64 as f32).abs() < 1e-7);
        assert!((t[2][255] - 2.1458969890575763_f64 as f32).abs() < 1e-7);
    }
}
