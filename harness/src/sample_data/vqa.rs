//! VQAv2 (datasets.md §5), OK-VQA (§6) and VizWiz (§7): ten answers per question, with the
//! answer/question types and VizWiz `answerable` of the official files.
use serde_json::{json, Value};
use tasks::rng::SplitMix64;

use super::coco::{scene, MAX_COCO_ID};
use super::plan::{class_of, Ids, Plan};
use super::scene::{colour, shape, Scene, CLASSES};

/// A near-synonym of each colour, as some annotators answer.
const COLOUR_VARIANT: [&str; CLASSES] =
    ["dark red", "navy", "dark green", "gold", "violet", "dark orange"];
/// A near-synonym of each shape.
const SHAPE_VARIANT: [&str; CLASSES] =
    ["round", "rectangle", "pyramid", "rhombus", "plus sign", "star shape"];

/// One question with its ten answers `(answer, answer_confidence)`.
struct Qa {
    question: String,
    question_type: &'static str,
    answer_type: &'static str,
    answers: Vec<(String, &'static str)>,
}

/// `n` copies of `answer` with `confidence`.
fn times(n: usize, answer: &str, confidence: &'static str) -> Vec<(String, &'static str)> {
    vec![(answer.to_owned(), confidence); n]
}

/// The five VQAv2 question kinds, asked about scene `s`.
fn vqav2_question(kind: usize, s: &Scene, rng: &mut SplitMix64) -> Qa {
    let (c, sh) = (colour(s.class), shape(s.class));
    let (question, question_type, answer_type, answers) = match kind % 5 {
        0 => (
            "What color is the object in this picture?".to_owned(),
            "what color is the",
            "other",
            [times(7, c, "yes"), times(2, COLOUR_VARIANT[s.class], "maybe"), times(1, c, "maybe")]
                .concat(),
        ),
        1 => {
            let asked = if rng.below(2) == 0 {
                s.class
            } else {
                (s.class + 1 + rng.below(CLASSES - 1)) % CLASSES
            };
            let (yes, no) = if asked == s.class { ("yes", "no") } else { ("no", "yes") };
            (
                format!("Is the object {}?", colour(asked)),
                "is the",
                "yes/no",
                [times(9, yes, "yes"), times(1, no, "maybe")].concat(),
            )
        }
        2 => (
            "Which shape is shown?".to_owned(),
            "which",
            "other",
            [times(8, sh, "yes"), times(2, SHAPE_VARIANT[s.class], "maybe")].concat(),
        ),
        3 => (
            "How many objects are in the image?".to_owned(),
            "how many",
            "number",
            [times(8, "1", "yes"), times(1, "one", "yes"), times(1, "2", "maybe")].concat(),
        ),
        _ => {
            let side = s.side().rsplit(' ').next().unwrap_or("middle");
            let alt = if side == "middle" { "center" } else { side };
            (
                "Is the object on the left or the right side?".to_owned(),
                "is the",
                "other",
                [times(6, side, "yes"), times(3, alt, "yes"), times(1, "middle", "maybe")].concat(),
            )
        }
    };
    Qa { question, question_type, answer_type, answers }
}

/// The most frequent answer (first on ties), VQA's `multiple_choice_answer`.
fn most_frequent(answers: &[(String, &str)]) -> String {
    let count = |a: &String| answers.iter().filter(|(b, _)| b == a).count();
    answers
        .iter()
        .map(|(a, _)| a)
        .fold(None::<&String>, |best, a| match best {
            Some(b) if count(b) >= count(a) => Some(b),
            _ => Some(a),
        })
        .cloned()
        .unwrap_or_default()
}

fn vqa_info(name: &str, version: &str) -> Value {
    json!({"description": format!("emu-eval sample data in the layout of {name}"), "url": "", "version": version,
           "year": 2017, "contributor": "emu-eval", "date_created": "2017-04-26 17:07:13"})
}

fn licence() -> Value {
    json!({"url": "http://creativecommons.org/licenses/by/4.0/", "name": "Creative Commons Attribution 4.0 International License"})
}

/// Questions file of VQAv2/OK-VQA.
fn questions_file(info: &Value, subtype: &str, questions: Vec<Value>) -> Value {
    json!({"info": info, "task_type": "Open-Ended", "data_type": "mscoco", "license": licence(),
           "data_subtype": subtype, "questions": questions})
}

/// Annotations file of VQAv2/OK-VQA.
fn annotations_file(info: &Value, subtype: &str, annotations: Vec<Value>) -> Value {
    json!({"info": info, "license": licence(), "data_subtype": subtype, "annotations": annotations, "data_type": "mscoco"})
}

/// `vqav2/`: val 10 questions on 5 images (all three answer types), train 18 questions on 12
/// images (RICES pool), test-dev 3 questions (no answers; images in `test2015/`).
pub fn vqav2(plan: &mut Plan) {
    let mut rng = SplitMix64::new(0x050A_0002);
    let mut ids = Ids::new(rng.next_u64());
    let info = vqa_info("VQA v2", "2.0");
    let mut kind = 0;
    for (split, subset, images, first) in
        [("val", "val2014", 5, 0), ("train", "train2014", 12, 1), ("test-dev", "test2015", 3, 2)]
    {
        let (mut questions, mut annotations) = (Vec::new(), Vec::new());
        for i in 0..images {
            let s = scene(&mut rng, class_of(i, first));
            let image_id = ids.draw(1, MAX_COCO_ID);
            plan.jpeg(format!("vqav2/{subset}/COCO_{subset}_{image_id:012}.jpg"), s);
            let n = match split {
                "val" => 2,
                "train" => 1 + i % 2,
                _ => 1,
            };
            for j in 0..n {
                let qa = vqav2_question(kind, &s, &mut rng);
                kind += 1;
                let question_id = image_id * 1000 + j as u64;
                questions.push(json!({"image_id": image_id, "question": qa.question, "question_id": question_id}));
                let answers: Vec<Value> = qa
                    .answers
                    .iter()
                    .enumerate()
                    .map(|(k, (a, conf))| json!({"answer": a, "answer_confidence": conf, "answer_id": k + 1}))
                    .collect();
                annotations.push(json!({
                    "question_type": qa.question_type, "multiple_choice_answer": most_frequent(&qa.answers),
                    "answers": answers, "image_id": image_id, "answer_type": qa.answer_type, "question_id": question_id,
                }));
            }
        }
        let subtype = if split == "test-dev" { "test-dev2015" } else { subset };
        plan.json(
            format!("vqav2/v2_OpenEnded_mscoco_{subtype}_questions.json"),
            &questions_file(&info, subtype, questions),
        );
        if split != "test-dev" {
            plan.json(
                format!("vqav2/v2_mscoco_{subtype}_annotations.json"),
                &annotations_file(&info, subtype, annotations),
            );
        }
    }
}

/// OK-VQA knowledge questions: (question, category word, answers per class as (raw, processed)).
type Knowledge = (&'static str, &'static str, [&'static [(&'static str, &'static str)]; CLASSES]);
const KNOWLEDGE: [Knowledge; 3] = [
    (
        "Which fruit shares the color of this object?",
        "five",
        [
            &[("apples", "apple"), ("cherries", "cherry"), ("strawberry", "strawberry")],
            &[("blueberries", "blueberry"), ("plum", "plum")],
            &[("lime", "lime"), ("kiwi", "kiwi"), ("green apple", "green apple")],
            &[("banana", "banana"), ("lemons", "lemon")],
            &[("grapes", "grape"), ("plum", "plum"), ("eggplant", "eggplant")],
            &[("oranges", "orange"), ("tangerine", "tangerine"), ("apricots", "apricot")],
        ],
    ),
    (
        "Name an animal that has this color.",
        "eight",
        [
            &[("cardinal", "cardinal"), ("ladybugs", "ladybug"), ("lobster", "lobster")],
            &[("blue jay", "blue jay"), ("peacock", "peacock")],
            &[("frogs", "frog"), ("parrot", "parrot"), ("lizard", "lizard")],
            &[("canary", "canary"), ("ducklings", "duckling")],
            &[("octopus", "octopus"), ("butterflies", "butterfly")],
            &[("tiger", "tiger"), ("goldfish", "goldfish"), ("foxes", "fox")],
        ],
    ),
    (
        "How many corners does this shape have?",
        "nine",
        [
            &[("none", "none"), ("zero", "0")],
            &[("four", "4"), ("4", "4")],
            &[("three", "3"), ("3", "3")],
            &[("four", "4"), ("4", "4")],
            &[("twelve", "12"), ("12", "12")],
            &[("ten", "10"), ("5", "5")],
        ],
    ),
];

/// `okvqa/`: val 10 questions on 10 images, train 16 on 16 (RICES pool). Five answers, each
/// listed twice, with `raw_answer` and the processed `answer`.
pub fn okvqa(plan: &mut Plan) {
    let mut rng = SplitMix64::new(0x0C0A_0003);
    let mut ids = Ids::new(rng.next_u64());
    let info = json!({"description": "emu-eval sample data in the layout of OK-VQA", "version": "1.1", "year": 2019});
    let mut kind = 0;
    for (subset, images, first) in [("val2014", 10, 0), ("train2014", 16, 2)] {
        let (mut questions, mut annotations) = (Vec::new(), Vec::new());
        for i in 0..images {
            let s = scene(&mut rng, class_of(i, first));
            let image_id = ids.draw(1, MAX_COCO_ID);
            plan.jpeg(format!("okvqa/{subset}/COCO_{subset}_{image_id:012}.jpg"), s);
            let (question, category, per_class) = KNOWLEDGE[kind % KNOWLEDGE.len()];
            kind += 1;
            let options = per_class[s.class];
            let five = [0, 0, 0, 1, 2].map(|k| options[k % options.len()]);
            let answers: Vec<Value> = (0..10)
                .map(|k| {
                    let (raw, answer) = five[k / 2];
                    json!({"answer_id": k + 1, "raw_answer": raw, "answer_confidence": "yes", "answer": answer})
                })
                .collect();
            let question_id = image_id * 10 + rng.below(10) as u64;
            questions.push(
                json!({"image_id": image_id, "question": question, "question_id": question_id}),
            );
            annotations.push(
                json!({"image_id": image_id, "answer_type": "other", "question_type": category,
                                    "question_id": question_id, "answers": answers}),
            );
        }
        plan.json(
            format!("okvqa/OpenEnded_mscoco_{subset}_questions.json"),
            &questions_file(&info, subset, questions),
        );
        plan.json(
            format!("okvqa/mscoco_{subset}_annotations.json"),
            &annotations_file(&info, subset, annotations),
        );
    }
}

/// VizWiz questions (phone-photo style); dark photos are unanswerable.
fn vizwiz_question(
    kind: usize,
    s: &Scene,
    rng: &mut SplitMix64,
) -> (String, &'static str, Vec<(String, &'static str)>) {
    if s.dark {
        let q = ["What color is this thing?", "What does this say?"][kind % 2].to_owned();
        return (
            q,
            "unanswerable",
            [
                times(7, "unanswerable", "yes"),
                times(2, "unsuitable", "yes"),
                times(1, "too dark", "maybe"),
            ]
            .concat(),
        );
    }
    let qa = vqav2_question(kind, s, rng);
    let question = match kind % 5 {
        0 => "What color is this thing?".to_owned(),
        2 => "What shape is on this card?".to_owned(),
        3 => "How many shapes are on this paper?".to_owned(),
        _ => qa.question,
    };
    (question, qa.answer_type, qa.answers)
}

/// `vizwiz/`: val 10 records (2 unanswerable), train 16 (3 unanswerable; RICES pool), test 3
/// (`image` and `question` only).
pub fn vizwiz(plan: &mut Plan) {
    let mut rng = SplitMix64::new(0x0000_B112_0004);
    let mut kind = 0;
    for (split, count, first) in [("val", 10, 0), ("train", 16, 3), ("test", 3, 1)] {
        let mut records = Vec::new();
        for n in 0..count {
            let (w, h) = *rng.pick(&[(120, 160), (120, 160), (160, 120)]);
            let mut s = Scene::random(&mut rng, class_of(n, first), w, h);
            s.dark = split != "test" && n % 5 == 3;
            let image = format!("VizWiz_{split}_{n:08}.jpg");
            plan.jpeg(format!("vizwiz/{split}/{image}"), s);
            let (question, answer_type, answers) = vizwiz_question(kind, &s, &mut rng);
            kind += 1;
            if split == "test" {
                records.push(json!({"image": image, "question": question}));
                continue;
            }
            let answers: Vec<Value> = answers
                .iter()
                .map(|(a, conf)| json!({"answer": a, "answer_confidence": conf}))
                .collect();
            records.push(json!({"image": image, "question": question, "answers": answers,
                                "answer_type": answer_type, "answerable": i64::from(!s.dark)}));
        }
        plan.json(format!("vizwiz/annotations/{split}.json"), &Value::Array(records));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vqa_question_has_ten_answers_and_its_majority_is_right() {
        let mut rng = SplitMix64::new(9);
        for class in 0..CLASSES {
            let s = scene(&mut rng, class);
            for kind in 0..5 {
                let qa = vqav2_question(kind, &s, &mut rng);
                assert_eq!(qa.answers.len(), 10, "{}", qa.question);
                let top = most_frequent(&qa.answers);
                match kind {
                    0 => assert_eq!(top, colour(class)),
                    2 => assert_eq!(top, shape(class)),
                    3 => assert_eq!(top, "1"),
                    _ => {}
                }
            }
        }
        assert_eq!(most_frequent(&[times(2, "b", "yes"), times(2, "a", "yes")].concat()), "b");
    }
}
