//! `emu-eval metric caption`: BLEU-1..4, ROUGE-L, CIDEr-D over PTB-tokenized captions
//! (metrics.md section 1), driven as `COCOEvalCap.evaluate` does: references and candidates are
//! tokenized separately, then every scorer sees the tokenized strings, images in input order.
use std::borrow::Cow;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::result::{finite_or_none, null_as_nan, Detail, Headline, MetricResult};
use super::{bleu, cider, ptb, rouge};
use crate::input::{index, join, parse_json, read_text, InputError, Json};

/// Explains the metrics that pycocoevalcap prints but this harness does not compute.
pub const NOTE: &str =
    "METEOR and SPICE are not computed (out of scope: they need external Java tools)";

/// Scores `{"images":[{"image_id","candidate","references"}]}`.
pub fn score_file(path: &Path, detail: Detail) -> Result<CaptionResult, InputError> {
    let text = read_text(path)?;
    Ok(score(&parse_items(path, &text)?, detail))
}

/// One image to score: raw (untokenized) candidate and references, borrowed from the input
/// text where they have no escapes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CaptionItem<'a> {
    pub image_id: Value,
    #[serde(borrow)]
    pub candidate: Cow<'a, str>,
    #[serde(borrow)]
    pub references: Vec<Text<'a>>,
}

/// A caption string (a newtype so that `Vec<Text>` borrows from the input too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Text<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text(Cow::Borrowed(s))
    }
}

impl From<String> for Text<'_> {
    fn from(s: String) -> Self {
        Text(Cow::Owned(s))
    }
}

/// The input file's shape; other fields are ignored.
#[derive(Deserialize)]
struct CaptionFile<'a> {
    #[serde(borrow)]
    images: Vec<CaptionItem<'a>>,
}

/// Reads the `images` list of the file's text. The typed parse is the fast path; input it
/// rejects (a type error, a duplicate key, an empty list) is walked again as a `Value`, which
/// accepts duplicate keys as `serde_json::Value` does and names the field of any error
/// (`images[3].references`).
pub fn parse_items<'t>(path: &Path, text: &'t str) -> Result<Vec<CaptionItem<'t>>, InputError> {
    match serde_json::from_str::<CaptionFile<'t>>(text) {
        Ok(f) if !f.images.is_empty() && f.images.iter().all(|it| !it.references.is_empty()) => {
            Ok(f.images)
        }
        _ => parse_value(path, &parse_json(path, text)?),
    }
}

/// The `Value` walk of [`parse_items`].
fn parse_value(path: &Path, root: &Value) -> Result<Vec<CaptionItem<'static>>, InputError> {
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
            let candidate = Cow::Owned(j.str(j.get(img, &field, "candidate")?, &cf)?.to_owned());
            let rf = join(&field, "references");
            let references: Vec<Text> = j
                .strings(j.get(img, &field, "references")?, &rf)?
                .into_iter()
                .map(Text::from)
                .collect();
            if references.is_empty() {
                return Err(j.err(&rf, "empty list (at least one reference is needed)"));
            }
            Ok(CaptionItem { image_id, candidate, references })
        })
        .collect()
}

/// Tokenized captions of a corpus: one candidate and its references per image.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokenized {
    pub candidates: Vec<String>,
    pub references: Vec<Vec<String>>,
}

/// Tokenizes references and candidates (two tokenizer runs, as `COCOEvalCap.evaluate`).
pub fn tokenize(items: &[CaptionItem]) -> Tokenized {
    let cands: Vec<&str> = items.iter().map(|it| it.candidate.as_ref()).collect();
    let flat: Vec<&str> =
        items.iter().flat_map(|it| it.references.iter().map(AsRef::as_ref)).collect();
    let (candidates, flat_tok) =
        rayon::join(|| ptb::tokenize_captions(&cands), || ptb::tokenize_captions(&flat));
    let mut flat_tok = flat_tok.into_iter();
    let references =
        items.iter().map(|it| flat_tok.by_ref().take(it.references.len()).collect()).collect();
    Tokenized { candidates, references }
}

/// BLEU-1..4, ROUGE-L and CIDEr-D, keyed as pycocoevalcap names them (values on its 0–1 scale).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CaptionScores {
    #[serde(rename = "Bleu_1", deserialize_with = "null_as_nan")]
    pub bleu_1: f64,
    #[serde(rename = "Bleu_2", deserialize_with = "null_as_nan")]
    pub bleu_2: f64,
    #[serde(rename = "Bleu_3", deserialize_with = "null_as_nan")]
    pub bleu_3: f64,
    #[serde(rename = "Bleu_4", deserialize_with = "null_as_nan")]
    pub bleu_4: f64,
    #[serde(rename = "ROUGE_L", deserialize_with = "null_as_nan")]
    pub rouge_l: f64,
    #[serde(rename = "CIDEr", deserialize_with = "null_as_nan")]
    pub cider: f64,
}

impl CaptionScores {
    fn new(bleu: &[f64; 4], rouge_l: f64, cider: f64) -> Self {
        let [bleu_1, bleu_2, bleu_3, bleu_4] = *bleu;
        CaptionScores { bleu_1, bleu_2, bleu_3, bleu_4, rouge_l, cider }
    }
}

/// Metric values for a corpus and per image.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub corpus: CaptionScores,
    pub images: Vec<CaptionScores>,
}

/// BLEU-1..4, ROUGE-L and CIDEr-D of already tokenized captions.
/// The three scorers run side by side (rayon), so that one's sequential part overlaps the others.
pub fn score_tokenized(tok: &Tokenized) -> Scores {
    let (c, r) = (&tok.candidates, &tok.references);
    // CIDEr-D first: this thread builds its n-gram table (sequential) while the others take
    // BLEU and ROUGE-L.
    let ((c_cider, i_cider), ((c_bleu, i_bleu), (c_rouge, i_rouge))) = rayon::join(
        || cider::cider_d(c, r),
        || rayon::join(|| bleu::bleu(c, r), || rouge::rouge_l(c, r)),
    );
    let images = (0..tok.candidates.len())
        .map(|i| CaptionScores::new(&i_bleu[i], i_rouge[i], i_cider[i]))
        .collect();
    Scores { corpus: CaptionScores::new(&c_bleu, c_rouge, c_cider), images }
}

/// One image of a [`CaptionResult`]: its tokenized captions and scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptionImage {
    pub image_id: Value,
    pub candidate_tokenized: String,
    pub references_tokenized: Vec<String>,
    pub scores: CaptionScores,
}

/// `emu-eval metric caption`'s output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptionResult {
    pub corpus: CaptionScores,
    /// Per image, in input order (with [`Detail::PerSample`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<CaptionImage>>,
    pub note: String,
}

impl MetricResult for CaptionResult {
    /// CIDEr-D x 100 (the paper prints 112.4 for 1.124).
    fn headline(&self) -> Headline {
        Headline { name: "CIDEr", value: finite_or_none(100.0 * self.corpus.cider) }
    }

    /// `None` per image: CIDEr-D's document frequencies come from the whole corpus.
    fn per_sample(&self) -> Option<Vec<Option<f64>>> {
        self.images.as_ref().map(|imgs| vec![None; imgs.len()])
    }

    fn clear_per_sample(&mut self) {
        self.images = None;
    }
}

/// Scores raw captions (tokenizes both sides); `score_file` returns the same.
/// Every item needs at least one reference (`score_file` rejects files without); an item
/// without references gets NaN (`null`) scores instead of the reference's crash.
pub fn score(items: &[CaptionItem], detail: Detail) -> CaptionResult {
    let tok = tokenize(items);
    let scores = score_tokenized(&tok);
    let images = detail.per_sample().then(|| {
        items
            .iter()
            .zip(tok.candidates)
            .zip(tok.references)
            .zip(scores.images)
            .map(|(((it, candidate_tokenized), references_tokenized), scores)| CaptionImage {
                image_id: it.image_id.clone(),
                candidate_tokenized,
                references_tokenized,
                scores,
            })
            .collect()
    });
    CaptionResult { corpus: scores.corpus, images, note: NOTE.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("caption-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn errors_name_file_and_field() {
        let p = write(
            "empty_refs.json",
            r#"{"images":[{"image_id":1,"candidate":"a","references":["a"]},
            {"image_id":2,"candidate":"b","references":[]}]}"#,
        );
        let e = score_file(&p, Detail::Aggregate).unwrap_err().to_string();
        assert!(e.contains("empty_refs.json: images[1].references: empty list"), "{e}");
        let p = write(
            "bad_ref.json",
            r#"{"images":[{"image_id":1,"candidate":"a","references":["a", 3]}]}"#,
        );
        let e = score_file(&p, Detail::Aggregate).unwrap_err().to_string();
        assert!(e.ends_with("images[0].references[1]: expected a string, found a number"), "{e}");
        let p = write("no_cand.json", r#"{"images":[{"image_id":1,"references":["a"]}]}"#);
        let e = score_file(&p, Detail::Aggregate).unwrap_err().to_string();
        assert!(e.ends_with("images[0].candidate: missing field"), "{e}");
        let p = write("no_images.json", r#"{"imgs":[]}"#);
        assert!(score_file(&p, Detail::Aggregate)
            .unwrap_err()
            .to_string()
            .ends_with("images: missing field"));
    }

    #[test]
    fn output_shape() {
        let items = vec![
            CaptionItem {
                image_id: json!(7),
                candidate: "A dog.".into(),
                references: vec!["a dog".into()],
            },
            CaptionItem {
                image_id: json!("x"),
                candidate: "a cat".into(),
                references: vec!["A cat!".into()],
            },
        ];
        let full = score(&items, Detail::PerSample);
        let v = serde_json::to_value(&full).expect("serialize");
        assert_eq!(v["images"][0]["image_id"], json!(7));
        assert_eq!(v["images"][0]["candidate_tokenized"], json!("a dog"));
        assert_eq!(v["images"][1]["references_tokenized"], json!(["a cat"]));
        let keys: Vec<&String> = v["corpus"].as_object().expect("corpus").keys().collect();
        assert_eq!(keys, ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"]);
        assert!(v["note"].as_str().expect("note").contains("METEOR and SPICE"));
        assert_eq!(serde_json::from_value::<CaptionResult>(v).expect("deserialize"), full);

        let agg = score(&items, Detail::Aggregate);
        assert_eq!(agg.corpus, full.corpus);
        let v = serde_json::to_value(&agg).expect("serialize");
        let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["corpus", "note"]);
        assert_eq!(agg.per_sample(), None);
        assert_eq!(full.per_sample(), Some(vec![None, None]));
        let h = full.headline();
        assert_eq!((h.name, h.value), ("CIDEr", Some(100.0 * full.corpus.cider)));
    }

    #[test]
    fn nan_scores_print_null_and_read_back() {
        let items =
            vec![CaptionItem { image_id: json!(1), candidate: "a dog".into(), references: vec![] }];
        let r = score(&items, Detail::PerSample);
        assert!(r.corpus.cider.is_nan());
        let text = serde_json::to_string(&r).expect("serialize");
        assert!(text.contains(r#""CIDEr":null"#), "{text}");
        let back: CaptionResult = serde_json::from_str(&text).expect("deserialize");
        assert!(back.corpus.cider.is_nan());
        assert_eq!(r.headline().value, None);
    }
}

/// Parity with every case of `shared/golden/cider/` (README: tokenized strings identical,
/// BLEU/ROUGE-L/CIDEr within 1e-9 per image and corpus).
#[cfg(test)]
mod golden {
    use super::*;
    use crate::input::read_json;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden/cider");
    const TOL: f64 = 1e-9;
    const CORPORA: [&str; 5] = [
        "main.json",
        "single_image.json",
        "two_images.json",
        "duplicates_and_empty.json",
        "short_candidates.json",
    ];

    fn load(name: &str) -> Value {
        read_json(&Path::new(DIR).join(name)).expect("golden file")
    }

    fn strings(v: &Value) -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_str().expect("string").to_owned())
            .collect()
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
        let inputs: Vec<String> =
            cases.iter().map(|c| c["input"].as_str().expect("input").to_owned()).collect();
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
                candidates: imgs
                    .iter()
                    .map(|i| i["candidate_tokenized"].as_str().expect("c").to_owned())
                    .collect(),
                references: imgs.iter().map(|i| strings(&i["references_tokenized"])).collect(),
            };
            let s = score_tokenized(&tok);
            let values = |c: &CaptionScores| serde_json::to_value(c).expect("serialize");
            for (k, v) in values(&s.corpus).as_object().expect("corpus") {
                close(&format!("{name} corpus {k}"), v.as_f64().expect("number"), &g["corpus"][k]);
            }
            for (i, img) in imgs.iter().enumerate() {
                for (k, v) in values(&s.images[i]).as_object().expect("scores") {
                    close(
                        &format!("{name} images[{i}] {k}"),
                        v.as_f64().expect("number"),
                        &img["scores"][k],
                    );
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
                    candidate: i["candidate"].as_str().expect("candidate").into(),
                    references: strings(&i["references"]).into_iter().map(Text::from).collect(),
                })
                .collect();
            let out = serde_json::to_value(score(&items, Detail::PerSample)).expect("serialize");
            for (i, img) in imgs.iter().enumerate() {
                let o = &out["images"][i];
                assert_eq!(o["image_id"], img["image_id"]);
                assert_eq!(
                    o["candidate_tokenized"], img["candidate_tokenized"],
                    "{name} images[{i}] candidate"
                );
                assert_eq!(
                    o["references_tokenized"], img["references_tokenized"],
                    "{name} images[{i}] references"
                );
                for k in ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"] {
                    close(
                        &format!("{name} images[{i}] {k}"),
                        o["scores"][k].as_f64().expect("score"),
                        &img["scores"][k],
                    );
                }
            }
            for k in ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"] {
                close(
                    &format!("{name} corpus {k}"),
                    out["corpus"][k].as_f64().expect("score"),
                    &g["corpus"][k],
                );
            }
        }
    }
}
