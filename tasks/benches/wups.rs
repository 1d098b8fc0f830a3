//! WUPS benchmark: WordNet load time, get_wups per pair, NExT-QA scoring throughput.
//! Run: `cargo bench -p tasks --bench wups`. Inputs: `shared/golden/wups/` (read in place).
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use tasks::metrics::result::{Detail, MetricResult};
use tasks::metrics::wordnet::WordNet;
use tasks::metrics::wups::{self, WupsItem};

fn golden(name: &str) -> Value {
    let path =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden/wups/")).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // 1. Loading the database.
    let mut loads = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let wn = WordNet::load_default().unwrap_or_else(|e| panic!("{e}"));
        loads.push(t.elapsed());
        drop(wn);
    }
    println!(
        "WordNet::load_default: median {:?}, min {:?} (10 runs)",
        median(loads.clone()),
        loads.iter().min().unwrap()
    );
    let wn = WordNet::load_default().unwrap_or_else(|e| panic!("{e}"));

    // 2. get_wups on every golden pair, both thresholds, single thread.
    let pairs = golden("wups_pairs.json");
    let pairs: Vec<(String, String)> = pairs
        .as_array()
        .expect("array")
        .iter()
        .map(|c| {
            (c["prediction"].as_str().unwrap().to_owned(), c["answer"].as_str().unwrap().to_owned())
        })
        .collect();
    let reps = 5;
    let t = Instant::now();
    let mut sink = 0.0;
    for _ in 0..reps {
        for (p, a) in &pairs {
            sink += wups::get_wups(p, a, 0.0, &wn) + wups::get_wups(p, a, 0.9, &wn);
        }
    }
    let el = t.elapsed();
    let calls = (reps * pairs.len() * 2) as f64;
    println!(
        "get_wups: {} pairs x 2 alphas x {reps}: {:?} total, {:.1} us/call (checksum {sink:.6})",
        pairs.len(),
        el,
        el.as_secs_f64() * 1e6 / calls
    );

    // 3. NExT-QA scoring: the golden questions repeated to 5,000 (about a NExT-QA split).
    let g = golden("nextqa_eval.json");
    let qs = g["questions"].as_array().expect("questions");
    let items: Vec<WupsItem> = qs
        .iter()
        .cycle()
        .take(5000)
        .map(|q| WupsItem {
            prediction: q["prediction"].as_str().unwrap().into(),
            answer: q["answer"].as_str().unwrap().into(),
            answer_add: q.get("answer_add").and_then(Value::as_str).map(str::to_owned),
            qtype: q["type"].as_str().map(str::to_owned),
        })
        .collect();
    let mut runs = Vec::new();
    let mut all = 0.0;
    for _ in 0..3 {
        let t = Instant::now();
        let out = wups::score(&items, true, &wn, Detail::PerSample);
        runs.push(t.elapsed());
        all = out.headline().value.unwrap_or(f64::NAN);
    }
    println!(
        "score(nextqa) 5000 questions, rayon ({} threads): median {:?} (WUPS_all_0.0 {all:.4})",
        rayon::current_num_threads(),
        median(runs)
    );
}
