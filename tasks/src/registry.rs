//! The task registry: one entry per benchmark of the Emu paper (datasets.md §1). Adding a task is
//! one entry here plus one loader in `datasets/`.
use std::path::{Path, PathBuf};

use crate::datasets::{self, Sample, Split};
use crate::input::InputError;
use crate::metrics::vqa;

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

    /// Whether a smaller value is better (FID).
    pub fn lower_is_better(self) -> bool {
        self == Metric::Fid
    }

    /// Whether the metric is defined only over the whole corpus (CIDEr's IDF, FID's statistics):
    /// a sample has no score of its own, and a subset's value is not the full split's.
    pub fn corpus_level(self) -> bool {
        matches!(self, Metric::Cider | Metric::Fid)
    }
}

/// Size of the seeded random subset of the training split that RICES retrieves from (the paper's
/// few-shot protocol, emu-model.md §4).
pub const RICES_POOL_SIZE: usize = 5000;

/// Post-processing of a generated answer before scoring (emu-model.md §3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostProcess {
    /// The caption as generated, cleaned as the official caption evaluation does.
    CocoCaption,
    /// The official short-answer clean-up (first sentence, punctuation, case).
    VqaShortAnswer,
    /// Used as produced (ranks, images).
    None,
}

/// Beam-search settings of one generation stage (emu-model.md §3.3–3.4). `min_length` counts the
/// dummy BOS, as transformers' does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Generation {
    pub num_beams: usize,
    pub max_new_tokens: usize,
    pub min_length: usize,
    pub length_penalty: f64,
    /// Multinomial sampling instead of search (a user option: the paper never samples).
    pub sampling: Option<Sampling>,
}

/// Temperature and nucleus (top-p) of a sampled stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub temperature: f64,
    pub top_p: f64,
}

/// COCO caption settings of the released evaluation code (§3.4): also used for chain-of-thought
/// caption stages, which caption the image the same way.
pub const CAPTION: Generation = Generation {
    num_beams: 5,
    max_new_tokens: 20,
    min_length: 8,
    length_penalty: -1.0,
    sampling: None,
};
/// VQAv2 / OK-VQA / VizWiz answer settings (§3.4). The video QA tasks have no released evaluation
/// code; their short answers are generated and post-processed the same way.
pub const SHORT_ANSWER: Generation = Generation {
    num_beams: 5,
    max_new_tokens: 20,
    min_length: 1,
    length_penalty: -1.0,
    sampling: None,
};
/// VizWiz answerability pass (§3.5): the model defaults, constrained to `yes.`/`no.`.
pub const ANSWERABILITY: Generation = Generation {
    num_beams: 5,
    max_new_tokens: 50,
    min_length: 1,
    length_penalty: 0.0,
    sampling: None,
};

/// How a task's samples are answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Inference {
    /// Generate the answer (after chain-of-thought caption stages when asked).
    Generate { answer: Generation },
    /// VizWiz: a constrained answerability pass, then the answer pass (§3.5). `answers` are the
    /// gate's allowed outputs (`yes.`, `no.`); the gate output `unanswerable` makes the answer
    /// `unanswerable_answer` (VizWiz's own label).
    AnswerabilityGate {
        gate: Generation,
        answers: [&'static str; 2],
        unanswerable: &'static str,
        unanswerable_answer: &'static str,
        answer: Generation,
    },
    /// VisDial: rank the answer options by the classification loss (§3.7).
    RankOptions { n_segments: usize },
    /// COCO text-to-image: regress image embeddings and decode them (§5).
    TextToImage,
}

/// The strings of an answerability gate (VizWiz, §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateStrings {
    /// The gate output that lets the answer stage's answer through (`yes.`).
    pub answerable: &'static str,
    /// The gate output that makes the answer [`GateStrings::unanswerable_answer`] (`no.`).
    pub unanswerable: &'static str,
    /// The final answer of an unanswerable question (`unanswerable`).
    pub unanswerable_answer: &'static str,
}

impl Inference {
    /// The gate's strings, for [`Inference::AnswerabilityGate`].
    pub fn gate(&self) -> Option<GateStrings> {
        match *self {
            Inference::AnswerabilityGate { answers, unanswerable, unanswerable_answer, .. } => {
                let answerable =
                    answers.into_iter().find(|a| *a != unanswerable).unwrap_or(answers[0]);
                Some(GateStrings { answerable, unanswerable, unanswerable_answer })
            }
            _ => None,
        }
    }
}

/// Template group of a prompted task (the rows of the paper's Table 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    Caption,
    ImageQa,
    ImageDialog,
    VideoEventQa,
    VideoTemporalQa,
}

impl TaskKind {
    /// Key of the template in `templates.json`.
    pub fn template_key(self) -> &'static str {
        match self {
            TaskKind::Caption => "caption",
            TaskKind::ImageQa => "image_qa",
            TaskKind::ImageDialog => "image_dialog",
            TaskKind::VideoEventQa => "video_event_qa",
            TaskKind::VideoTemporalQa => "video_temporal_qa",
        }
    }
}

/// The benchmarks answered with a text prompt (`prompts::Task`); coco_t2i has none. Ids, settings
/// and everything else come from the registry entry whose `prompt` is this value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromptTask {
    CocoCaption,
    Vqav2,
    Okvqa,
    Vizwiz,
    Visdial,
    MsvdQa,
    MsrvttQa,
    Nextqa,
}

impl PromptTask {
    /// Every prompted task, in registry order.
    pub fn all() -> Vec<PromptTask> {
        TASKS.iter().filter_map(|t| t.prompt).collect()
    }
    /// The registry entry of this task.
    pub fn entry(self) -> &'static Task {
        TASKS
            .iter()
            .find(|t| t.prompt == Some(self))
            .expect("every PromptTask has a registry entry")
    }
    /// Task id as used by the registry and the command line.
    pub fn id(self) -> &'static str {
        self.entry().id
    }
    pub fn parse(s: &str) -> Option<PromptTask> {
        get(s).and_then(|t| t.prompt)
    }
    pub fn kind(self) -> TaskKind {
        match self {
            PromptTask::CocoCaption => TaskKind::Caption,
            PromptTask::Vqav2 | PromptTask::Okvqa | PromptTask::Vizwiz => TaskKind::ImageQa,
            PromptTask::Visdial => TaskKind::ImageDialog,
            PromptTask::MsvdQa | PromptTask::MsrvttQa => TaskKind::VideoEventQa,
            PromptTask::Nextqa => TaskKind::VideoTemporalQa,
        }
    }
    pub fn is_video(self) -> bool {
        self.entry().media == MediaKind::Video
    }
    /// VizWiz: an answerability stage precedes the answer.
    pub fn gated(self) -> bool {
        matches!(self.entry().inference, Inference::AnswerabilityGate { .. })
    }
    /// Multimodal chain-of-thought (caption first) applies: every task but captioning itself.
    pub fn supports_cot(self) -> bool {
        self.kind() != TaskKind::Caption
    }
    /// How the answer stage's output is cleaned before scoring.
    pub fn postprocess(self) -> PostProcess {
        match self.kind() {
            TaskKind::Caption => PostProcess::CocoCaption,
            TaskKind::ImageQa | TaskKind::VideoEventQa | TaskKind::VideoTemporalQa => {
                PostProcess::VqaShortAnswer
            }
            TaskKind::ImageDialog => PostProcess::None,
        }
    }
}

/// Which metric code scores a task's result file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scorer {
    /// pycocoevalcap BLEU/ROUGE-L/CIDEr-D.
    Caption,
    /// VQA accuracy in a fixed variant (VQAv2's can be chosen: official or Emu's).
    Vqa(vqa::Variant),
    /// VisDial R@k, MRR, mean rank, NDCG.
    Visdial,
    /// Exact-match top-1 accuracy.
    VideoQa,
    /// NExT-OE WUPS over WordNet 3.0.
    Wups,
    /// FID of generated images (not from a result file).
    Fid,
}

impl Scorer {
    pub fn needs_wordnet(self) -> bool {
        self == Scorer::Wups
    }
}

/// The official result-file layout of a task (emu-model.md §3.8, datasets.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFormat {
    /// `[{"image_id", "caption"}]`
    CocoCaption,
    /// `[{"question_id", "answer"}]`
    QuestionAnswer,
    /// `[{"image", "answer"}]`
    VizwizImage,
    /// `[{"image_id", "round_id", "ranks"}]`
    VisdialRanks,
    /// `[{"video", "qid", "answer"}]`
    NextqaVideoQid,
    /// Generated images (PNG per caption id), no JSON result file.
    Images,
}

impl ResultFormat {
    pub fn describe(self) -> &'static str {
        match self {
            ResultFormat::CocoCaption => r#"[{"image_id","caption"}]"#,
            ResultFormat::QuestionAnswer => r#"[{"question_id","answer"}]"#,
            ResultFormat::VizwizImage => r#"[{"image","answer"}]"#,
            ResultFormat::VisdialRanks => r#"[{"image_id","round_id","ranks"}]"#,
            ResultFormat::NextqaVideoQid => r#"[{"video","qid","answer"}]"#,
            ResultFormat::Images => "one PNG per caption id",
        }
    }
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
    /// The prompt builder's identity of the task (its template group); None: no text prompt.
    pub prompt: Option<PromptTask>,
    /// How samples are answered, with the decoding settings of each stage.
    pub inference: Inference,
    /// The official result file: its layout and its name (emu-model.md §3.4).
    pub result_format: ResultFormat,
    pub result_file: &'static str,
    pub scorer: Scorer,
    pub loader: Loader,
}

impl Task {
    /// Whether the task generates images (text-to-image) rather than answering.
    pub fn is_text_to_image(&self) -> bool {
        matches!(self.inference, Inference::TextToImage)
    }
    /// Whether the task supports chain-of-thought prompting.
    pub fn supports_cot(&self) -> bool {
        self.prompt.is_some_and(PromptTask::supports_cot)
    }
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
        prompt: Some(PromptTask::CocoCaption),
        inference: Inference::Generate { answer: CAPTION },
        result_format: ResultFormat::CocoCaption,
        result_file: "coco_answer.json",
        scorer: Scorer::Caption,
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
        data_files: &[
            "annotations/captions_val2014.json",
            "val2014/",
            "annotations/captions_train2014.json (optional)",
        ],
        prompt: None,
        inference: Inference::TextToImage,
        result_format: ResultFormat::Images,
        result_file: "coco_t2i_images",
        scorer: Scorer::Fid,
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
        prompt: Some(PromptTask::Vqav2),
        inference: Inference::Generate { answer: SHORT_ANSWER },
        result_format: ResultFormat::QuestionAnswer,
        result_file: "vqav2_answer.json",
        scorer: Scorer::Vqa(vqa::Variant::Official),
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
        prompt: Some(PromptTask::Okvqa),
        inference: Inference::Generate { answer: SHORT_ANSWER },
        result_format: ResultFormat::QuestionAnswer,
        result_file: "okvqa_answer.json",
        scorer: Scorer::Vqa(vqa::Variant::Okvqa),
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
        data_files: &[
            "annotations/val.json",
            "annotations/train.json",
            "annotations/test.json (submission)",
            "train/",
            "val/",
            "test/",
        ],
        prompt: Some(PromptTask::Vizwiz),
        inference: Inference::AnswerabilityGate {
            gate: ANSWERABILITY,
            answers: ["yes.", "no."],
            unanswerable: "no.",
            unanswerable_answer: "unanswerable",
            answer: SHORT_ANSWER,
        },
        result_format: ResultFormat::VizwizImage,
        result_file: "vizwiz_answer.json",
        scorer: Scorer::Vqa(vqa::Variant::Vizwiz),
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
        prompt: Some(PromptTask::Visdial),
        inference: Inference::RankOptions { n_segments: 100 },
        result_format: ResultFormat::VisdialRanks,
        result_file: "visdial_answer.json",
        scorer: Scorer::Visdial,
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
        data_files: &[
            "test_qa.json",
            "val_qa.json",
            "train_qa.json",
            "youtube_mapping.txt",
            "YouTubeClips/",
        ],
        prompt: Some(PromptTask::MsvdQa),
        inference: Inference::Generate { answer: SHORT_ANSWER },
        result_format: ResultFormat::QuestionAnswer,
        result_file: "msvd_qa_answer.json",
        scorer: Scorer::VideoQa,
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
        prompt: Some(PromptTask::MsrvttQa),
        inference: Inference::Generate { answer: SHORT_ANSWER },
        result_format: ResultFormat::QuestionAnswer,
        result_file: "msrvtt_qa_answer.json",
        scorer: Scorer::VideoQa,
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
        data_files: &[
            "test.csv",
            "val.csv",
            "train.csv",
            "map_vid_vidorID.json",
            "add_reference_answer_test.json (optional)",
            "NExTVideo/",
        ],
        prompt: Some(PromptTask::Nextqa),
        inference: Inference::Generate { answer: SHORT_ANSWER },
        result_format: ResultFormat::NextqaVideoQid,
        result_file: "nextqa_answer.json",
        scorer: Scorer::Wups,
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

/// Named task groups (`--task GROUP`): by kind, and the tasks of each paper table.
pub const GROUPS: &[(&str, &[&str])] = &[
    ("captioning", &["coco_caption"]),
    ("image-qa", &["vqav2", "okvqa", "vizwiz"]),
    ("video-qa", &["msvd_qa", "msrvtt_qa", "nextqa"]),
    ("dialogue", &["visdial"]),
    ("text-to-image", &["coco_t2i"]),
    (
        "table1",
        &["coco_caption", "vqav2", "okvqa", "vizwiz", "visdial", "msvd_qa", "msrvtt_qa", "nextqa"],
    ),
    ("table2", &["coco_t2i"]),
    ("table3", &["vqav2", "vizwiz", "msvd_qa", "msrvtt_qa"]),
];

/// The name that selects every task.
pub const ALL: &str = "all";

/// The groups a task belongs to.
pub fn groups_of(id: &str) -> Vec<&'static str> {
    GROUPS.iter().filter(|(_, ids)| ids.contains(&id)).map(|(g, _)| *g).collect()
}

/// The tasks a `--task` word names: a task id, a group name or `all` (None: none of them).
pub fn select(word: &str) -> Option<Vec<&'static Task>> {
    if word == ALL {
        return Some(TASKS.iter().collect());
    }
    if let Some(t) = get(word) {
        return Some(vec![t]);
    }
    let (_, ids) = GROUPS.iter().find(|(g, _)| *g == word)?;
    ids.iter().map(|id| get(id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_name_registered_tasks_and_all_selects_every_task() {
        for (g, ids) in GROUPS {
            assert_eq!(select(g).map(|ts| ts.len()), Some(ids.len()), "{g}");
            assert!(get(g).is_none(), "group {g} shadows a task id");
        }
        assert_eq!(select(ALL).map(|ts| ts.len()), Some(TASKS.len()));
        assert_eq!(select("vqav2").map(|ts| ts[0].id), Some("vqav2"));
        assert!(select("vqa").is_none());
        assert_eq!(groups_of("vqav2"), ["image-qa", "table1", "table3"]);
        // Every task is in a kind group, and the table groups are the paper tables' columns.
        for t in TASKS {
            assert!(!groups_of(t.id).is_empty(), "{}", t.id);
        }
    }

    #[test]
    fn nine_tasks_with_known_default_splits() {
        assert_eq!(
            ids(),
            [
                "coco_caption",
                "coco_t2i",
                "vqav2",
                "okvqa",
                "vizwiz",
                "visdial",
                "msvd_qa",
                "msrvtt_qa",
                "nextqa"
            ]
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

    #[test]
    fn prompt_tasks_map_one_to_one() {
        let all = PromptTask::all();
        assert_eq!(all.len(), 8);
        for p in all {
            assert_eq!(PromptTask::parse(p.id()), Some(p));
            assert_eq!(p.entry().prompt, Some(p));
        }
        assert!(PromptTask::Vizwiz.gated() && !PromptTask::Vqav2.gated());
        assert!(PromptTask::Nextqa.is_video() && !PromptTask::Okvqa.is_video());
        assert_eq!(get("coco_t2i").unwrap().prompt, None);
    }

    #[test]
    fn metric_facts() {
        let lower: Vec<&str> =
            TASKS.iter().filter(|t| t.metric.lower_is_better()).map(|t| t.id).collect();
        assert_eq!(lower, ["coco_t2i"]);
        let corpus: Vec<&str> =
            TASKS.iter().filter(|t| t.metric.corpus_level()).map(|t| t.id).collect();
        assert_eq!(corpus, ["coco_caption", "coco_t2i"]);
        let cot: Vec<&str> = TASKS.iter().filter(|t| t.supports_cot()).map(|t| t.id).collect();
        assert_eq!(cot, ["vqav2", "okvqa", "vizwiz", "visdial", "msvd_qa", "msrvtt_qa", "nextqa"]);
        assert_eq!(PromptTask::Visdial.postprocess(), PostProcess::None);
        assert_eq!(PromptTask::CocoCaption.postprocess(), PostProcess::CocoCaption);
        assert_eq!(PromptTask::Nextqa.postprocess(), PostProcess::VqaShortAnswer);
        let g = PromptTask::Vizwiz.entry().inference.gate().unwrap();
        assert_eq!(
            (g.answerable, g.unanswerable, g.unanswerable_answer),
            ("yes.", "no.", "unanswerable")
        );
        assert_eq!(PromptTask::Vqav2.entry().inference.gate(), None);
    }
}
