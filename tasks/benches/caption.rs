//! Caption metrics with PTB tokenization on 5,000 images x 5 references (synthetic COCO-like
//! captions).
//!
//! Run: `cargo bench -p tasks --bench caption`. Times the Rust pipeline (tokenize candidates and
//! references, then CIDEr-D; and `caption::score`: tokenize + BLEU + ROUGE-L + CIDEr-D), then,
//! when `python3` with `pycocoevalcap` is available, runs `benches/caption_reference.py` on the
//! same data to time the reference (CoreNLP PTBTokenizer via Java if present, and the Python
//! `Bleu`, `Rouge`, `Cider` scorers on the pre-tokenized strings) and to check that both give the
//! same tokens and scores. It also writes the data as an `emu-eval metric caption` input,
//! `target/caption-bench/input.json`, for `benches/caption_command.py` (command-level timing).
//! `CAPTION_BENCH_SKIP_REFERENCE=1` skips the reference.
use std::process::Command;
use std::time::Instant;

use serde_json::json;
use tasks::metrics::caption::{self, CaptionItem};
use tasks::metrics::result::Detail;
use tasks::metrics::{bleu, cider, ptb, rouge};
use tasks::rng::SplitMix64;

const IMAGES: usize = 5_000;
const REFS: usize = 5;
const RUNS: usize = 7;

const SUBJ: &[&str] = &[
    "a man",
    "a woman",
    "two dogs",
    "a cat",
    "a group of people",
    "a young boy",
    "a little girl",
    "an elderly man",
    "a baseball player",
    "a giraffe",
    "a herd of zebras",
    "a train",
    "a red bus",
    "a plate of food",
    "a surfer",
    "a skateboarder",
    "a tennis player",
    "two men",
    "a bowl of fruit",
    "a large elephant",
    "a brown horse",
    "a teddy bear",
    "a child",
    "a couple",
    "a motorcycle",
    "a white truck",
    "a kitchen",
    "a living room",
    "a pizza",
    "a clock tower",
];
const VERB: &[&str] = &[
    "sitting on",
    "standing next to",
    "riding",
    "holding",
    "eating",
    "walking down",
    "looking at",
    "playing with",
    "flying over",
    "parked near",
    "lying on",
    "jumping over",
    "cutting",
    "carrying",
    "waiting for",
    "swinging",
    "is sitting on",
    "is standing in",
    "is riding",
    "that is on",
    "with",
    "covered in",
    "filled with",
];
const OBJ: &[&str] = &[
    "a bench",
    "the beach",
    "a wave",
    "a frisbee",
    "a sandwich",
    "the street",
    "a wooden table",
    "a laptop",
    "a kite",
    "a bed",
    "the snow",
    "a grassy field",
    "an umbrella",
    "some broccoli",
    "a large clock",
    "a cell phone",
    "a toilet",
    "an orange",
    "a surfboard",
    "a skateboard",
    "a tennis racket",
    "the tracks",
    "a fire hydrant",
    "a stop sign",
    "a vase of flowers",
    "a computer monitor",
    "a baseball bat",
    "a bunch of bananas",
    "a dirt road",
    "the water",
];
const PLACE: &[&str] = &[
    "in the park",
    "at night",
    "on a sunny day",
    "near the water",
    "in a kitchen",
    "in a field",
    "on the sidewalk",
    "in front of a building",
    "at the airport",
    "next to a fence",
    "in the city",
    "on a table",
    "in the snow",
    "under a tree",
    "at the zoo",
    "on the ocean",
    "in a room",
    "by the road",
    "during the day",
    "with trees behind",
];

fn caption(rng: &mut SplitMix64) -> String {
    let mut s = format!("{} {} {}", rng.pick(SUBJ), rng.pick(VERB), rng.pick(OBJ));
    if rng.uniform() < 0.7 {
        s.push(' ');
        s.push_str(rng.pick::<&str>(PLACE));
    }
    if rng.uniform() < 0.1 {
        s = s.replacen("man ", "man's ", 1);
    }
    if rng.uniform() < 0.1 {
        s = s.replacen(' ', ", ", 1);
    }
    if rng.uniform() < 0.5 {
        s.push('.');
    }
    if rng.uniform() < 0.6 {
        let mut c = s.chars();
        s = c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default();
    }
    s
}

/// CPU time of this process in seconds, all threads (sum of `/proc/self/task/*/schedstat`);
/// `None` where that file does not exist. The machine may be shared, so CPU time is reported
/// next to wall time.
fn cpu_seconds() -> Option<f64> {
    let mut ns = 0u64;
    for t in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 * 1e-9)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut rng = SplitMix64::new(0x9E37_79B9_7F4A_7C15);
    let refs_raw: Vec<Vec<String>> =
        (0..IMAGES).map(|_| (0..REFS).map(|_| caption(&mut rng)).collect()).collect();
    let cands_raw: Vec<String> = (0..IMAGES).map(|_| caption(&mut rng)).collect();
    let words: usize =
        refs_raw.iter().flatten().chain(&cands_raw).map(|s| s.split(' ').count()).sum();
    println!(
        "caption bench: {IMAGES} images x {REFS} refs, {:.1} words/caption, rayon threads {}",
        words as f64 / (IMAGES * (REFS + 1)) as f64,
        rayon::current_num_threads()
    );

    let mut t_tok = Vec::new();
    let mut t_cider = Vec::new();
    let mut t_total = Vec::new();
    let mut last = None;
    let cpu0 = cpu_seconds();
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let cands = ptb::tokenize_captions(&cands_raw);
        let flat: Vec<String> = refs_raw.iter().flatten().cloned().collect();
        let flat_tok = ptb::tokenize_captions(&flat);
        let refs: Vec<Vec<String>> = flat_tok.chunks(REFS).map(|c| c.to_vec()).collect();
        let t1 = Instant::now();
        let (score, per) = cider::cider_d(&cands, &refs);
        let t2 = Instant::now();
        t_tok.push((t1 - t0).as_secs_f64());
        t_cider.push((t2 - t1).as_secs_f64());
        t_total.push((t2 - t0).as_secs_f64());
        last = Some((cands, refs, score, per));
    }
    let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| (b - a) / RUNS as f64);
    let Some((cands, refs, score, per)) = last else { return };
    let (tok, cid, tot) = (median(t_tok), median(t_cider), median(t_total));
    println!("rust: tokenize {:.1} ms, cider-d {:.1} ms, total {:.1} ms wall (median of {RUNS}); CIDEr-D = {score:.6}",
        tok * 1e3, cid * 1e3, tot * 1e3);
    if let Some(c) = cpu {
        println!("rust: total {:.1} ms CPU per run (all threads, mean of {RUNS})", c * 1e3);
    }

    // BLEU and ROUGE-L alone, on the tokenized strings.
    let (mut t_bleu, mut t_rouge) = (Vec::new(), Vec::new());
    let (mut c_bleu, mut c_rouge) = (0.0, 0.0);
    for _ in 0..RUNS {
        let (t0, c0) = (Instant::now(), cpu_seconds().unwrap_or(0.0));
        std::hint::black_box(bleu::bleu(&cands, &refs));
        let (t1, c1) = (Instant::now(), cpu_seconds().unwrap_or(0.0));
        std::hint::black_box(rouge::rouge_l(&cands, &refs));
        t_bleu.push((t1 - t0).as_secs_f64());
        t_rouge.push(t1.elapsed().as_secs_f64());
        c_bleu += c1 - c0;
        c_rouge += cpu_seconds().unwrap_or(0.0) - c1;
    }
    println!(
        "rust: bleu {:.1} ms, rouge-l {:.1} ms wall (median of {RUNS}); {:.1} ms, {:.1} ms CPU (all threads, mean)",
        median(t_bleu) * 1e3,
        median(t_rouge) * 1e3,
        c_bleu / RUNS as f64 * 1e3,
        c_rouge / RUNS as f64 * 1e3
    );

    // The whole library call behind `emu-eval metric caption` (aggregate only).
    let items: Vec<CaptionItem> = (0..IMAGES)
        .map(|i| CaptionItem {
            image_id: json!(i),
            candidate: cands_raw[i].as_str().into(),
            references: refs_raw[i].iter().map(|r| r.as_str().into()).collect(),
        })
        .collect();
    let mut t_full = Vec::new();
    let mut full = None;
    let c0 = cpu_seconds();
    for _ in 0..RUNS {
        let t0 = Instant::now();
        full = Some(caption::score(&items, Detail::Aggregate));
        t_full.push(t0.elapsed().as_secs_f64());
    }
    let Some(full) = full else { return };
    let c_full = cpu_seconds().zip(c0).map_or(f64::NAN, |(b, a)| (b - a) / RUNS as f64);
    let all = median(t_full);
    let c = &full.corpus;
    println!(
        "rust: caption::score (tokenize + BLEU-1..4 + ROUGE-L + CIDEr-D) {:.1} ms wall (median of {RUNS}), \
         {:.1} ms CPU (all threads, mean); Bleu_4 = {:.6}, ROUGE_L = {:.6}, CIDEr = {:.6}",
        all * 1e3, c_full * 1e3, c.bleu_4, c.rouge_l, c.cider
    );

    // Same data for the reference.
    let dump = json!({
        "images": (0..IMAGES).map(|i| json!({
            "candidate": cands_raw[i], "references": refs_raw[i],
            "candidate_tokenized": cands[i], "references_tokenized": refs[i], "cider": per[i],
        })).collect::<Vec<_>>(),
        "cider": score,
        "corpus": c,
    });
    let input = json!({
        "images": items.iter().map(|it| json!({
            "image_id": it.image_id, "candidate": it.candidate, "references": it.references,
        })).collect::<Vec<_>>(),
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/caption-bench");
    let path = dir.join("data.json");
    let input_path = dir.join("input.json");
    let written = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(&path, dump.to_string()))
        .and_then(|_| std::fs::write(&input_path, input.to_string()));
    if written.is_err() {
        println!("reference: could not write {}", dir.display());
        return;
    }
    println!("wrote {} (`emu-eval metric caption` input)", input_path.display());
    if std::env::var_os("CAPTION_BENCH_SKIP_REFERENCE").is_some() {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/caption_reference.py");
    match Command::new("python3").arg(script).arg(&path).output() {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            print!("{text}");
            let v: serde_json::Value =
                serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap_or_default();
            let cider_s = v["cider_s"].as_f64();
            let tok_s = v["tokenizer_s"].as_f64().unwrap_or(1.5);
            let tok_note =
                if v["tokenizer_s"].is_f64() { "measured" } else { "not available, 1.5 s assumed" };
            if let Some(c) = cider_s {
                println!(
                    "speed-up (wall): cider-d {:.0}x, tokenize {:.0}x (java {tok_note}), total {:.0}x",
                    c / cid, tok_s / tok, (c + tok_s) / tot
                );
            }
            if let (Some(c), Some(b), Some(r)) =
                (cider_s, v["bleu_s"].as_f64(), v["rouge_s"].as_f64())
            {
                println!(
                    "speed-up (wall), tokenize + BLEU + ROUGE-L + CIDEr-D: {:.0}x ({:.2} s vs {:.1} ms)",
                    (tok_s + b + r + c) / all, tok_s + b + r + c, all * 1e3
                );
            }
            let ref_cpu =
                v["cider_cpu_s"].as_f64().zip(v["tokenizer_cpu_s"].as_f64()).map(|(a, b)| a + b);
            if let (Some(r), Some(c)) = (ref_cpu, cpu) {
                println!("speed-up (CPU time, tokenize + cider-d): {:.0}x", r / c);
            }
        }
        Ok(out) => println!(
            "reference not run: {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        ),
        Err(e) => println!("reference not run: python3: {e}"),
    }
}
