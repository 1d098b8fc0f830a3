//! The zero-shot Emu-I image prompts equal the released code's strings (emu-model.md 4.1, 4.2),
//! written out here independently of templates.json.
use prompts::{build, Family, MediaRef, PromptOptions, PromptSample, Task, Turn};

const IMAGE_SYSTEM_MSG: &str = "You will be presented with an image: [IMG]ImageContent[/IMG]. You will be able to see the image after I provide it to you. Please answer my questions based on the given image.";

fn ph() -> String {
    format!("[IMG]{}[/IMG]", "<image>".repeat(32))
}

fn q(question: &str) -> PromptSample {
    PromptSample {
        id: "q".into(),
        media: vec![MediaRef::image("a.jpg")],
        question: Some(question.into()),
        ..Default::default()
    }
}

fn texts(task: Task, s: &PromptSample) -> Vec<String> {
    let plan = build(task, Family::EmuI, s, &[], &PromptOptions::default()).unwrap();
    plan.stages.iter().map(|st| st.text()).collect()
}

#[test]
fn coco_caption_prompt_is_the_code_string() {
    let want = format!("{IMAGE_SYSTEM_MSG} [USER]: {} please provide an accurate and concise description of the given image. [ASSISTANT]: the image depicts a photo of", ph());
    assert_eq!(texts(Task::CocoCaption, &q("")), vec![want]);
}

#[test]
fn vqa_prompts_are_the_code_strings() {
    let want = format!("{IMAGE_SYSTEM_MSG} [USER]: {} based on the content of the image and common sense, please provide an accurate answer consisting of only one word or phrase. What color is the cat? [ASSISTANT]: the answer is:", ph());
    for task in [Task::Vqav2, Task::Okvqa] {
        assert_eq!(texts(task, &q("What color is the cat?")), vec![want.clone()]);
    }
    let gate = format!("{IMAGE_SYSTEM_MSG} [USER]: {} based on the content of the image and common sense, please provide an accurate answer consisting of only one word or phrase. What color is the cat?, is the answer known? [ASSISTANT]:", ph());
    assert_eq!(texts(Task::Vizwiz, &q("What color is the cat?")), vec![gate, want]);
}

#[test]
fn visdial_prompt_is_the_code_string() {
    let mut s = q("how many people");
    s.history = vec![Turn { question: "is it sunny".into(), answer: "yes".into() }];
    let want = format!("{IMAGE_SYSTEM_MSG} [USER]: {}</s> [USER]: is it sunny? [ASSISTANT]: yes.</s> [USER]: how many people? [ASSISTANT]:", ph());
    assert_eq!(texts(Task::Visdial, &s), vec![want]);
}

#[test]
fn stage_outputs_fill_the_caption() {
    let plan = build(
        Task::Vqav2,
        Family::Emu,
        &q("what is it?"),
        &[],
        &PromptOptions { cot: true, ..Default::default() },
    )
    .unwrap();
    let answer = plan.answer_stage();
    assert_eq!(answer.depends_on(), vec!["cot.caption"]);
    assert!(answer.render(&Default::default()).is_err());
    let outputs = [("cot.caption".to_owned(), "a cat on a mat".to_owned())].into_iter().collect();
    assert_eq!(
        answer.render(&outputs).unwrap(),
        format!(
            "{}a picture of a cat on a mat. based on the picture, what is it? short answer:",
            ph()
        )
    );
}

#[test]
fn too_few_support_examples_is_an_error() {
    let opts = PromptOptions { shots: 2, ..Default::default() };
    assert!(build(Task::Vqav2, Family::Emu, &q("x"), &[q("y")], &opts).is_err());
    let opts = PromptOptions { shots: 2, text_examples: true, ..Default::default() };
    assert!(build(Task::Vqav2, Family::Emu, &q("x"), &[q("y"), q("z")], &opts).is_err());
}
