//! Still images as Emu's `process_img` prepares them (emu-model.md §1.2): decode to RGB like
//! Pillow's `Image.open(..).convert("RGB")`, Pillow's bicubic `resize((224, 224))` (Appendix A),
//! `/255`, CLIP mean/std in float64, cast to float32, CHW.
use crate::media::DecodeError;
use std::cell::RefCell;
use std::io::Read;
use std::path::Path;

use super::resample::Resampler;
use super::turbojpeg::Decoder;
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

/// Buffers one thread reuses from image to image (large fresh allocations cost page faults):
/// file bytes, decoded RGB, the resampler's scratch and the JPEG decompressor.
#[derive(Default)]
struct Scratch {
    file: Vec<u8>,
    rgb: Vec<u8>,
    resampler: Resampler,
    jpeg: Option<Decoder>,
}

impl Scratch {
    /// Buffers above this size are freed after use, so one huge image does not pin its memory
    /// in every worker thread.
    const KEEP_BYTES: usize = 16 << 20;

    fn trim(&mut self) {
        if self.file.capacity() > Self::KEEP_BYTES {
            self.file = Vec::new();
        }
        if self.rgb.capacity() > Self::KEEP_BYTES {
            self.rgb = Vec::new();
        }
        self.resampler.trim(Self::KEEP_BYTES);
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Reads a whole file into `buf` (replacing its contents). Follows symlinks.
fn read_into(path: &Path, buf: &mut Vec<u8>) -> Result<(), MediaError> {
    let err = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => MediaError::NotFound(path.to_owned()),
        _ => MediaError::Io(path.to_owned(), e.to_string()),
    };
    buf.clear();
    std::fs::File::open(path).and_then(|mut f| f.read_to_end(buf)).map_err(err)?;
    Ok(())
}

/// Reads and decodes an image file (JPEG or PNG) to RGB. Follows symlinks.
pub fn decode_file(path: &Path) -> Result<RgbImage, MediaError> {
    let mut bytes = Vec::new();
    read_into(path, &mut bytes)?;
    decode_bytes(&bytes).map_err(|m| MediaError::decode(path, m))
}

/// Reads only the header of a JPEG or PNG file and checks its size against
/// [`crate::limits::IMAGE_PIXELS`]: a cheap check to run on every input before loading a model.
pub fn check_file_header(path: &Path) -> Result<(usize, usize), MediaError> {
    let mut bytes = Vec::new();
    read_into(path, &mut bytes)?;
    let err = |m: DecodeError| MediaError::decode(path, m);
    let (w, h) = if bytes.starts_with(&[0xFF, 0xD8]) {
        Decoder::new().and_then(|mut d| d.size(&bytes)).map_err(err)?
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let reader = png::Decoder::new(std::io::Cursor::new(&bytes))
            .read_info()
            .map_err(|e| err(e.to_string().into()))?;
        (reader.info().width as usize, reader.info().height as usize)
    } else {
        return Err(err("not a JPEG or PNG file".into()));
    };
    crate::limits::check_image_size(w as u64, h as u64).map_err(|e| err(e.into()))?;
    Ok((w, h))
}

/// Decodes JPEG or PNG bytes to RGB, as Pillow's `open(..).convert("RGB")`.
pub fn decode_bytes(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    let mut data = Vec::new();
    let (w, h) = SCRATCH.with_borrow_mut(|s| decode_into(bytes, &mut s.jpeg, &mut data))?;
    Ok(RgbImage::new(w, h, data))
}

/// Decodes JPEG or PNG bytes into `rgb` (replacing its contents); returns `(width, height)`.
fn decode_into(
    bytes: &[u8],
    jpeg: &mut Option<Decoder>,
    rgb: &mut Vec<u8>,
) -> Result<(usize, usize), DecodeError> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let decoder = match jpeg {
            Some(d) => d,
            None => jpeg.insert(Decoder::new()?),
        };
        let r = decode_jpeg(decoder, bytes, rgb);
        if r.is_err() {
            *jpeg = None; // a fresh decompressor after a failure
        }
        r
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let img = decode_png(bytes)?;
        *rgb = img.data;
        Ok((img.width, img.height))
    } else if bytes.is_empty() {
        Err("empty file".into())
    } else {
        Err("not a JPEG or PNG file".into())
    }
}

/// JPEG through libjpeg-turbo (Pillow's decoder). Grayscale is replicated to RGB by libjpeg, as
/// Pillow's L→RGB; CMYK goes through [`cmyk_to_rgb`].
fn decode_jpeg(
    decoder: &mut Decoder,
    bytes: &[u8],
    rgb: &mut Vec<u8>,
) -> Result<(usize, usize), DecodeError> {
    let d = decoder.decode_into(bytes, rgb)?;
    if d.channels == 4 {
        let cmyk = std::mem::take(rgb);
        rgb.reserve(d.width * d.height * 3);
        for px in cmyk.chunks_exact(4) {
            // Adobe CMYK JPEGs store inverted values; Pillow reads them with rawmode "CMYK;I".
            let inv = [255 - px[0], 255 - px[1], 255 - px[2], 255 - px[3]];
            rgb.extend_from_slice(&cmyk_to_rgb(inv));
        }
    }
    Ok((d.width, d.height))
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
fn decode_png(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    // The pixel limit below governs, not the png crate's default 64 MiB limit.
    let mut dec = png::Decoder::new_with_limits(
        std::io::Cursor::new(bytes),
        png::Limits { bytes: usize::MAX },
    );
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(|e| DecodeError(e.to_string()))?;
    crate::limits::check_image_size(reader.info().width as u64, reader.info().height as u64)?;
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(|e| DecodeError(e.to_string()))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let src = &buf[..info.buffer_size()];
    let data = match info.color_type {
        png::ColorType::Rgb => src.to_vec(),
        png::ColorType::Rgba => src.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
        png::ColorType::Grayscale => src.iter().flat_map(|&g| [g, g, g]).collect(),
        png::ColorType::GrayscaleAlpha => {
            src.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0]]).collect()
        }
        png::ColorType::Indexed => return Err("indexed PNG was not expanded".into()),
    };
    if data.len() != w * h * 3 {
        return Err("PNG pixel buffer has an unexpected size".into());
    }
    Ok(RgbImage::new(w, h, data))
}

/// Pillow 7–13 `Image.resize((out_w, out_h))` with the default BICUBIC filter, 8-bit RGB
/// ([`resample`](super::resample)). Same size: unchanged copy.
pub fn resize_bicubic(img: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
    let mut data = vec![0u8; out_w * out_h * 3];
    let stride = out_w * 3;
    SCRATCH.with_borrow_mut(|s| {
        s.resampler.resize_rows(&img.data, img.width, img.height, out_w, out_h, |y, row| {
            data[y * stride..(y + 1) * stride].copy_from_slice(row)
        })
    });
    RgbImage::new(out_w, out_h, data)
}

/// `process_img`'s parameters: output side and per-channel mean/std (RGB).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalisation {
    pub size: usize,
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

impl Normalisation {
    /// Emu: 224×224, OpenAI CLIP mean/std.
    pub const EMU: Self = Normalisation { size: EMU_SIZE, mean: CLIP_MEAN, std: CLIP_STD };

    /// Per-channel table `v → float32((v/255 - mean)/std)` computed in float64.
    pub fn table(&self) -> [[f32; 256]; 3] {
        let mut t = [[0f32; 256]; 3];
        for (c, row) in t.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                *x = ((v as f64 / 255.0 - self.mean[c]) / self.std[c]) as f32;
            }
        }
        t
    }
}

/// [`Normalisation::EMU`]'s table (emu-model.md §7.3).
pub fn normalisation_table() -> [[f32; 256]; 3] {
    Normalisation::EMU.table()
}

/// Writes row `y` of an 8-bit RGB image, normalised, into the planes of a CHW buffer.
fn normalise_row(t: &[[f32; 256]; 3], rgb: &[u8], y: usize, width: usize, chw: &mut [f32]) {
    let plane = chw.len() / 3;
    let (r, rest) = chw.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    let span = y * width..(y + 1) * width;
    for (((p, r), g), b) in
        rgb.chunks_exact(3).zip(&mut r[span.clone()]).zip(&mut g[span.clone()]).zip(&mut b[span])
    {
        *r = t[0][p[0] as usize];
        *g = t[1][p[1] as usize];
        *b = t[2][p[2] as usize];
    }
}

/// Resize to 224×224 and normalise an already decoded image (Emu's `process_img`).
pub fn preprocess(img: &RgbImage) -> Pixels {
    preprocess_with(img, &Normalisation::EMU)
}

/// Resize to `n.size`² and normalise with `n`'s mean/std.
pub fn preprocess_with(img: &RgbImage, n: &Normalisation) -> Pixels {
    SCRATCH
        .with_borrow_mut(|s| preprocess_rgb(&img.data, img.width, img.height, n, &mut s.resampler))
}

/// Each resized row is normalised as it comes out of the resampler.
fn preprocess_rgb(
    rgb: &[u8],
    width: usize,
    height: usize,
    n: &Normalisation,
    resampler: &mut Resampler,
) -> Pixels {
    static EMU_TABLE: std::sync::OnceLock<[[f32; 256]; 3]> = std::sync::OnceLock::new();
    let other;
    let t = if *n == Normalisation::EMU {
        EMU_TABLE.get_or_init(normalisation_table)
    } else {
        other = n.table();
        &other
    };
    let mut data = vec![0f32; 3 * n.size * n.size];
    resampler.resize_rows(rgb, width, height, n.size, n.size, |y, row| {
        normalise_row(t, row, y, n.size, &mut data)
    });
    Pixels { data, shape: [3, n.size, n.size] }
}

/// Decode + resize + normalise one image file: Emu's `process_img`.
pub fn preprocess_file(path: &Path) -> Result<Pixels, MediaError> {
    preprocess_file_with(path, &Normalisation::EMU)
}

/// [`preprocess_file`] with another size or mean/std (a model config's own values).
pub fn preprocess_file_with(path: &Path, n: &Normalisation) -> Result<Pixels, MediaError> {
    SCRATCH.with_borrow_mut(|s| {
        let px = read_into(path, &mut s.file).and_then(|()| {
            let (w, h) = decode_into(&s.file, &mut s.jpeg, &mut s.rgb)
                .map_err(|m| MediaError::decode(path, m))?;
            Ok(preprocess_rgb(&s.rgb, w, h, n, &mut s.resampler))
        });
        s.trim();
        px
    })
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
        let shape =
            t["shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
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
            [
                106, 133, 146, 134, 138, 144, 129, 127, 124, 88, 98, 128, 122, 144, 114, 128, 126,
                112, 137, 113, 126, 130, 98, 148, 120, 151, 143, 137, 119, 121, 114, 99, 128, 147,
                102, 155
            ]
        );
        let r = resize_bicubic(&synthetic(5, 4), 7, 6);
        let want: Vec<u8> = vec![
            0, 45, 98, 12, 65, 117, 41, 94, 151, 67, 120, 189, 91, 158, 215, 129, 192, 244, 159,
            211, 255, 36, 87, 156, 57, 119, 188, 95, 164, 179, 136, 189, 106, 175, 115, 131, 139,
            107, 175, 78, 139, 207, 106, 161, 178, 136, 168, 222, 165, 197, 188, 175, 228, 44, 227,
            84, 75, 146, 50, 104, 27, 94, 111, 179, 245, 45, 226, 129, 77, 197, 51, 117, 56, 109,
            143, 91, 135, 201, 134, 175, 123, 153, 207, 7, 96, 157, 67, 141, 110, 111, 151, 95,
            126, 95, 148, 81, 147, 104, 134, 141, 118, 120, 102, 162, 72, 2, 54, 125, 40, 104, 182,
            101, 176, 154, 164, 217, 0, 236, 61, 39, 151, 33, 111, 21, 90, 161,
        ];
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
    fn scratch_keeps_ordinary_buffers_and_frees_huge_ones() {
        let mut s = Scratch {
            file: Vec::with_capacity(1 << 20),
            rgb: Vec::with_capacity(Scratch::KEEP_BYTES + 1),
            ..Default::default()
        };
        s.trim();
        assert!(s.file.capacity() >= 1 << 20);
        assert_eq!(s.rgb.capacity(), 0);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_bytes(b"<html>").is_err());
        assert!(decode_bytes(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 16]).is_err());
        assert!(matches!(
            decode_file(Path::new("/nonexistent/x.jpg")),
            Err(MediaError::NotFound(_))
        ));
    }
}
