//! Still images as Emu's `process_img` prepares them (emu-model.md §1.2): decode to RGB like
//! Pillow's `Image.open(..).convert("RGB")`, Pillow's bicubic `resize((224, 224))` (Appendix A),
//! `/255`, CLIP mean/std in float64, cast to float32, CHW.
use std::path::Path;

use super::{MediaError, Pixels};

/// Emu's input resolution.
pub const EMU_SIZE: usize = 224;
/// OpenAI CLIP mean (RGB).
pub const CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
/// OpenAI CLIP std (RGB).
pub const CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// An 8-bit RGB image, HWC row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl RgbImage {
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Self {
        debug_assert_eq!(data.len(), width * height * 3);
        Self { width, height, data }
    }
}

/// Reads and decodes an image file (JPEG or PNG) to RGB. Follows symlinks.
pub fn decode_file(path: &Path) -> Result<RgbImage, MediaError> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => MediaError::NotFound(path.to_owned()),
        _ => MediaError::Io(path.to_owned(), e.to_string()),
    })?;
    decode_bytes(&bytes).map_err(|m| MediaError::Decode(path.to_owned(), m))
}

/// Decodes JPEG or PNG bytes to RGB, as Pillow's `open(..).convert("RGB")`.
pub fn decode_bytes(bytes: &[u8]) -> Result<RgbImage, String> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        decode_jpeg(bytes)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        decode_png(bytes)
    } else if bytes.is_empty() {
        Err("empty file".to_owned())
    } else {
        Err("not a JPEG or PNG file".to_owned())
    }
}

/// JPEG through libjpeg-turbo (Pillow's decoder). Grayscale is replicated to RGB by libjpeg, as
/// Pillow's L→RGB; CMYK goes through [`cmyk_to_rgb`].
fn decode_jpeg(bytes: &[u8]) -> Result<RgbImage, String> {
    let d = super::turbojpeg::decode(bytes)?;
    if d.channels == 3 {
        return Ok(RgbImage::new(d.width, d.height, d.data));
    }
    let mut rgb = Vec::with_capacity(d.width * d.height * 3);
    for px in d.data.chunks_exact(4) {
        // Adobe CMYK JPEGs store inverted values; Pillow reads them with rawmode "CMYK;I".
        let inv = [255 - px[0], 255 - px[1], 255 - px[2], 255 - px[3]];
        rgb.extend_from_slice(&cmyk_to_rgb(inv));
    }
    Ok(RgbImage::new(d.width, d.height, rgb))
}

/// Pillow's `cmyk2rgb` (Convert.c): `nk = 255 - k; out = clip(nk - MULDIV255(c, nk))`.
pub fn cmyk_to_rgb(p: [u8; 4]) -> [u8; 3] {
    let nk = 255 - p[3] as i32;
    let muldiv255 = |a: i32, b: i32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    let f = |c: u8| (nk - muldiv255(c as i32, nk)).clamp(0, 255) as u8;
    [f(p[0]), f(p[1]), f(p[2])]
}

/// PNG through the `png` crate (lossless, so any correct decoder matches Pillow). 16-bit samples
/// keep their high byte; alpha is dropped without compositing (Pillow RGBA→RGB).
fn decode_png(bytes: &[u8]) -> Result<RgbImage, String> {
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    let (w, h) = (info.width as usize, info.height as usize);
    let src = &buf[..info.buffer_size()];
    let data = match info.color_type {
        png::ColorType::Rgb => src.to_vec(),
        png::ColorType::Rgba => src.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
        png::ColorType::Grayscale => src.iter().flat_map(|&g| [g, g, g]).collect(),
        png::ColorType::GrayscaleAlpha => src.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0]]).collect(),
        png::ColorType::Indexed => return Err("indexed PNG was not expanded".to_owned()),
    };
    if data.len() != w * h * 3 {
        return Err("PNG pixel buffer has an unexpected size".to_owned());
    }
    Ok(RgbImage::new(w, h, data))
}

/// Pillow's `bicubic_filter` (Resample.c), a = -0.5; the expression order is kept for bit parity.
fn bicubic_filter(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Fixed-point coefficients of one axis: Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`.
struct Coeffs {
    ksize: usize,
    /// `(first input index, number of taps)` per output index.
    bounds: Vec<(usize, usize)>,
    /// `ksize` int32 weights per output index.
    weights: Vec<i32>,
}

fn precompute_coeffs(in_size: usize, out_size: usize) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut w = vec![0f64; ksize];
    for o in 0..out_size {
        let center = (o as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let mut ww = 0.0;
        for (t, wt) in w.iter_mut().enumerate().take(n) {
            *wt = bicubic_filter((t as f64 + xmin as f64 - center + 0.5) * ss);
            ww += *wt;
        }
        for t in 0..n {
            let v = if ww != 0.0 { w[t] / ww } else { w[t] };
            let f = v * (1u32 << PRECISION_BITS) as f64;
            weights[o * ksize + t] = if v < 0.0 { (-0.5 + f) as i32 } else { (0.5 + f) as i32 };
        }
        bounds.push((xmin, n));
    }
    Coeffs { ksize, bounds, weights }
}

/// Pillow's `clip8`: `acc >> 22` clamped to 0..=255.
#[inline]
fn clip8(acc: i32) -> u8 {
    if acc >= (1 << PRECISION_BITS << 8) {
        255
    } else if acc <= 0 {
        0
    } else {
        (acc >> PRECISION_BITS) as u8
    }
}

/// Pillow 7–12 `Image.resize(size)` with the default BICUBIC filter, 8-bit RGB: horizontal pass
/// first (only over the rows the vertical pass reads), then vertical. Same size: unchanged copy.
pub fn resize_bicubic(img: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
    let (in_w, in_h) = (img.width, img.height);
    let need_h = out_w != in_w;
    let need_v = out_h != in_h;
    let vert = need_v.then(|| precompute_coeffs(in_h, out_h));
    let mut cur: std::borrow::Cow<'_, [u8]> = std::borrow::Cow::Borrowed(&img.data);
    let mut cur_h = in_h;
    let mut row0 = 0;
    if need_h {
        // Rows ybox_first..ybox_last of the vertical coefficients (all rows if no vertical pass).
        let (first, last) = match &vert {
            Some(v) => (v.bounds[0].0, v.bounds[out_h - 1].0 + v.bounds[out_h - 1].1),
            None => (0, in_h),
        };
        let hc = precompute_coeffs(in_w, out_w);
        let rows = last - first;
        let mut out = vec![0u8; out_w * rows * 3];
        for (r, dst) in out.chunks_exact_mut(out_w * 3).enumerate() {
            let src = &img.data[(first + r) * in_w * 3..(first + r + 1) * in_w * 3];
            for (o, px) in dst.chunks_exact_mut(3).enumerate() {
                let (xmin, n) = hc.bounds[o];
                let k = &hc.weights[o * hc.ksize..o * hc.ksize + n];
                let s = &src[xmin * 3..(xmin + n) * 3];
                let half = 1i32 << (PRECISION_BITS - 1);
                let (mut a0, mut a1, mut a2) = (half, half, half);
                for (p, &w) in s.chunks_exact(3).zip(k) {
                    a0 += p[0] as i32 * w;
                    a1 += p[1] as i32 * w;
                    a2 += p[2] as i32 * w;
                }
                px[0] = clip8(a0);
                px[1] = clip8(a1);
                px[2] = clip8(a2);
            }
        }
        cur = std::borrow::Cow::Owned(out);
        cur_h = rows;
        row0 = first;
    }
    let cur_w = if need_h { out_w } else { in_w };
    let Some(vc) = vert else {
        return RgbImage::new(cur_w, cur_h, cur.into_owned());
    };
    let stride = cur_w * 3;
    let mut out = vec![0u8; out_h * stride];
    let half = 1i32 << (PRECISION_BITS - 1);
    let mut acc = vec![0i32; stride];
    for (o, dst) in out.chunks_exact_mut(stride).enumerate() {
        let (ymin, n) = vc.bounds[o];
        let k = &vc.weights[o * vc.ksize..o * vc.ksize + n];
        acc.iter_mut().for_each(|a| *a = half);
        for (t, &w) in k.iter().enumerate() {
            let y = ymin + t - row0;
            let src = &cur[y * stride..(y + 1) * stride];
            for (a, &p) in acc.iter_mut().zip(src) {
                *a += p as i32 * w;
            }
        }
        for (d, &a) in dst.iter_mut().zip(&acc) {
            *d = clip8(a);
        }
    }
    RgbImage::new(cur_w, out_h, out)
}

/// Per-channel table `v → float32((v/255 - mean)/std)` computed in float64 (official `process_img`).
pub fn normalisation_table() -> [[f32; 256]; 3] {
    let mut t = [[0f32; 256]; 3];
    for (c, row) in t.iter_mut().enumerate() {
        for (v, x) in row.iter_mut().enumerate() {
            *x = ((v as f64 / 255.0 - CLIP_MEAN[c]) / CLIP_STD[c]) as f32;
        }
    }
    t
}

/// `/255`, CLIP mean/std, HWC→CHW: the official normalisation of an 8-bit RGB image.
pub fn normalise(img: &RgbImage) -> Pixels {
    static TABLE: std::sync::OnceLock<[[f32; 256]; 3]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(normalisation_table);
    let plane = img.width * img.height;
    let mut data = vec![0f32; 3 * plane];
    let (r, rest) = data.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, p) in img.data.chunks_exact(3).enumerate() {
        r[i] = t[0][p[0] as usize];
        g[i] = t[1][p[1] as usize];
        b[i] = t[2][p[2] as usize];
    }
    Pixels { data, shape: [3, img.height, img.width] }
}

/// Resize to 224×224 and normalise an already decoded image.
pub fn preprocess(img: &RgbImage) -> Pixels {
    normalise(&resize_bicubic(img, EMU_SIZE, EMU_SIZE))
}

/// Decode + resize + normalise one image file: Emu's `process_img`.
pub fn preprocess_file(path: &Path) -> Result<Pixels, MediaError> {
    Ok(preprocess(&decode_file(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn shared(rel: &str) -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/")).join(rel)
    }

    /// Reads one tensor's raw bytes from a safetensors file (header JSON + data offsets).
    fn tensor_bytes(file: &Path, name: &str) -> (Vec<usize>, Vec<u8>) {
        let bytes = std::fs::read(file).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let t = &header[name];
        let shape = t["shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
        let off = t["data_offsets"].as_array().unwrap();
        let (a, b) = (off[0].as_u64().unwrap() as usize, off[1].as_u64().unwrap() as usize);
        (shape, bytes[8 + n + a..8 + n + b].to_vec())
    }

    fn vectors() -> PathBuf {
        shared("fixtures/emu-tiny/vectors.safetensors")
    }

    fn f32s(b: &[u8]) -> Vec<f32> {
        b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
    }

    #[test]
    fn cat_decodes_like_pillow() {
        let img = decode_file(&shared("fixtures/emu-tiny/cat.jpg")).unwrap();
        let (shape, want) = tensor_bytes(&vectors(), "image_cat_decoded_u8");
        assert_eq!(shape, [img.height, img.width, 3]);
        let diff = img.data.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(diff, 0, "{diff} decoded bytes differ from Pillow");
    }

    #[test]
    fn photos_resize_and_normalise_like_pillow() {
        for name in ["cat", "tiger"] {
            let img = decode_file(&shared(&format!("fixtures/emu-tiny/{name}.jpg"))).unwrap();
            let resized = resize_bicubic(&img, EMU_SIZE, EMU_SIZE);
            let (_, want) = tensor_bytes(&vectors(), &format!("image_{name}_resized_u8"));
            assert_eq!(resized.data, want, "{name}: resized pixels differ from Pillow");
            let px = preprocess(&img);
            let (shape, want) = tensor_bytes(&vectors(), &format!("pixel_values_{name}"));
            assert_eq!(shape, [1, 3, 224, 224]);
            assert_eq!(px.shape, [3, 224, 224]);
            let want = f32s(&want);
            let max = px.data.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(max <= 1e-6, "{name}: max |diff| {max}");
        }
    }

    #[test]
    fn png_photos_decode_and_resize() {
        for (name, w, h) in [("dog", 1386, 924), ("panda", 615, 300)] {
            let img = decode_file(&shared(&format!("fixtures/photos/{name}.png"))).unwrap();
            assert_eq!((img.width, img.height), (w, h));
            let px = preprocess(&img);
            assert_eq!(px.shape, [3, 224, 224]);
            assert!(px.data.iter().all(|v| v.is_finite() && v.abs() < 2.2));
        }
    }

    fn synthetic(w: usize, h: usize) -> RgbImage {
        let mut d = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    d.push(((37 * x + 91 * y + 53 * c + 11 * ((x * y) % 17)) % 256) as u8);
                }
            }
        }
        RgbImage::new(w, h, d)
    }

    /// emu-model.md §7.2 known answers.
    #[test]
    fn resize_known_answers() {
        let r = resize_bicubic(&synthetic(10, 7), 4, 3);
        assert_eq!(
            r.data,
            [106, 133, 146, 134, 138, 144, 129, 127, 124, 88, 98, 128, 122, 144, 114, 128, 126, 112, 137, 113, 126, 130, 98,
             148, 120, 151, 143, 137, 119, 121, 114, 99, 128, 147, 102, 155]
        );
        let r = resize_bicubic(&synthetic(5, 4), 7, 6);
        let want: Vec<u8> = vec![0,45,98,12,65,117,41,94,151,67,120,189,91,158,215,129,192,244,159,211,255,36,87,156,57,119,188,95,164,179,136,189,106,175,115,131,139,107,175,78,139,207,106,161,178,136,168,222,165,197,188,175,228,44,227,84,75,146,50,104,27,94,111,179,245,45,226,129,77,197,51,117,56,109,143,91,135,201,134,175,123,153,207,7,96,157,67,141,110,111,151,95,126,95,148,81,147,104,134,141,118,120,102,162,72,2,54,125,40,104,182,101,176,154,164,217,0,236,61,39,151,33,111,21,90,161];
        assert_eq!(r.data, want);
        let r = resize_bicubic(&synthetic(300, 200), 224, 224);
        assert_eq!(r.data.iter().map(|&v| v as u64).sum::<u64>(), 19187526);
        assert_eq!(&r.data[..12], &[5, 58, 110, 52, 105, 162, 102, 160, 224, 159, 226, 197]);
        let at = |x: usize, y: usize| &r.data[(y * 224 + x) * 3..(y * 224 + x) * 3 + 3];
        assert_eq!(at(57, 100), &[130, 83, 111]);
        assert_eq!(at(223, 223), &[194, 55, 108]);
        let same = synthetic(12, 9);
        assert_eq!(resize_bicubic(&same, 12, 9), same);
    }

    /// emu-model.md §7.3.
    #[test]
    fn normalisation_known_answers() {
        let t = normalisation_table();
        let want = [
            (0, [-1.79226253374815, -1.7520971281645974, -1.4802197687835659]),
            (128, [0.07633607351494368, 0.16889723903118556, 0.33994864299551714]),
            (255, [1.930336254158794, 2.0748838377332515, 2.1458969890575763]),
        ];
        for (v, w) in want {
            for c in 0..3 {
                assert_eq!(t[c][v], w[c] as f32);
            }
        }
    }

    #[test]
    fn cmyk_conversion_matches_pillow_formula() {
        assert_eq!(cmyk_to_rgb([0, 0, 0, 0]), [255, 255, 255]);
        assert_eq!(cmyk_to_rgb([255, 0, 0, 0]), [0, 255, 255]);
        assert_eq!(cmyk_to_rgb([0, 0, 0, 255]), [0, 0, 0]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_bytes(b"<html>").is_err());
        assert!(decode_bytes(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 16]).is_err());
        assert!(matches!(decode_file(Path::new("/nonexistent/x.jpg")), Err(MediaError::NotFound(_))));
    }
}
