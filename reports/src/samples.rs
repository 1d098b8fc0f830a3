//! Sample views for the HTML page: for each run the first N samples and the N worst-scored ones,
//! with prompts, outputs, answers, scores and small inline thumbnails of their images.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tasks::media::image::{decode_file, resize_bicubic, RgbImage};
use tasks::media::video::read_frames;

use crate::runs::{Prediction, Run};

/// Longest side of a thumbnail, in pixels.
pub const THUMB_SIDE: usize = 96;
/// Thumbnails shown per sample at most (few-shot prompts carry many images).
pub const THUMBS_PER_SAMPLE: usize = 9;

/// One stage of a sample as shown: its prompt and the model's output.
#[derive(Debug, Clone, PartialEq)]
pub struct StageView {
    pub stage: String,
    pub kind: String,
    pub prompt: String,
    pub output: String,
}

/// A thumbnail: a `data:image/png;base64,…` URI, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Thumb {
    DataUri { uri: String, label: String },
    Missing { label: String, reason: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SampleView {
    pub id: String,
    pub stages: Vec<StageView>,
    pub thumbs: Vec<Thumb>,
    /// Images not shown (beyond [`THUMBS_PER_SAMPLE`]).
    pub more_images: usize,
    pub answer: String,
    pub score: Option<f64>,
    pub error: Option<String>,
}

/// The sample views of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSamples {
    pub run: String,
    pub task: String,
    pub first: Vec<SampleView>,
    pub worst: Vec<SampleView>,
    /// False for corpus-level metrics: "worst" then lists failed samples only.
    pub has_scores: bool,
}

/// Picks the first `n` and the `n` worst samples of a run (failed ones count as worst) and renders them.
pub fn select(run: &Run, n: usize, thumbs: &mut Thumbnailer) -> RunSamples {
    let has_scores = run.predictions.iter().any(|p| p.score.is_some());
    let mut ranked: Vec<&Prediction> =
        run.predictions.iter().filter(|p| p.error.is_some() || p.score.is_some()).collect();
    let badness = |p: &Prediction| {
        if p.error.is_some() {
            f64::NEG_INFINITY
        } else {
            p.score.unwrap_or(f64::INFINITY)
        }
    };
    ranked.sort_by(|a, b| badness(a).total_cmp(&badness(b)).then_with(|| a.id.cmp(&b.id)));
    let worst = ranked.into_iter().filter(|p| has_scores || p.error.is_some()).take(n);
    RunSamples {
        run: run.name.clone(),
        task: run.config().task.clone(),
        first: run.predictions.iter().take(n).map(|p| view(p, &run.dir, thumbs)).collect(),
        worst: worst.map(|p| view(p, &run.dir, thumbs)).collect(),
        has_scores,
    }
}

fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn view(p: &Prediction, run_dir: &Path, thumbs: &mut Thumbnailer) -> SampleView {
    let stages = p
        .stages
        .iter()
        .map(|s| StageView {
            stage: s.stage.clone(),
            kind: s.kind.clone(),
            prompt: s.text.clone(),
            output: text_of(&s.output),
        })
        .collect();
    let mut media: Vec<(String, Option<[usize; 2]>)> = Vec::new();
    for s in &p.stages {
        for (i, img) in s.images.iter().enumerate() {
            let m = (img.clone(), s.frames.get(i).copied().flatten());
            if !media.contains(&m) {
                media.push(m);
            }
        }
    }
    let more_images = media.len().saturating_sub(THUMBS_PER_SAMPLE);
    let thumbs = media
        .iter()
        .take(THUMBS_PER_SAMPLE)
        .map(|(path, frame)| thumbs.thumb(path, *frame, run_dir))
        .collect();
    SampleView {
        id: p.id.clone(),
        stages,
        thumbs,
        more_images,
        answer: text_of(&p.prediction),
        score: p.score,
        error: p.error.clone(),
    }
}

/// Makes thumbnails, caching decoded files and sampled video frames.
#[derive(Default)]
pub struct Thumbnailer {
    cache: HashMap<(String, Option<[usize; 2]>), Thumb>,
    videos: HashMap<(PathBuf, usize), Result<Vec<RgbImage>, Unavailable>>,
}

impl Thumbnailer {
    /// A thumbnail of an image file, or of frame `i` of `k` sampled from a video. Relative paths are
    /// tried as given, then against the run folder.
    pub fn thumb(&mut self, path: &str, frame: Option<[usize; 2]>, run_dir: &Path) -> Thumb {
        let key = (path.to_owned(), frame);
        if let Some(t) = self.cache.get(&key) {
            return t.clone();
        }
        let label = match frame {
            Some([i, k]) => format!("{path} (frame {i} of {k})"),
            None => path.to_owned(),
        };
        let file = Path::new(path);
        let file =
            if file.is_relative() && !file.exists() { run_dir.join(file) } else { file.to_owned() };
        let t = match self.pixels(&file, frame) {
            Ok(img) => Thumb::DataUri { uri: png_data_uri(&downscale(&img, THUMB_SIDE)), label },
            Err(Unavailable(reason)) => Thumb::Missing { label, reason },
        };
        self.cache.insert(key, t.clone());
        t
    }

    fn pixels(&mut self, file: &Path, frame: Option<[usize; 2]>) -> Result<RgbImage, Unavailable> {
        match frame {
            None => decode_file(file).map_err(|e| Unavailable(e.reason())),
            Some([i, k]) => {
                let frames = self.videos.entry((file.to_owned(), k)).or_insert_with(|| {
                    read_frames(file, k).map(|s| s.frames).map_err(|e| Unavailable(e.reason()))
                });
                let frames = frames.as_ref().map_err(Clone::clone)?;
                frames
                    .get(i)
                    .cloned()
                    .ok_or_else(|| Unavailable(format!("frame {i} of {} sampled", frames.len())))
            }
        }
    }
}

/// Why a thumbnail's pixels are unavailable (shown in its place).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
struct Unavailable(String);

/// Downscales so the longer side is at most `side` (never upscales).
pub fn downscale(img: &RgbImage, side: usize) -> RgbImage {
    let long = img.width.max(img.height);
    if long <= side || long == 0 {
        return img.clone();
    }
    let w = (img.width * side / long).max(1);
    let h = (img.height * side / long).max(1);
    resize_bicubic(img, w, h)
}

/// `data:image/png;base64,…` of an RGB image.
pub fn png_data_uri(img: &RgbImage) -> String {
    format!(
        "data:image/png;base64,{}",
        base64(&encode_png(img.width as u32, img.height as u32, &img.data))
    )
}

/// Encodes 8-bit RGB as PNG.
pub fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        // Writing into a Vec cannot fail; a size mismatch is a programming error.
        let mut w = enc.write_header().expect("PNG header");
        w.write_image_data(rgb).expect("PNG data matches its size");
    }
    out
}

/// Standard base64 (RFC 4648, padded).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn thumbnail_of_a_fixture_photo_is_small_png() {
        let cat =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/emu-tiny/cat.jpg");
        let mut t = Thumbnailer::default();
        match t.thumb(cat.to_str().unwrap(), None, Path::new(".")) {
            Thumb::DataUri { uri, .. } => {
                assert!(uri.starts_with("data:image/png;base64,iVBORw0KGgo"), "{}", &uri[..40]);
                assert!(uri.len() < 60_000, "{}", uri.len());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(t.thumb("nope.jpg", None, Path::new(".")), Thumb::Missing { .. }));
    }
}
