//! Plain input and output types of prompt building (no datasets, no tokenizer).
use serde::Serialize;

/// The template family (one definition with the run-folder schema).
pub use tasks::run_folder::Family;

/// The prompted benchmarks and their template groups are defined once, in the task registry.
pub use tasks::registry::{PromptTask as Task, TaskKind};

/// The media and dialog-turn types are the datasets' own (one definition for loaders and prompts).
pub use tasks::datasets::{Media as MediaRef, Turn};

/// What a prompt needs from a sample (query or support example).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromptSample {
    /// Id the task uses in its predictions.
    pub id: String,
    /// Images or videos shown before the text (normally exactly one).
    pub media: Vec<MediaRef>,
    pub question: Option<String>,
    /// A known caption (used in `{caption}` of a support example instead of a generated one).
    pub caption: Option<String>,
    /// The answer (support examples); for captioning the reference caption to show.
    pub answer: Option<String>,
    /// VizWiz: whether the question is answerable (support examples of the answerability stage).
    pub answerable: Option<bool>,
    /// VisDial: previous rounds with their ground-truth answers.
    pub history: Vec<Turn>,
}

/// Options of prompt building.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptOptions {
    /// Number of support examples shown with their media (0 = zero-shot).
    pub shots: usize,
    /// Multimodal chain-of-thought (pretrained Emu, QA tasks): caption stage(s) first.
    pub cot: bool,
    /// The paper's `*` rows: two support examples as text only, their media removed.
    pub text_examples: bool,
    /// `<image>` slots per image block (32 for the real model).
    pub n_causal: usize,
    /// Frames per query video (paper: 8).
    pub query_frames: usize,
    /// Frames per support video (paper: 2).
    pub support_frames: usize,
}

impl Default for PromptOptions {
    fn default() -> Self {
        Self {
            shots: 0,
            cot: false,
            text_examples: false,
            n_causal: 32,
            query_frames: 8,
            support_frames: 2,
        }
    }
}

/// Number of text-only examples in the paper's `*` rows.
pub const TEXT_EXAMPLES: usize = 2;

/// The file feeding one `[IMG]…[/IMG]` block; for a video, which of how many sampled frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaSlot {
    pub path: String,
    /// `(i, k)`: frame `i` of the `k` frames sampled with Emu's sampler (emu-model.md 6); `None` for an image.
    pub frame: Option<(usize, usize)>,
}

/// A piece of a stage's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// One image block, `[IMG]` + n_causal × `<image>` + `[/IMG]`.
    Media(MediaSlot),
    /// The post-processed output of an earlier stage (a generated caption), shown as `{caption}`.
    StageOutput(String),
}
