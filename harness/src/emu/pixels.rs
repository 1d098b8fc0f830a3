//! Image → pixel tensor (official `process_img`, emu-model.md §1.2): `tasks::media`'s pipeline
//! (libjpeg-turbo decode, Pillow-exact bicubic resize to image_size², /255, mean/std of the config
//! in f64, f32 CHW). [`load_pixels`] is the single boundary between image files and tensors.
use std::path::Path;

use candle_core::{Device, Tensor};
use tasks::media::image::{preprocess_file_with, Normalisation};

#[derive(Debug, thiserror::Error)]
pub enum PixelError {
    #[error("{0}: {1}")]
    Decode(String, String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// The image→tensor boundary: file → (1, 3, size, size) f32.
pub fn load_pixels(path: &Path, size: usize, mean: [f64; 3], std: [f64; 3], device: &Device) -> Result<Tensor, PixelError> {
    let px = preprocess_file_with(path, &Normalisation { size, mean, std })
        .map_err(|e| PixelError::Decode(path.display().to_string(), e.reason()))?;
    Ok(Tensor::from_vec(px.data, (1, 3, size, size), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// §7.3: v = 0, 128, 255 with the config's mean/std.
    #[test]
    fn normalisation_values() {
        let n = Normalisation { size: 224, mean: crate::emu::config::clip_mean(), std: crate::emu::config::clip_std() };
        let t = n.table();
        assert!((t[0][0] - (-1.79226253374815f64) as f32).abs() < 1e-7);
        assert!((t[0][128] - 0.07633607351494368_f64 as f32).abs() < 1e-7);
        assert!((t[2][255] - 2.1458969890575763_f64 as f32).abs() < 1e-7);
    }
}
