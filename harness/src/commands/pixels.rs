//! Pixel inputs of the model commands: image files through the official preprocessing, or pixel
//! tensors read from safetensors files. Tensors are f32 on the CPU, shape (n, 3, size, size).
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};

use crate::emu::{self, Emu};

/// Loads images for one prompt as a (n, 3, size, size) f32 tensor: a `.safetensors` file holds a
/// pixel tensor (its only tensor, or `pixel_values`), anything else is decoded and preprocessed
/// (Pillow bicubic resize, the config's mean/std).
pub fn load_images(emu: &Emu, paths: &[PathBuf]) -> Result<Option<Tensor>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let mut all = Vec::new();
    for p in paths {
        all.push(load_image(emu, p).with_context(|| format!("{}: image", p.display()))?);
    }
    Ok(Some(Tensor::cat(&all, 0)?))
}

fn load_image(emu: &Emu, path: &Path) -> Result<Tensor> {
    let v = &emu.cfg.vision;
    let t = if path.extension().is_some_and(|e| e == "safetensors") {
        safetensors_pixels(path, None)?
    } else {
        emu::pixels::load_pixels(path, v.image_size, v.image_mean, v.image_std, &Device::Cpu)?
    };
    checked_shape(t, v.image_size)
}

/// `FILE[:KEY]` → the pixel tensor `KEY` (default `pixel_values`) of a safetensors file.
pub fn read_pixels(emu: &Emu, spec: &str) -> Result<Tensor> {
    let (file, key) = match spec.rsplit_once(':') {
        Some((f, k)) if f.ends_with(".safetensors") => (f, k),
        _ => (spec, "pixel_values"),
    };
    let t = safetensors_pixels(Path::new(file), Some(key)).with_context(|| file.to_owned())?;
    checked_shape(t, emu.cfg.vision.image_size).with_context(|| format!("{file}: {key}"))
}

/// The tensor `key` of a safetensors file; without a key `pixel_values` or the file's only tensor.
fn safetensors_pixels(file: &Path, key: Option<&str>) -> Result<Tensor> {
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
fn checked_shape(t: Tensor, size: usize) -> Result<Tensor> {
    let t = if t.rank() == 3 { t.unsqueeze(0)? } else { t };
    let dims = t.dims().to_vec();
    if dims.len() != 4 || dims[1] != 3 || dims[2] != size || dims[3] != size {
        bail!("pixel tensor has shape {dims:?}, expected [n, 3, {size}, {size}]");
    }
    Ok(t)
}
