//! Answer post-processing of generated text. The rules themselves live in
//! `tasks::metrics::postprocess` (released code's `short_answer` and caption rule, emu-model.md 3.6);
//! which rule applies to which task, and the answerability gate's strings, are registry facts.
pub use tasks::metrics::postprocess::{coco_caption, vqa_short_answer};
use tasks::registry::PostProcess;

use crate::build::StageKind;
use crate::types::Task;

/// The final answer of a gated task (VizWiz, emu-model.md 3.5): the registry's unanswerable answer
/// when the answerability stage decoded exactly to the gate's unanswerable output, else
/// `short_answer` of the answer stage. Ungated tasks: the answer stage's post-processing.
pub fn gated_answer(task: Task, answerability: &str, answer: &str) -> String {
    match task.entry().inference.gate() {
        Some(g) if answerability == g.unanswerable => g.unanswerable_answer.to_owned(),
        _ => postprocess(task, StageKind::Answer, answer),
    }
}

/// Post-processes one stage's decoded output.
/// Chain-of-thought captions: the caption rule. Answers: the task's registry rule (captions: the
/// caption rule; image and video QA: `short_answer`, video carried over from the image code as no
/// video code was released; VisDial ranks candidates: unchanged). Answerability: unchanged
/// (compared verbatim with the gate's strings).
pub fn postprocess(task: Task, stage: StageKind, text: &str) -> String {
    match stage {
        StageKind::Caption => coco_caption(text),
        StageKind::Answerability => text.to_owned(),
        StageKind::Answer => match task.postprocess() {
            PostProcess::CocoCaption => coco_caption(text),
            PostProcess::VqaShortAnswer => vqa_short_answer(text),
            PostProcess::None => text.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vizwiz_gate_only_on_exact_no() {
        assert_eq!(gated_answer(Task::Vizwiz, "no.", "a dog"), "unanswerable");
        assert_eq!(gated_answer(Task::Vizwiz, "yes.", "Yes."), vqa_short_answer("Yes."));
        assert_eq!(gated_answer(Task::Vizwiz, "no", "x"), vqa_short_answer("x"));
    }

    #[test]
    fn rules_follow_the_registry() {
        assert_eq!(postprocess(Task::Visdial, StageKind::Answer, " Keep As Is. "), " Keep As Is. ");
        assert_eq!(postprocess(Task::Okvqa, StageKind::Answer, "Yes."), vqa_short_answer("Yes."));
        assert_eq!(
            postprocess(Task::CocoCaption, StageKind::Answer, "A Cat."),
            coco_caption("A Cat.")
        );
        assert_eq!(postprocess(Task::Vqav2, StageKind::Caption, "A Cat."), coco_caption("A Cat."));
    }
}
