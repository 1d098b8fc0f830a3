//! VisDial v1.0 (datasets.md §8): dialogs whose rounds index shared question and answer pools,
//! 100 answer options per round, and dense relevance for one round per val dialog.
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use tasks::rng::{sample_indices, SplitMix64};

use super::coco::{a, captions, scene, MAX_COCO_ID};
use super::plan::{class_of, Ids, Plan};
use super::scene::{colour, shape, Scene, CLASSES};

/// Answer options per round.
const OPTIONS: usize = 100;
/// Rounds of a train/val dialog.
const ROUNDS: usize = 10;

/// Something a dialog can ask about a scene; `key` groups answers that mean the same.
struct Fact {
    question: &'static str,
    key: String,
    answers: Vec<String>,
}

fn fact(question: &'static str, key: impl Into<String>, answers: &[&str]) -> Fact {
    Fact { question, key: key.into(), answers: answers.iter().map(|s| s.to_string()).collect() }
}

const YES: [&str; 4] = ["yes", "yes it is", "yeah", "i think so"];
const NO: [&str; 4] = ["no", "no it isn't", "nope", "not really"];

fn yes_no(question: &'static str, yes: bool) -> Fact {
    if yes {
        fact(question, "yes", &YES)
    } else {
        fact(question, "no", &NO)
    }
}

fn side_answers(side: &str) -> [&'static str; 3] {
    match side {
        "on the left" => ["on the left", "left side", "to the left"],
        "in the middle" => ["in the middle", "center", "in the center"],
        _ => ["on the right", "right side", "to the right"],
    }
}

/// The questions a dialog about `s` draws from (questions have no "?", answers are lower-case).
fn facts(s: &Scene) -> Vec<Fact> {
    let (c, sh) = (colour(s.class), shape(s.class));
    let shapes = [
        format!("{} {sh}", a(sh)),
        format!("it's {} {sh}", a(sh)),
        sh.to_owned(),
        format!("looks like {} {sh}", a(sh)),
    ];
    vec![
        fact(
            "which color does the shape have",
            format!("colour {c}"),
            &[c, &format!("it is {c}"), &format!("it's {c}"), &format!("looks {c}")],
        ),
        Fact {
            question: "what kind of shape is it",
            key: format!("shape {sh}"),
            answers: shapes.to_vec(),
        },
        yes_no("is it big", s.size_word() == "large"),
        fact("where is it in the picture", format!("side {}", s.side()), &side_answers(s.side())),
        fact("how many things are in the image", "count 1", &["1", "one", "just one", "only one"]),
        yes_no("is there any text", false),
        yes_no("are there any people", false),
        fact(
            "what color is the background",
            "background",
            &["white", "light gray", "off white", "very pale"],
        ),
        yes_no("is the shape solid", true),
        yes_no("is the image bright", !s.dark),
        yes_no("is the shape near the top", s.height_word() == "near the top"),
        yes_no("is it a photograph", false),
    ]
}

/// Answers no fact gives: plausible distractors.
#[rustfmt::skip]
const FILLERS: [&str; 40] = [
    "i can't tell", "maybe", "not sure", "hard to say", "i don't know", "possibly", "a few", "many", "it's blurry",
    "too dark to tell", "outdoors", "indoors", "daytime", "at night", "a dog", "a cat", "a car", "a tree", "the sky",
    "a table", "2", "two", "3", "three", "zero", "black", "brown", "pink", "grey", "an oval", "a heart", "a hexagon",
    "on the floor", "in a kitchen", "no idea", "sort of", "a little", "very large", "tiny", "it's a drawing",
];

/// The shared pools of one file: every answer any scene could get, plus fillers; the meaning key
/// of each answer (for dense relevance).
struct Pools {
    questions: Vec<&'static str>,
    answers: Vec<String>,
    key: BTreeMap<String, String>,
}

impl Pools {
    fn new(rng: &mut SplitMix64) -> Self {
        let mut key = BTreeMap::new();
        let mut questions = BTreeSet::new();
        for class in 0..CLASSES {
            // Left/top/small, middle/top/large, right/bottom/large: every answer a fact can give.
            for (cx, cy, radius) in [(5, 10, 5), (30, 10, 15), (55, 50, 15)] {
                let s = Scene {
                    class,
                    width: 60,
                    height: 60,
                    cx,
                    cy,
                    radius,
                    background: [230; 3],
                    dark: false,
                    seed: 0,
                };
                for f in facts(&s) {
                    questions.insert(f.question);
                    for ans in f.answers {
                        key.insert(ans, f.key.clone());
                    }
                }
            }
        }
        for (k, v) in YES.iter().map(|y| (y, "yes")).chain(NO.iter().map(|n| (n, "no"))) {
            key.insert(k.to_string(), v.to_owned());
        }
        for f in FILLERS {
            key.entry(f.to_owned()).or_insert_with(|| f.to_owned());
        }
        let answers: Vec<String> = key.keys().cloned().collect();
        let answers = sample_indices(answers.len(), answers.len(), rng.next_u64())
            .into_iter()
            .map(|i| answers[i].clone())
            .collect();
        let questions: Vec<&str> = questions.into_iter().collect();
        let questions = sample_indices(questions.len(), questions.len(), rng.next_u64())
            .into_iter()
            .map(|i| questions[i])
            .collect();
        Pools { questions, answers, key }
    }

    fn question(&self, q: &str) -> usize {
        self.questions.iter().position(|x| *x == q).expect("every fact question is in the pool")
    }

    fn answer(&self, a: &str) -> usize {
        self.answers.iter().position(|x| x == a).expect("every fact answer is in the pool")
    }

    /// 100 option indices holding `gt` and all its paraphrases; returns (options, gt_index).
    fn options(&self, gt: &str, rng: &mut SplitMix64) -> (Vec<usize>, usize) {
        let same: Vec<usize> = (0..self.answers.len())
            .filter(|&i| self.key[&self.answers[i]] == self.key[gt])
            .collect();
        let others: Vec<usize> = (0..self.answers.len()).filter(|i| !same.contains(i)).collect();
        let mut opts = same.clone();
        opts.extend(
            sample_indices(others.len(), OPTIONS - same.len(), rng.next_u64())
                .into_iter()
                .map(|i| others[i]),
        );
        let order = sample_indices(OPTIONS, OPTIONS, rng.next_u64());
        let opts: Vec<usize> = order.into_iter().map(|i| opts[i]).collect();
        let g = self.answer(gt);
        let gt_index = opts.iter().position(|&o| o == g).expect("the answer is among its options");
        (opts, gt_index)
    }

    /// Dense relevance: 1 for the answer, 0.8/0.6 alternately for paraphrases, 0 otherwise.
    fn relevance(&self, options: &[usize], gt: &str) -> Vec<f64> {
        let mut partial = 0;
        options
            .iter()
            .map(|&o| {
                let ans = &self.answers[o];
                if ans == gt {
                    1.0
                } else if self.key[ans] == self.key[gt] {
                    partial += 1;
                    if partial % 2 == 1 {
                        0.8
                    } else {
                        0.6
                    }
                } else {
                    0.0
                }
            })
            .collect()
    }
}

/// One dialog over `s` with `rounds` rounds. Rounds get options when `options(r)`; the last round
/// of a test dialog has no answer. Returns the dialog and, for `dense`, its dense entry.
fn dialog(
    pools: &Pools,
    s: &Scene,
    image_id: u64,
    rounds: usize,
    test: bool,
    dense: bool,
    rng: &mut SplitMix64,
) -> (Value, Option<Value>) {
    let facts = facts(s);
    let caption = captions(s, 1, rng.next_u64())[0].trim().trim_end_matches('.').to_lowercase();
    let dense_round = rng.below(rounds);
    let mut turns = Vec::new();
    let mut dense_entry = None;
    for (r, f) in sample_indices(facts.len(), rounds, rng.next_u64())
        .into_iter()
        .map(|i| &facts[i])
        .enumerate()
    {
        let gt = rng.pick(&f.answers).clone();
        let question = pools.question(f.question);
        let last = r + 1 == rounds;
        if test && !last {
            turns.push(json!({"question": question, "answer": pools.answer(&gt)}));
            continue;
        }
        let (options, gt_index) = pools.options(&gt, rng);
        if test {
            turns.push(json!({"question": question, "answer_options": options}));
            continue;
        }
        if dense && r == dense_round {
            dense_entry = Some(
                json!({"image_id": image_id, "round_id": r + 1, "gt_relevance": pools.relevance(&options, &gt)}),
            );
        }
        turns.push(json!({"question": question, "answer": pools.answer(&gt), "answer_options": options, "gt_index": gt_index}));
    }
    (json!({"image_id": image_id, "caption": caption, "dialog": turns}), dense_entry)
}

fn file(split: &str, pools: &Pools, dialogs: Vec<Value>) -> Value {
    json!({"version": "1.0", "split": split, "data": {"questions": pools.questions, "answers": pools.answers, "dialogs": dialogs}})
}

/// `visdial/`: val 1 dialog × 10 rounds (10 samples, 1 dense round), train 12 dialogs (RICES
/// pool; 9 images in `train2014/`, 3 in `val2014/`), test 2 dialogs of 3 and 10 rounds.
pub fn visdial(plan: &mut Plan) {
    let mut rng = SplitMix64::new(0x0D1A_0005);
    let mut ids = Ids::new(rng.next_u64());
    let mut class = 0;
    let mut next_scene = |rng: &mut SplitMix64| {
        class += 1;
        scene(rng, class_of(class, 3))
    };
    // val
    let pools = Pools::new(&mut rng);
    let s = next_scene(&mut rng);
    let id = ids.draw(1, MAX_COCO_ID);
    plan.jpeg(format!("visdial/VisualDialog_val2018/VisualDialog_val2018_{id:012}.jpg"), s);
    let (d, dense) = dialog(&pools, &s, id, ROUNDS, false, true, &mut rng);
    plan.json("visdial/visdial_1.0_val.json", &file("val2018", &pools, vec![d]));
    plan.json(
        "visdial/visdial_1.0_val_dense_annotations.json",
        &Value::Array(dense.into_iter().collect()),
    );
    // train: COCO ids in either folder
    let pools = Pools::new(&mut rng);
    let mut dialogs = Vec::new();
    for i in 0..12 {
        let s = next_scene(&mut rng);
        let id = ids.draw(1, MAX_COCO_ID);
        let subset = if i % 4 == 2 { "val2014" } else { "train2014" };
        plan.jpeg(format!("visdial/{subset}/COCO_{subset}_{id:012}.jpg"), s);
        dialogs.push(dialog(&pools, &s, id, ROUNDS, false, false, &mut rng).0);
    }
    plan.json("visdial/visdial_1.0_train.json", &file("train", &pools, dialogs));
    // test: only the last round is ranked
    let pools = Pools::new(&mut rng);
    let mut dialogs = Vec::new();
    for rounds in [3, ROUNDS] {
        let s = next_scene(&mut rng);
        let id = ids.draw(1, MAX_COCO_ID);
        plan.jpeg(format!("visdial/VisualDialog_test2018/VisualDialog_test2018_{id:012}.jpg"), s);
        dialogs.push(dialog(&pools, &s, id, rounds, true, false, &mut rng).0);
    }
    plan.json("visdial/visdial_1.0_test.json", &file("test2018", &pools, dialogs));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_hold_the_answer_once_and_relevance_follows_meaning() {
        let mut rng = SplitMix64::new(4);
        let pools = Pools::new(&mut rng);
        assert!(pools.answers.len() > OPTIONS, "{}", pools.answers.len());
        assert_eq!(pools.answers.iter().collect::<BTreeSet<_>>().len(), pools.answers.len());
        let (opts, g) = pools.options("looks red", &mut rng);
        assert_eq!(opts.len(), OPTIONS);
        assert_eq!(opts.iter().collect::<BTreeSet<_>>().len(), OPTIONS);
        assert_eq!(pools.answers[opts[g]], "looks red");
        let rel = pools.relevance(&opts, "looks red");
        assert_eq!(rel[g], 1.0);
        assert_eq!(
            rel.iter().filter(|&&r| r > 0.0).count(),
            4,
            "the answer and its three paraphrases"
        );
    }
}
