//! VQA accuracy on 200,000 synthetic questions x 10 answers (official and Emu variants; OKVQA and
//! VizWiz for information). Target: under 2 s per variant. When `python3` is available (and
//! `VQA_BENCH_REFERENCE` is not `0`) the same data is scored by `benches/vqa_reference.py`, a
//! transcription of the reference evaluate loops, and the overall accuracies are compared.
//! Run: `cargo bench -p tasks --bench vqa` (env `VQA_BENCH_N` changes the question count).
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};
use tasks::metrics::result::Detail;
use tasks::metrics::vqa::{score, score_file, tables::CONTRACTIONS, QuestionId, Variant, VqaItem};
use tasks::rng::SplitMix64;

const BASES: [&str; 40] = [
    "yes",
    "no",
    "2",
    "two",
    "3",
    "red",
    "white",
    "black and white",
    "dog",
    "the dog",
    "cat",
    "t-shirt",
    "1,000",
    "dont",
    "don't",
    "hot dogs",
    "tennis",
    "3.5",
    "frisbee",
    "none",
    "skateboarding",
    "left",
    "kitchen",
    "pizza",
    "baseball",
    "grass",
    "blue",
    "green",
    "1",
    "10",
    "man",
    "woman",
    "surfing",
    "giraffe",
    "umbrella",
    "snow",
    "water",
    "wood",
    "nothing",
    "sitting",
];
const QTYPES: [&str; 8] = [
    "is the",
    "what color is the",
    "how many",
    "what is the",
    "what sport is",
    "are there",
    "what",
    "does the",
];
const ATYPES: [&str; 3] = ["yes/no", "number", "other"];

/// A variant of an answer as annotators or a model might write it.
fn variant(rng: &mut SplitMix64, base: &str) -> String {
    match rng.below(10) {
        0 => base.to_uppercase(),
        1 => format!("{base}."),
        2 => format!("the {base}"),
        3 => format!(" {base} "),
        4 => format!("{base}!"),
        5 => format!("It's a {base}. More text"),
        6 => format!("{base}\n"),
        _ => base.to_owned(),
    }
}

fn synthetic(n: usize) -> Vec<VqaItem> {
    let mut rng = SplitMix64::new(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|i| {
            let base = *rng.pick(&BASES);
            let answers: Vec<String> = if rng.below(100) < 35 {
                vec![base.to_owned(); 10]
            } else {
                (0..10)
                    .map(|_| match rng.below(10) {
                        0..=5 => base.to_owned(),
                        6 | 7 => variant(&mut rng, base),
                        _ => rng.pick(&BASES).to_string(),
                    })
                    .collect()
            };
            let prediction = match rng.below(10) {
                0..=4 => base.to_owned(),
                5..=7 => variant(&mut rng, base),
                _ => rng.pick(&BASES).to_string(),
            };
            VqaItem {
                id: QuestionId::QuestionId(json!(i)),
                answers,
                prediction,
                question_type: Some(rng.pick(&QTYPES).to_string()),
                answer_type: Some(rng.pick(&ATYPES).to_string()),
                answerable: None,
                answerable_pred: None,
            }
        })
        .collect()
}

/// Best of `reps` runs, in seconds, and the last result.
fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..reps {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(r);
    }
    (best, last.expect("reps > 0"))
}

fn main() {
    let n: usize =
        std::env::var("VQA_BENCH_N").ok().and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let items = synthetic(n);
    println!(
        "VQA accuracy, {n} synthetic questions x 10 answers, rayon threads: {}",
        rayon::current_num_threads()
    );

    let mut ours = serde_json::Map::new();
    for v in [Variant::Official, Variant::Emu, Variant::Okvqa, Variant::Vizwiz] {
        let (secs, out) = time(3, || score(&items, v, Detail::PerSample));
        let overall = out.aggregate.overall;
        println!("  rust score({:<8}) best of 3: {secs:>7.3} s   overall {overall:.6}", v.name());
        ours.insert(v.name().into(), json!(overall));
    }

    // Same data through a file: read + parse + score.
    let dir = std::env::temp_dir().join(format!("vqa-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let qpath = dir.join("questions.json");
    let questions: Vec<Value> = items
        .iter()
        .map(|it| {
            json!({"question_id": it.id, "answers": it.answers, "prediction": it.prediction,
                   "question_type": it.question_type, "answer_type": it.answer_type})
        })
        .collect();
    std::fs::write(&qpath, serde_json::to_vec(&json!({ "questions": questions })).expect("json"))
        .expect("write");
    let (secs, _) =
        time(3, || score_file(&qpath, Variant::Official, Detail::PerSample).expect("score_file"));
    println!("  rust score_file(official) incl. read+parse, best of 3: {secs:.3} s");

    if std::env::var("VQA_BENCH_REFERENCE").as_deref() != Ok("0") {
        reference(&dir, &qpath, &ours);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs the Python transcription of the reference loops on the same file and compares results.
fn reference(dir: &Path, qpath: &Path, ours: &serde_json::Map<String, Value>) {
    let cpath = dir.join("contractions.json");
    let table: serde_json::Map<String, Value> =
        CONTRACTIONS.iter().map(|&(k, v)| (k.to_owned(), json!(v))).collect();
    std::fs::write(&cpath, Value::Object(table).to_string()).expect("write");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/vqa_reference.py");
    let out = match Command::new("python3").arg(script).arg(qpath).arg(&cpath).output() {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            return println!("  reference: python3 failed: {}", String::from_utf8_lossy(&o.stderr))
        }
        Err(e) => return println!("  reference: python3 not available ({e})"),
    };
    let r: Value = serde_json::from_slice(&out.stdout).expect("reference JSON");
    for name in ["official", "emu"] {
        let (secs, overall) = (
            r[name]["seconds"].as_f64().unwrap_or(f64::NAN),
            r[name]["overall"].as_f64().unwrap_or(f64::NAN),
        );
        let mine = ours[name].as_f64().unwrap_or(f64::NAN);
        println!("  python reference loop ({name:<8}):      {secs:>7.3} s   overall {overall:.6}");
        assert!((mine - overall).abs() < 1e-9, "{name}: rust {mine} vs reference {overall}");
    }
    println!("  overall accuracies agree with the reference (|diff| < 1e-9 on the 0-100 scale)");
}
