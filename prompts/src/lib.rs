//! Prompting as the Emu paper does it (Appendix C.2, Table 8) and as the released Emu-I evaluation
//! code does it (spec emu-model.md 4). Templates are data (`templates/templates.json`, embedded);
//! this crate fills them for a query and its support examples and returns a [`PromptPlan`] of
//! stages (chain-of-thought captions, VizWiz answerability, answer). No datasets, no tokenizer.
pub mod build;
pub mod postprocess;
pub mod template;
pub mod types;

pub use build::{
    build, image_block, PromptPlan, Stage, StageKind, ANSWER, ANSWERABILITY, COT_CAPTION,
};
pub use postprocess::{coco_caption, gated_answer, postprocess, vqa_short_answer};
pub use template::{templates, Templates, TEMPLATES_JSON};
pub use types::{
    Family, MediaRef, MediaSlot, Part, PromptOptions, PromptSample, Task, TaskKind, Turn,
    TEXT_EXAMPLES,
};

/// Why a prompt cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("missing {0}")]
    MissingField(String),
    #[error("need {wanted} support examples, got {got}")]
    NotEnoughSupport { wanted: usize, got: usize },
    #[error("{0}")]
    Conflict(String),
    #[error("no template {0:?}")]
    MissingTemplate(String),
    #[error("bad template: {0}")]
    BadTemplate(String),
    #[error("output of stage {0:?} is needed but missing")]
    MissingStageOutput(String),
}
