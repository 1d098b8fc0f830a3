//! Emu's answer and caption post-processing (metrics.md 1.6).

/// Short answer rule for VQAv2/OKVQA/VizWiz outputs.
pub fn vqa_short_answer(s: &str) -> String {
    s.to_owned()
}

/// Caption rule for COCO outputs.
pub fn coco_caption(s: &str) -> String {
    s.to_owned()
}
