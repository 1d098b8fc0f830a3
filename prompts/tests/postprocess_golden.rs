//! Every case of `shared/golden/vqa/emu_answer_postprocess.json` through prompts' post-processing
//! API (exact string match; the rules live in `tasks::metrics::postprocess`).
use prompts::{postprocess, StageKind, Task};

#[test]
fn every_golden_case_passes_through_prompts() {
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden/vqa/emu_answer_postprocess.json");
    let text = std::fs::read_to_string(path).expect("golden file");
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).expect("golden JSON");
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for c in &cases {
        let (kind, input, output) = (
            c["kind"].as_str().unwrap(),
            c["input"].as_str().unwrap(),
            c["output"].as_str().unwrap(),
        );
        let got = match kind {
            "vqa_short_answer" => {
                // The same rule for every short-answer task's answer stage.
                let per_task: Vec<String> = [
                    Task::Vqav2,
                    Task::Okvqa,
                    Task::Vizwiz,
                    Task::MsvdQa,
                    Task::MsrvttQa,
                    Task::Nextqa,
                ]
                .into_iter()
                .map(|t| postprocess(t, StageKind::Answer, input))
                .collect();
                assert!(per_task.windows(2).all(|w| w[0] == w[1]));
                assert_eq!(prompts::gated_answer(Task::Vizwiz, "yes.", input), per_task[0]);
                per_task[0].clone()
            }
            "coco_caption" => {
                let a = postprocess(Task::CocoCaption, StageKind::Answer, input);
                assert_eq!(
                    a,
                    postprocess(Task::Vqav2, StageKind::Caption, input),
                    "CoT captions use the caption rule"
                );
                a
            }
            other => panic!("unknown kind {other}"),
        };
        if got != output {
            failures.push(format!("{kind}({input:?}) = {got:?}, want {output:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
