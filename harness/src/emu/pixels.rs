//! Image → pixel tensor (official `process_img`, emu-model.md §1.2): decode to RGB with
//! libjpeg-turbo and Pillow's bicubic resize to image_size² (both from `tasks::media`, pixel-exact
//! with Pillow), /255, mean/std of the config in f64, f32 CHW. [`load_pixels`] is the single
//! boundary between image files and tensors.
use std::path::Path;

use candle_core::{Device, Tensor};
use tasks::media::image::{decode_file, resize_bicubic, RgbImage};

#[derive(Debug, thiserror::Error)]
pub enum PixelError {
    #[error("{0}: {1}")]
    Decode(String, String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// /255, (x − mean)/std per channel in f64, cast to f32, HWC → (1, 3, H, W).
pub fn normalize(img: &RgbImage, mean: [f64; 3], std: [f64; 3], device: &Device) -> candle_core::Result<Tensor> {
    let (w, h) = (img.width, img.height);
    let mut chw = vec![0f32; 3 * h * w];
    for (i, px) in img.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            chw[c * h * w + i] = ((px[c] as f64 / 255.0 - mean[c]) / std[c]) as f32;
        }
    }
    Tensor::from_vec(chw, (1, 3, h, w), device)
}

/// The image→tensor boundary: file → (1, 3, size, size) f32.
pub fn load_pixels(path: &Path, size: usize, mean: [f64; 3], std: [f64; 3], device: &Device) -> Result<Tensor, PixelError> {
    let rgb = decode_file(path).map_err(|e| PixelError::Decode(path.display().to_string(), e.reason()))?;
    Ok(normalize(&resize_bicubic(&rgb, size, size), mean, std, device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// §7.3: v = 0, 128, 255.
    #[test]
    fn normalisation_values() {
        let img = RgbImage::new(3, 1, vec![0, 0, 0, 128, 128, 128, 255, 255, 255]);
        let t = normalize(&img, crate::emu::config::clip_mean(), crate::emu::config::clip_std(), &Device::Cpu).unwrap();
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!((v[0] - (-1.79226253374815f64) as f32).abs() < 1e-7);
        assert!((v[1] - 0.07633607351494368_f64 as f32).abs() < 1e-7);
        assert!((v[8] - 2.1458969890575763_f64 as f32).abs() < 1e-7);
    }
}
