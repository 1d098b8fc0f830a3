//! `emu-eval metric caption`: BLEU-1..4, ROUGE-L, CIDEr-D over PTB-tokenized captions
//! (metrics.md section 1), driven as `COCOEvalCap.evaluate` does: references and candidates are
//! tokenized separately, then every scorer sees the tokenized strings, images in input order.
use std::path::Path;

use serde_json::{json, Map, Value};

use super::{bleu, cider, ptb, rouge};
use crate::input::{index, join, read_json, InputError, Json};

/// Explains the metrics that pycocoevalcap prints but this harness does not compute.
pub const NOTE: &str = "METEOR and SPICE are not computed (out of scope: they need external Java tools)";

/// Scores `{"images":[{"image_id","candidate","references"}]}`; returns the contract JSON.
pub fn score_file(path: &Path) -> Result<Value, InputError> {
    let root = read_json(path)?;
    let items = parse_items(path, &root)?;
    Ok(score(&items))
}

/// Reads and validates the `images` list; errors name the field path (`images[3].references`).
fn parse_items(path: &Path, root: &Value) -> Result<Vec<CaptionItem>, InputError> {
    let j = Json::new(path);
    let images = j.array(j.get(root, "", "images")?, "images")?;
    if images.is_empty() {
        return Err(j.err("images", "no images to score"));
    }
    images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            let field = index("images", i);
            let image_id = j.get(img, &field, "image_id")?.clone();
            let cf = join(&field, "candidate");
            let candidate = j.str(j.get(img, &field, "candidate")?, &cf)?.to_owned();
            let rf = join(&field, "references");
            let references = j.strings(j.get(img, &field, "references")?, &rf)?;
            if references.is_empty() {
                return Err(j.err(&rf, "empty list (at least one reference is needed)"));
            }
            Ok(CaptionItem { image_id, candidate, references })
        })
        .collect()
}

/// One image to score: raw (untokenized) candidate and references.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionItem {
    pub image_id: Value,
    pub candidate: String,
    pub references: Vec<String>,
}

/// Tokenized captions of a corpus: one candidate and its references per image.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokenized {
    pub candidates: Vec<String>,
    pub references: Vec<Vec<String>>,
}

/// Tokenizes references and candidates (two tokenizer runs, as `COCOEvalCap.evaluate`).
pub fn tokenize(items: &[CaptionItem]) -> Tokenized {
    let cands: Vec<String> = items.iter().map(|it| it.candidate.clone()).collect();
    let candidates = ptb::tokenize_captions(&cands);
    let flat: Vec<String> = items.iter().flat_map(|it| it.references.iter().cloned()).collect();
    let mut flat_tok = ptb::tokenize_captions(&flat).into_iter();
    let references = items.iter().map(|it| flat_tok.by_ref().take(it.references.len()).collect()).collect();
    Tokenized { candidates, references }
}

/// Metric values for a corpus and per image, keyed as pycocoevalcap names them.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub corpus: Vec<(&'static str, f64)>,
    pub images: Vec<Vec<(&'static str, f64)>>,
}

const BLEU_KEYS: [&str; 4] = ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"];

/// BLEU-1..4, ROUGE-L and CIDEr-D of already tokenized captions.
pub fn score_tokenized(tok: &Tokenized) -> Scores {
    let (c_bleu, i_bleu) = bleu::bleu(&tok.candidates, &tok.references);
    let (c_rouge, i_rouge) = rouge::rouge_l(&tok.candidates, &tok.references);
    let (c_cider, i_cider) = cider::cider_d(&tok.candidates, &tok.references);
    let pack = |b: &[f64; 4], r: f64, c: f64| {
        let mut v: Vec<(&'static str, f64)> = BLEU_KEYS.iter().copied().zip(b.iter().copied()).collect();
        v.push(("ROUGE_L", r));
        v.push(("CIDEr", c));
        v
    };
    let images = (0..tok.candidates.len()).map(|i| pack(&i_bleu[i], i_rouge[i], i_cider[i])).collect();
    Scores { corpus: pack(&c_bleu, c_rouge, c_cider), images }
}

fn scores_json(s: &[(&'static str, f64)]) -> Value {
    Value::Object(s.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>())
}

/// Scores raw captions (tokenizes both sides); returns the same JSON as `score_file`.
/// Every item needs at least one reference (`score_file` rejects files without); an item
/// without references gets `null` (NaN) scores instead of the reference's crash.
pub fn score(items: &[CaptionItem]) -> Value {
    let tok = tokenize(items);
    let scores = score_tokenized(&tok);
    let images: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            json!({
                "image_id": it.image_id,
                "candidate_tokenized": tok.candidates[i],
                "references_tokenized": tok.references[i],
                "scores": scores_json(&scores.images[i]),
            })
        })
        .collect();
    json!({ "corpus": scores_json(&scores.corpus), "images": images, "note": NOTE })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("caption-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn errors_name_file_and_field() {
        let p = write("empty_refs.json", r#"{"images":[{"image_id":1,"candidate":"a","references":["a"]},
            {"image_id":2,"candidate":"b","references":[]}]}"#);
        let e = score_file(&p).unwrap_err().to_string();
        assert!(e.contains("empty_refs.json: images[1].references: empty list"), "{e}");
        let p = write("bad_ref.json", r#"{"images":[{"image_id":1,"candidate":"a","references":["a", 3]}]}"#);
        let e = score_file(&p).unwrap_err().to_string();
        assert!(e.ends_with("images[0].references[1]: expected a string, found a number"), "{e}");
        let p = write("no_cand.json", r#"{"images":[{"image_id":1,"references":["a"]}]}"#);
        let e = score_file(&p).unwrap_err().to_string();
        assert!(e.ends_with("images[0].candidate: missing field"), "{e}");
        let p = write("no_images.json", r#"{"imgs":[]}"#);
        assert!(score_file(&p).unwrap_err().to_string().ends_with("images: missing field"));
    }

    #[test]
    fn output_shape() {
        let items = vec![
            CaptionItem { image_id: json!(7), candidate: "A dog.".into(), references: vec!["a dog".into()] },
            CaptionItem { image_id: json!("x"), candidate: "a cat".into(), references: vec!["A cat!".into()] },
        ];
        let v = score(&items);
        assert_eq!(v["images"][0]["image_id"], json!(7));
        assert_eq!(v["images"][0]["candidate_tokenized"], json!("a dog"));
        assert_eq!(v["images"][1]["references_tokenized"], json!(["a cat"]));
        let keys: Vec<&String> = v["corpus"].as_object().expect("corpus").keys().collect();
        assert_eq!(keys, ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"]);
        assert!(v["note"].as_str().expect("note").contains("METEOR and SPICE"));
    }
}

/// Parity with every case of `shared/golden/cider/` (README: tokenized strings identical,
/// BLEU/ROUGE-L/CIDEr within 1e-9 per image and corpus).
#[cfg(test)]
mod golden {
    use super::*;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden/cider");
    const TOL: f64 = 1e-9;
    const CORPORA: [&str; 5] =
        ["main.json", "single_image.json", "two_images.json", "duplicates_and_empty.json", "short_candidates.json"];

    fn load(name: &str) -> Value {
        read_json(&Path::new(DIR).join(name)).expect("golden file")
    }

    fn strings(v: &Value) -> Vec<String> {
        v.as_array().expect("array").iter().map(|x| x.as_str().expect("string").to_owned()).collect()
    }

    fn close(what: &str, got: f64, want: &Value) {
        let want = want.as_f64().unwrap_or_else(|| panic!("{what}: golden value missing"));
        assert!((got - want).abs() <= TOL, "{what}: got {got}, want {want}");
    }

    #[test]
    fn tokenizer_cases() {
        let cases = load("tokenizer_cases.json");
        let cases = cases.as_array().expect("cases");
        assert!(!cases.is_empty());
        let inputs: Vec<String> = cases.iter().map(|c| c["input"].as_str().expect("input").to_owned()).collect();
        let got = ptb::tokenize_captions(&inputs);
        for (c, g) in cases.iter().zip(&got) {
            assert_eq!(g, c["tokenized"].as_str().expect("tokenized"), "input {:?}", c["input"]);
        }
    }

    /// Metrics from the recorded tokenized strings.
    #[test]
    fn metrics_from_recorded_tokens() {
        for name in CORPORA {
            let g = load(name);
            let imgs = g["images"].as_array().expect("images");
            let tok = Tokenized {
                candidates: imgs.iter().map(|i| i["candidate_tokenized"].as_str().expect("c").to_owned()).collect(),
                references: imgs.iter().map(|i| strings(&i["references_tokenized"])).collect(),
            };
            let s = score_tokenized(&tok);
            for (k, v) in &s.corpus {
                close(&format!("{name} corpus {k}"), *v, &g["corpus"][*k]);
            }
            for (i, img) in imgs.iter().enumerate() {
                for (k, v) in &s.images[i] {
                    close(&format!("{name} images[{i}] {k}"), *v, &img["scores"][*k]);
                }
            }
        }
    }

    /// Full pipeline from raw captions: tokenized strings identical, scores within tolerance.
    #[test]
    fn pipeline_from_raw_captions() {
        for name in CORPORA {
            let g = load(name);
            let imgs = g["images"].as_array().expect("images");
            let items: Vec<CaptionItem> = imgs
                .iter()
                .map(|i| CaptionItem {
                    image_id: i["image_id"].clone(),
                    candidate: i["candidate"].as_str().expect("candidate").to_owned(),
                    references: strings(&i["references"]),
                })
                .collect();
            let out = score(&items);
            for (i, img) in imgs.iter().enumerate() {
                let o = &out["images"][i];
                assert_eq!(o["image_id"], img["image_id"]);
                assert_eq!(o["candidate_tokenized"], img["candidate_tokenized"], "{name} images[{i}] candidate");
                assert_eq!(o["references_tokenized"], img["references_tokenized"], "{name} images[{i}] references");
                for k in ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"] {
                    close(&format!("{name} images[{i}] {k}"), o["scores"][k].as_f64().expect("score"), &img["scores"][k]);
                }
            }
            for k in ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"] {
                close(&format!("{name} corpus {k}"), out["corpus"][k].as_f64().expect("score"), &g["corpus"][k]);
            }
        }
    }
}
