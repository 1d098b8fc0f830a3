//! Image → pixel tensor (official `process_img`, emu-model.md §1.2): decode to RGB, Pillow
//! bicubic resize to image_size², /255, CLIP mean/std in f64, f32 CHW. [`load_pixels`] is the
//! single boundary between image files and tensors; the exact Pillow-parity decoder in
//! `tasks::media` can replace it.
use std::path::Path;

use candle_core::{Device, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum PixelError {
    #[error("{0}: {1}")]
    Decode(String, String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// An RGB image, row-major HWC bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// Decodes a PNG/JPEG file to RGB (alpha dropped, grey replicated).
pub fn decode_rgb(path: &Path) -> Result<Rgb, PixelError> {
    let img = image::open(path).map_err(|e| PixelError::Decode(path.display().to_string(), e.to_string()))?;
    let rgb = img.to_rgb8();
    Ok(Rgb { width: rgb.width() as usize, height: rgb.height() as usize, data: rgb.into_raw() })
}

/// Pillow's bicubic kernel, a = −0.5.
fn bicubic(x: f64) -> f64 {
    let a = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * a
    } else {
        0.0
    }
}

/// Pillow `precompute_coeffs` with 22-bit fixed point: per output index (lo, weights).
fn coeffs(inp: usize, out: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = inp as f64 / out as f64;
    let fs = scale.max(1.0);
    let support = 2.0 * fs;
    (0..out)
        .map(|o| {
            let center = (o as f64 + 0.5) * scale;
            let lo = ((center - support + 0.5) as i64).max(0) as usize;
            let hi = ((center + support + 0.5) as i64).min(inp as i64) as usize;
            let mut w: Vec<f64> = (lo..hi).map(|t| bicubic((t as f64 - center + 0.5) / fs)).collect();
            let sum: f64 = w.iter().sum();
            if sum != 0.0 {
                w.iter_mut().for_each(|x| *x /= sum);
            }
            let fixed = w
                .iter()
                .map(|&x| if x >= 0.0 { (x * 4194304.0 + 0.5) as i32 } else { (x * 4194304.0 - 0.5) as i32 })
                .collect();
            (lo, fixed)
        })
        .collect()
}

fn clip8(acc: i32) -> u8 {
    (acc >> 22).clamp(0, 255) as u8
}

/// Pillow 7–12 bicubic resize (emu-model.md Appendix A): horizontal pass first over the rows the
/// vertical pass needs, rounded to uint8, then the vertical pass.
pub fn resize_bicubic(img: &Rgb, out_w: usize, out_h: usize) -> Rgb {
    if img.width == out_w && img.height == out_h {
        return img.clone();
    }
    let vcoef = (img.height != out_h).then(|| coeffs(img.height, out_h));
    let (row0, row1) = match &vcoef {
        Some(v) => (v[0].0, v.last().map(|(lo, w)| lo + w.len()).unwrap_or(img.height)),
        None => (0, img.height),
    };
    // Horizontal pass over rows row0..row1.
    let (mid, mid_w) = if img.width != out_w {
        let hc = coeffs(img.width, out_w);
        let mut mid = vec![0u8; (row1 - row0) * out_w * 3];
        for y in row0..row1 {
            let src = &img.data[y * img.width * 3..(y + 1) * img.width * 3];
            for (x, (lo, w)) in hc.iter().enumerate() {
                for c in 0..3 {
                    let mut acc: i32 = 1 << 21;
                    for (t, wt) in w.iter().enumerate() {
                        acc += src[(lo + t) * 3 + c] as i32 * wt;
                    }
                    mid[((y - row0) * out_w + x) * 3 + c] = clip8(acc);
                }
            }
        }
        (mid, out_w)
    } else {
        (img.data[row0 * img.width * 3..row1 * img.width * 3].to_vec(), img.width)
    };
    let Some(vc) = vcoef else {
        return Rgb { width: mid_w, height: img.height, data: mid };
    };
    let mut out = vec![0u8; out_h * mid_w * 3];
    for (y, (lo, w)) in vc.iter().enumerate() {
        for x in 0..mid_w {
            for c in 0..3 {
                let mut acc: i32 = 1 << 21;
                for (t, wt) in w.iter().enumerate() {
                    acc += mid[((lo - row0 + t) * mid_w + x) * 3 + c] as i32 * wt;
                }
                out[(y * mid_w + x) * 3 + c] = clip8(acc);
            }
        }
    }
    Rgb { width: mid_w, height: out_h, data: out }
}

/// /255, (x − mean)/std per channel in f64, cast to f32, HWC → (1, 3, H, W).
pub fn normalize(img: &Rgb, mean: [f64; 3], std: [f64; 3], device: &Device) -> candle_core::Result<Tensor> {
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
    let rgb = decode_rgb(path)?;
    Ok(normalize(&resize_bicubic(&rgb, size, size), mean, std, device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic(w: usize, h: usize) -> Rgb {
        let mut data = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    data.push(((37 * x + 91 * y + 53 * c + 11 * ((x * y) % 17)) % 256) as u8);
                }
            }
        }
        Rgb { width: w, height: h, data }
    }

    /// emu-model.md §7.2.
    #[test]
    fn resize_known_answers() {
        let down = resize_bicubic(&synthetic(10, 7), 4, 3);
        assert_eq!(
            down.data,
            vec![
                106, 133, 146, 134, 138, 144, 129, 127, 124, 88, 98, 128, 122, 144, 114, 128, 126, 112, 137, 113, 126,
                130, 98, 148, 120, 151, 143, 137, 119, 121, 114, 99, 128, 147, 102, 155
            ]
        );
        let big = resize_bicubic(&synthetic(300, 200), 224, 224);
        assert_eq!(big.data.iter().map(|&v| v as u64).sum::<u64>(), 19187526);
        assert_eq!(&big.data[..12], &[5, 58, 110, 52, 105, 162, 102, 160, 224, 159, 226, 197]);
        let up = resize_bicubic(&synthetic(5, 4), 7, 6);
        assert_eq!(&up.data[..9], &[0, 45, 98, 12, 65, 117, 41, 94, 151]);
    }

    /// §7.3: v = 0, 128, 255.
    #[test]
    fn normalisation_values() {
        let img = Rgb { width: 3, height: 1, data: vec![0, 0, 0, 128, 128, 128, 255, 255, 255] };
        let t = normalize(&img, crate::emu::config::clip_mean(), crate::emu::config::clip_std(), &Device::Cpu).unwrap();
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!((v[0] - (-1.79226253374815f64) as f32).abs() < 1e-7);
        assert!((v[1] - 0.07633607351494368_f64 as f32).abs() < 1e-7);
        assert!((v[8] - 2.1458969890575763_f64 as f32).abs() < 1e-7);
    }
}
