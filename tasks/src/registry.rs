//! The task registry: one entry per benchmark of the Emu paper (datasets.md §1). Adding a task is
//! one entry here plus one loader in `datasets/`.
use std::path::{Path, PathBuf};

use crate::datasets::{self, Sample, Split};
use crate::input::InputError;

/// Images or videos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
}

/// The headline metric of a task (metrics.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// CIDEr-D (with BLEU and ROUGE-L) over PTB-tokenised captions.
    Cider,
    /// Fréchet Inception Distance of generated images.
    Fid,
    /// VQA accuracy (official formula).
    VqaAccuracy,
    /// OK-VQA accuracy (stemmed answers).
    OkvqaAccuracy,
    /// VizWiz accuracy.
    VizwizAccuracy,
    /// VisDial NDCG (with R@k, MRR, mean rank).
    Ndcg,
    /// Top-1 exact-match accuracy (MSVD-QA, MSRVTT-QA).
    Top1Accuracy,
    /// WUPS (NExT-OE).
    Wups,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cider => "CIDEr",
            Metric::Fid => "FID",
            Metric::VqaAccuracy => "VQA accuracy",
            Metric::OkvqaAccuracy => "VQA accuracy (OK-VQA, stemmed)",
            Metric::VizwizAccuracy => "VQA accuracy (VizWiz)",
            Metric::Ndcg => "NDCG",
            Metric::Top1Accuracy => "top-1 accuracy",
            Metric::Wups => "WUPS",
        }
    }
}

/// Generation settings (filled by the prompt/decoding work).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Generation {
    pub num_beams: usize,
    pub max_new_tokens: usize,
    pub min_new_tokens: usize,
    pub length_penalty: f32,
}

pub type Loader = fn(&Path, &str) -> Result<Vec<Sample>, InputError>;

/// One benchmark.
#[derive(Debug, Clone, Copy)]
pub struct Task {
    pub id: &'static str,
    pub title: &'static str,
    pub media: MediaKind,
    pub metric: Metric,
    /// Default evaluation split: the locally scorable one.
    pub eval_split: &'static str,
    /// Every split the loader knows (`--split`).
    pub splits: &'static [&'static str],
    /// Split whose samples form the RICES few-shot pool (None: zero-shot only).
    pub pool_split: Option<&'static str>,
    /// Official files, relative to `<data-root>/<id>/`.
    pub data_files: &'static [&'static str],
    /// Prompt templates (filled by the prompt work).
    pub templates: &'static [&'static str],
    /// Generation settings (filled by the decoding work).
    pub generation: Option<Generation>,
    pub loader: Loader,
}

impl Task {
    /// `<data-root>/<id>`.
    pub fn dir(&self, data_root: &Path) -> PathBuf {
        data_root.join(self.id)
    }
    /// Loads one split from a task dir.
    pub fn load(&self, task_dir: &Path, split: &str) -> Result<Split, InputError> {
        let samples = (self.loader)(task_dir, split)?;
        Ok(Split { task: self.id, split: split.to_owned(), samples })
    }
    /// Loads the RICES pool (empty for zero-shot tasks).
    pub fn load_pool(&self, task_dir: &Path) -> Result<Vec<Sample>, InputError> {
        match self.pool_split {
            Some(s) => (self.loader)(task_dir, s),
            None => Ok(Vec::new()),
        }
    }
}

pub static TASKS: &[Task] = &[
    Task {
        id: "coco_caption",
        title: "COCO Caption (Karpathy test)",
        media: MediaKind::Image,
        metric: Metric::Cider,
        eval_split: "test",
        splits: datasets::coco_caption::SPLITS,
        pool_split: Some("train"),
        data_files: &["dataset_coco.json", "train2014/", "val2014/"],
        templates: &[],
        generation: None,
        loader: datasets::coco_caption::load,
    },
    Task {
        id: "coco_t2i",
        title: "COCO text-to-image (val2014 captions)",
        media: MediaKind::Image,
        metric: Metric::Fid,
        eval_split: "val",
        splits: datasets::coco_t2i::SPLITS,
        pool_split: None,
        data_files: &["annotations/captions_val2014.json", "val2014/", "annotations/captions_train2014.json (optional)"],
        templates: &[],
        generation: None,
        loader: datasets::coco_t2i::load,
    },
    Task {
        id: "vqav2",
        title: "VQAv2",
        media: MediaKind::Image,
        metric: Metric::VqaAccuracy,
        eval_split: "val",
        splits: datasets::vqav2::SPLITS,
        pool_split: Some("train"),
        data_files: &[
            "v2_OpenEnded_mscoco_val2014_questions.json",
            "v2_mscoco_val2014_annotations.json",
            "v2_OpenEnded_mscoco_train2014_questions.json",
            "v2_mscoco_train2014_annotations.json",
            "v2_OpenEnded_mscoco_test-dev2015_questions.json (submission)",
            "train2014/",
            "val2014/",
            "test2015/",
        ],
        templates: &[],
        generation: None,
        loader: datasets::vqav2::load,
    },
    Task {
        id: "okvqa",
        title: "OK-VQA",
        media: MediaKind::Image,
        metric: Metric::OkvqaAccuracy,
        eval_split: "val",
        splits: datasets::okvqa::SPLITS,
        pool_split: Some("train"),
        data_files: &[
            "OpenEnded_mscoco_val2014_questions.json",
            "mscoco_val2014_annotations.json",
            "OpenEnded_mscoco_train2014_questions.json",
            "mscoco_train2014_annotations.json",
            "train2014/",
            "val2014/",
        ],
        templates: &[],
        generation: None,
        loader: datasets::okvqa::load,
    },
    Task {
        id: "vizwiz",
        title: "VizWiz VQA",
        media: MediaKind::Image,
        metric: Metric::VizwizAccuracy,
        eval_split: "val",
        splits: datasets::vizwiz::SPLITS,
        pool_split: Some("train"),
        data_files: &["annotations/val.json", "annotations/train.json", "annotations/test.json (submission)", "train/", "val/", "test/"],
        templates: &[],
        generation: None,
        loader: datasets::vizwiz::load,
    },
    Task {
        id: "visdial",
        title: "VisDial v1.0",
        media: MediaKind::Image,
        metric: Metric::Ndcg,
        eval_split: "val",
        splits: datasets::visdial::SPLITS,
        pool_split: Some("train"),
        data_files: &[
            "visdial_1.0_val.json",
            "visdial_1.0_val_dense_annotations.json",
            "visdial_1.0_train.json",
            "visdial_1.0_test.json (submission)",
            "VisualDialog_val2018/",
            "VisualDialog_test2018/",
            "train2014/",
            "val2014/",
        ],
        templates: &[],
        generation: None,
        loader: datasets::visdial::load,
    },
    Task {
        id: "msvd_qa",
        title: "MSVD-QA",
        media: MediaKind::Video,
        metric: Metric::Top1Accuracy,
        eval_split: "test",
        splits: datasets::msvd_qa::SPLITS,
        pool_split: Some("train"),
        data_files: &["test_qa.json", "val_qa.json", "train_qa.json", "youtube_mapping.txt", "YouTubeClips/"],
        templates: &[],
        generation: None,
        loader: datasets::msvd_qa::load,
    },
    Task {
        id: "msrvtt_qa",
        title: "MSRVTT-QA",
        media: MediaKind::Video,
        metric: Metric::Top1Accuracy,
        eval_split: "test",
        splits: datasets::msrvtt_qa::SPLITS,
        pool_split: Some("train"),
        data_files: &["test_qa.json", "val_qa.json", "train_qa.json", "videos/"],
        templates: &[],
        generation: None,
        loader: datasets::msrvtt_qa::load,
    },
    Task {
        id: "nextqa",
        title: "NExT-QA (open-ended)",
        media: MediaKind::Video,
        metric: Metric::Wups,
        eval_split: "test",
        splits: datasets::nextqa::SPLITS,
        pool_split: Some("train"),
        data_files: &["test.csv", "val.csv", "train.csv", "map_vid_vidorID.json", "add_reference_answer_test.json (optional)", "NExTVideo/"],
        templates: &[],
        generation: None,
        loader: datasets::nextqa::load,
    },
];

/// The task with this id.
pub fn get(id: &str) -> Option<&'static Task> {
    TASKS.iter().find(|t| t.id == id)
}

/// All task ids, in registry order.
pub fn ids() -> Vec<&'static str> {
    TASKS.iter().map(|t| t.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nine_tasks_with_known_default_splits() {
        assert_eq!(
            ids(),
            ["coco_caption", "coco_t2i", "vqav2", "okvqa", "vizwiz", "visdial", "msvd_qa", "msrvtt_qa", "nextqa"]
        );
        for t in TASKS {
            assert!(t.splits.contains(&t.eval_split), "{}", t.id);
            if let Some(p) = t.pool_split {
                assert!(t.splits.contains(&p), "{}", t.id);
            }
        }
        assert!(get("vqav2").unwrap().splits.contains(&"test-dev"));
        assert!(get("nope").is_none());
    }
}
