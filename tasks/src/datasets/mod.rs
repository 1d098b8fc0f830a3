//! Loaders for the official files in the layout of `shared/spec/datasets.md` §2. Each module reads
//! only `<data-root>/<task>/…` (the "task dir") and returns plain [`Sample`]s.
#[cfg(feature = "media")]
pub mod check;
pub mod coco_caption;
pub mod coco_t2i;
pub mod msrvtt_qa;
pub mod msvd_qa;
pub mod nextqa;
pub mod okvqa;
pub mod origin;
pub mod predictions;
pub mod validate;
pub mod video_qa;
pub mod visdial;
pub mod vizwiz;
pub mod vqa_common;
pub mod vqav2;

#[cfg(test)]
mod fixture_tests;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::input::InputError;

/// The stable key that predictions, caches and reports use for a sample.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SampleId {
    /// COCO `cocoid`, VQA `question_id`, MSVD/MSRVTT `id`, COCO caption annotation `id`.
    Int(u64),
    /// VizWiz image file name (the only key VizWiz has).
    Image(String),
    /// VisDial dialog round: COCO/VisDial `image_id` and 1-based `round_id` (0 = whole dialog).
    Round { image_id: u64, round_id: u32 },
    /// NExT-QA `(video, qid)`; `video` kept as text (ids exceed 32 bits).
    VideoQid { video: String, qid: u64 },
}

impl fmt::Display for SampleId {
    /// `391895`, `VizWiz_val_00000000.jpg`, `185565#6`, `4924794333#0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SampleId::Int(i) => write!(f, "{i}"),
            SampleId::Image(s) => write!(f, "{s}"),
            SampleId::Round { image_id, round_id } => write!(f, "{image_id}#{round_id}"),
            SampleId::VideoQid { video, qid } => write!(f, "{video}#{qid}"),
        }
    }
}

/// The image or video a sample shows, with its cache key (image/video id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Media {
    Image { key: String, path: PathBuf },
    Video { key: String, path: PathBuf },
}

impl Media {
    /// An image file; its file name is the cache key.
    pub fn image(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Media::Image { key: file_key(&path), path }
    }
    /// A video file; its file name is the cache key.
    pub fn video(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Media::Video { key: file_key(&path), path }
    }
    pub fn path(&self) -> &Path {
        match self {
            Media::Image { path, .. } | Media::Video { path, .. } => path,
        }
    }
    /// Key for per-image/per-video caches (several questions share one image).
    pub fn key(&self) -> &str {
        match self {
            Media::Image { key, .. } | Media::Video { key, .. } => key,
        }
    }
    pub fn is_video(&self) -> bool {
        matches!(self, Media::Video { .. })
    }
}

fn file_key(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// One question/answer turn of a dialog history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub question: String,
    pub answer: String,
}

/// What a sample asks and what counts as right.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// COCO caption: raw reference captions (untouched; tokenised by the metric).
    Caption { references: Vec<String> },
    /// COCO text-to-image: one caption annotation.
    TextToImage { annotation_id: u64, caption: String },
    /// VQAv2 / OK-VQA / VizWiz. `answers` are the scored forms (empty for test splits).
    Vqa {
        question: String,
        answers: Vec<String>,
        question_type: Option<String>,
        answer_type: Option<String>,
        /// VizWiz only: 1 or 0.
        answerable: Option<i64>,
    },
    /// VisDial: one round to rank, with the previous rounds as history. For the training pool
    /// (`round_id` 0) `history` holds all rounds and `question` is empty.
    Dialog {
        caption: String,
        history: Vec<Turn>,
        question: String,
        /// 100 answer options resolved to text (empty for pool entries).
        options: Vec<String>,
        /// Ground truth: 0-based position in `options` (absent in test).
        gt_index: Option<usize>,
        /// Dense relevance of the 100 options for the one annotated round (val).
        gt_relevance: Option<Vec<f64>>,
    },
    /// MSVD-QA / MSRVTT-QA / NExT-QA.
    VideoQa {
        question: String,
        answer: String,
        /// NExT-QA extra reference (`add_reference_answer_*.json`).
        answer_add: Option<String>,
        /// NExT-QA question type (CW, CH, TN, TC, TP, DL, DB, DC, DO).
        qtype: Option<String>,
    },
}

/// One evaluation or training sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub id: SampleId,
    pub media: Media,
    pub content: Content,
    /// The file and record it was read from.
    pub origin: origin::Origin,
}

/// A loaded split.
#[derive(Debug, Clone)]
pub struct Split {
    pub task: &'static str,
    pub split: String,
    pub samples: Vec<Sample>,
}

impl Split {
    /// Distinct images/videos the samples use, in first-use order.
    pub fn media(&self) -> Vec<&Media> {
        let mut seen = std::collections::HashSet::new();
        self.samples.iter().map(|s| &s.media).filter(|m| seen.insert(m.path())).collect()
    }
}

/// Error for a split name a task does not have.
pub fn unknown_split(dir: &Path, task: &str, split: &str, known: &[&str]) -> InputError {
    InputError::file(
        dir,
        format!("task {task} has no split {split:?} (known: {})", known.join(", ")),
    )
}

/// `<dir>/<rel>`; the error names the file when it is absent.
pub fn require(dir: &Path, rel: &str) -> Result<PathBuf, InputError> {
    let p = dir.join(rel);
    if p.is_file() {
        Ok(p)
    } else {
        Err(InputError::file(&p, "missing file"))
    }
}

pub use crate::rng::subsample;

/// COCO file name `COCO_{subset}_{id:012}.jpg` inside `<subset>/`; the file name is the cache key.
pub fn coco_image(dir: &Path, subset: &str, image_id: u64) -> Media {
    let name = format!("COCO_{subset}_{image_id:012}.jpg");
    Media::Image { path: dir.join(subset).join(&name), key: name }
}

/// Adds context (e.g. the record's id) to an error's message.
pub fn context(mut e: InputError, ctx: impl fmt::Display) -> InputError {
    e.message = format!("{} ({ctx})", e.message);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsample_is_deterministic_and_bounded() {
        assert_eq!(subsample(8, 30_000, 1), (0..8).collect::<Vec<_>>());
        let a = subsample(100, 10, 7);
        assert_eq!(a, subsample(100, 10, 7));
        assert_eq!(a.len(), 10);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a[9] < 100);
        assert_ne!(a, subsample(100, 10, 8));
    }

    #[test]
    fn ids_display_as_stable_keys() {
        assert_eq!(SampleId::Round { image_id: 185565, round_id: 6 }.to_string(), "185565#6");
        assert_eq!(
            SampleId::VideoQid { video: "13496244575".into(), qid: 2 }.to_string(),
            "13496244575#2"
        );
    }
}
