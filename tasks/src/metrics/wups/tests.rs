//! WUPS unit tests and golden parity (`shared/golden/wups/`, tolerance 1e-12 absolute, every case).
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;
use crate::metrics::wordnet::tests::wordnet;

const TOL: f64 = 1e-12;

fn golden(name: &str) -> Value {
    let path =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden/wups/")).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn to_json<T: serde::Serialize>(r: &T) -> Value {
    serde_json::to_value(r).expect("serialize")
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("expected a number, found {v}"))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("expected a string, found {v}"))
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() <= TOL, "{what}: got {got}, want {want}");
}

#[test]
fn threshold_downweights_below_alpha() {
    assert_eq!(threshold(0.5, 0.9), 0.05);
    assert_eq!(threshold(0.95, 0.9), 0.95);
    assert_eq!(threshold(0.5, 0.0), 0.5);
}

#[test]
fn directed_product_skips_zero_words() {
    // Second word has no match: skipped, not zeroing the product.
    let sim = vec![vec![0.5, 0.8], vec![0.0, 0.0]];
    assert_eq!(wups_directed(&sim, 0.0), 0.8);
    assert_eq!(wups_directed(&[vec![0.0]], 0.0), 0.0);
    assert_eq!(wups_directed(&[], 0.0), 0.0);
}

#[test]
fn exact_string_shortcut_and_case() {
    let wn = wordnet();
    assert_eq!(wup("dog", "dog", 0.9, wn), 1.0);
    let v = wup("Dog", "dog", 0.0, wn);
    assert!((v - 13.0 / 14.0).abs() < 1e-15, "{v}");
    assert_eq!(wup("plugh", "dog", 0.0, wn), 0.0);
    assert_eq!(get_wups("", "dog", 0.0, wn), 0.0);
    assert_eq!(get_wups("dog", "dog", 0.9, wn), 1.0);
}

#[test]
fn golden_wups_pairs() {
    let wn = wordnet();
    let cases = golden("wups_pairs.json");
    let cases = cases.as_array().expect("array");
    assert!(!cases.is_empty());
    let mut items = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let (p, a) = (text(&c["prediction"]), text(&c["answer"]));
        for (alpha, key) in ALPHAS.iter().zip(KEYS) {
            close(get_wups(p, a, *alpha, wn), num(&c[key]), &format!("[{i}] {p:?} vs {a:?} {key}"));
        }
        items.push(WupsItem {
            prediction: p.into(),
            answer: a.into(),
            answer_add: None,
            qtype: None,
        });
    }
    // The batch path (both thresholds at once, parallel) gives the same numbers; plain WUPS keeps
    // its list whatever the detail asked for.
    let result = score(&items, false, wn, Detail::Aggregate);
    let out = to_json(&result);
    let out = out.as_array().expect("array");
    assert_eq!(out.len(), cases.len());
    for (i, (o, c)) in out.iter().zip(cases).enumerate() {
        assert_eq!(o["prediction"], c["prediction"]);
        for key in KEYS {
            close(num(&o[key]), num(&c[key]), &format!("score [{i}] {key}"));
        }
    }
    let per = result.per_sample().expect("per-question scores");
    let mean = per.iter().map(|p| p.expect("score")).sum::<f64>() / per.len() as f64;
    let want = 100.0 * cases.iter().map(|c| num(&c["wups_0.0"])).sum::<f64>() / cases.len() as f64;
    close(mean, want, "per-sample mean");
    close(result.headline().value.expect("headline"), want, "headline");
}

#[test]
fn golden_first_synsets() {
    let wn = wordnet();
    let g = golden("wordnet_wup.json");
    let first = g["first_synset"].as_object().expect("object");
    assert!(!first.is_empty());
    for (word, want) in first {
        let got = wn.synsets(word).first().map(|s| wn.synset_name(s));
        assert_eq!(got.as_deref(), want.as_str(), "synsets({word:?})[0]");
        assert_eq!(wn.first_synset(word), wn.synsets(word).first().copied(), "{word}");
    }
}

#[test]
fn golden_word_pairs() {
    let wn = wordnet();
    let g = golden("wordnet_wup.json");
    let pairs = g["word_pairs"].as_array().expect("array");
    assert!(!pairs.is_empty());
    for (i, p) in pairs.iter().enumerate() {
        let (w1, w2) = (text(&p["word1"]), text(&p["word2"]));
        let what = format!("[{i}] {w1:?} {w2:?}");
        let s1 = wn.synsets(w1).first().copied();
        let s2 = wn.synsets(w2).first().copied();
        assert_eq!(
            s1.map(|s| wn.synset_name(&s)).as_deref(),
            p["synset1"].as_str(),
            "{what} synset1"
        );
        assert_eq!(
            s2.map(|s| wn.synset_name(&s)).as_deref(),
            p["synset2"].as_str(),
            "{what} synset2"
        );
        if let (Some(a), Some(b)) = (s1, s2) {
            match (wn.wup_similarity(&a, &b), p["wup_similarity_raw"].as_f64()) {
                (Some(got), Some(want)) => close(got, want, &format!("{what} raw")),
                (got, _) => assert!(
                    got.is_none() && p["wup_similarity_raw"].is_null(),
                    "{what} raw: got {got:?}"
                ),
            }
        } else {
            assert!(p["wup_similarity_raw"].is_null(), "{what}: raw given but a synset is missing");
        }
        close(wup(w1, w2, 0.0, wn), num(&p["wup_alpha_0.0"]), &format!("{what} alpha 0"));
        close(wup(w1, w2, 0.9, wn), num(&p["wup_alpha_0.9"]), &format!("{what} alpha 0.9"));
    }
}

fn golden_items(g: &Value) -> Vec<WupsItem> {
    let qs = g["questions"].as_array().expect("questions");
    qs.iter()
        .map(|q| WupsItem {
            prediction: text(&q["prediction"]).into(),
            answer: text(&q["answer"]).into(),
            answer_add: q.get("answer_add").and_then(Value::as_str).map(str::to_owned),
            qtype: Some(text(&q["type"]).into()),
        })
        .collect()
}

fn compare_aggregate(got: &Value, want: &Value) {
    let want = want.as_object().expect("aggregate");
    assert!(!want.is_empty());
    for (key, w) in want {
        let g = &got[key];
        match w {
            Value::Object(per) => {
                for (t, v) in per {
                    close(num(&g[t]), num(v), &format!("{key}.{t}"));
                }
            }
            _ => close(num(g), num(w), key),
        }
    }
}

#[test]
fn golden_nextqa_eval() {
    let wn = wordnet();
    let g = golden("nextqa_eval.json");
    let items = golden_items(&g);
    let result = score(&items, true, wn, Detail::PerSample);
    let out = to_json(&result);
    let qs = g["questions"].as_array().expect("questions");
    let got = out["questions"].as_array().expect("questions");
    assert_eq!(got.len(), qs.len());
    for (i, (o, q)) in got.iter().zip(qs).enumerate() {
        assert_eq!(o["type"], q["type"]);
        for key in KEYS {
            close(num(&o[key]), num(&q[key]), &format!("question [{i}] {key}"));
        }
    }
    compare_aggregate(&out["aggregate"], &g["aggregate"]);
    assert_eq!(out["note"], PREPROCESSING_NOTE);
    // Headline: WUPS_all_0.0, the mean of the per-question values x 100.
    let h = result.headline();
    assert_eq!(h.name, "WUPS");
    close(h.value.expect("headline"), num(&g["aggregate"]["WUPS_all_0.0"]), "headline");
    let per = result.per_sample().expect("per-question scores");
    assert_eq!(per.len(), qs.len());
    for (i, (p, q)) in per.iter().zip(qs).enumerate() {
        close(p.expect("score"), 100.0 * num(&q["wups_0.0"]), &format!("per-sample [{i}]"));
    }
    assert_eq!(serde_json::from_value::<WupsResult>(out).expect("deserialize"), result);
    let agg = score(&items, true, wn, Detail::Aggregate);
    assert_eq!(agg.per_sample(), None);
    assert!(to_json(&agg).get("questions").is_none());
}

struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("emu_eval_wups_{}_{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        TempFile(path)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn score_file_nextqa_matches_golden_and_keeps_fields() {
    let wn = wordnet();
    let g = golden("nextqa_eval.json");
    // The golden questions without their scores, as an input file.
    let input: Vec<Value> = g["questions"]
        .as_array()
        .expect("questions")
        .iter()
        .map(|q| {
            let mut o = q.as_object().expect("object").clone();
            o.remove("wups_0.0");
            o.remove("wups_0.9");
            Value::Object(o)
        })
        .collect();
    let f = TempFile::new("nextqa.json", &serde_json::to_string(&input).expect("json"));
    let out = to_json(&score_file(f.path(), true, wn, Detail::PerSample).expect("scores"));
    assert_eq!(out["questions"][0]["qid"], g["questions"][0]["qid"]);
    compare_aggregate(&out["aggregate"], &g["aggregate"]);
}

#[test]
fn score_file_plain_list() {
    let wn = wordnet();
    let f = TempFile::new(
        "plain.json",
        r#"[{"prediction":"dog","answer":"dog","id":7},{"prediction":"cat","answer":"plugh","answer_add":"cat"}]"#,
    );
    let out = to_json(&score_file(f.path(), false, wn, Detail::PerSample).expect("scores"));
    assert_eq!(out[0]["id"], 7);
    assert_eq!(out[0]["wups_0.0"], 1.0);
    assert_eq!(out[1]["wups_0.9"], 1.0, "max over answer_add");
}

#[test]
fn score_file_errors_name_file_and_field() {
    let wn = wordnet();
    let cases = [
        (
            r#"[{"prediction":"a","answer":"b"},{"answer":"b"}]"#,
            false,
            "[1].prediction: missing field",
        ),
        (r#"[{"prediction":3,"answer":"b"}]"#, false, "[0].prediction: expected a string"),
        (
            r#"[{"prediction":"a","answer":"b","answer_add":1}]"#,
            false,
            "[0].answer_add: expected a string",
        ),
        (r#"[{"prediction":"a","answer":"b"}]"#, true, "[0].type: missing field"),
        (
            r#"[{"prediction":"a","answer":"b","type":"XX"}]"#,
            true,
            "[0].type: unknown question type",
        ),
        (r#"{"prediction":"a"}"#, false, "(root): expected an array"),
        (r#"[1]"#, false, "[0]: expected an object"),
        (r#"[{"prediction":"a",}]"#, false, "malformed JSON"),
    ];
    for (i, (text, nextqa, want)) in cases.iter().enumerate() {
        let f = TempFile::new(&format!("bad{i}.json"), text);
        let e = score_file(f.path(), *nextqa, wn, Detail::PerSample).expect_err(text);
        let msg = e.to_string();
        assert!(msg.starts_with(&f.path().display().to_string()), "{msg}");
        assert!(msg.contains(want), "{msg} should contain {want}");
    }
}

#[test]
fn aggregate_empty_type_is_null() {
    let items = vec![WupsItem {
        prediction: "a".into(),
        answer: "a".into(),
        answer_add: None,
        qtype: Some("TP".into()),
    }];
    let agg = to_json(&aggregate(&items, &[[1.0, 1.0]]));
    assert_eq!(agg["per_type_wups_0.0"]["TN"], 100.0);
    assert!(agg["per_type_wups_0.0"]["CW"].is_null());
    assert!(agg["WUPS_C_0.0"].is_null());
    assert_eq!(agg["WUPS_all_0.9"], 100.0);
    assert_eq!(agg["num_questions"]["TN"], 1);
}
