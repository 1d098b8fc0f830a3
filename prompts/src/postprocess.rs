//! Answer post-processing of generated text. The rules themselves live in
//! `tasks::metrics::postprocess` (released code's `short_answer` and caption rule, emu-model.md 3.6);
//! this module only says which rule applies to which stage.
pub use tasks::metrics::postprocess::{coco_caption, vqa_short_answer};

use crate::build::StageKind;
use crate::types::{Task, TaskKind};

/// The VizWiz final answer (emu-model.md 3.5): `unanswerable` when the answerability stage decoded
/// exactly to `no.`, else `short_answer` of the answer stage.
pub fn vizwiz_answer(answerability: &str, answer: &str) -> String {
    if answerability == "no." {
        "unanswerable".to_owned()
    } else {
        vqa_short_answer(answer)
    }
}

/// Post-processes one stage's decoded output.
/// Chain-of-thought captions and COCO captions: the caption rule. Image QA: `short_answer`.
/// Video QA: `short_answer` too (carried over from the image code; no released video code).
/// VizWiz answerability: unchanged (compared verbatim with `no.`). VisDial ranks candidates and
/// generates nothing: unchanged.
pub fn postprocess(task: Task, stage: StageKind, text: &str) -> String {
    match stage {
        StageKind::Caption => coco_caption(text),
        StageKind::Answerability => text.to_owned(),
        StageKind::Answer => match task.kind() {
            TaskKind::Caption => coco_caption(text),
            TaskKind::ImageQa | TaskKind::VideoEventQa | TaskKind::VideoTemporalQa => vqa_short_answer(text),
            TaskKind::ImageDialog => text.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vizwiz_gate_only_on_exact_no() {
        assert_eq!(vizwiz_answer("no.", "a dog"), "unanswerable");
        assert_eq!(vizwiz_answer("yes.", "Yes."), vqa_short_answer("Yes."));
        assert_eq!(vizwiz_answer("no", "x"), vqa_short_answer("x"));
    }
}
