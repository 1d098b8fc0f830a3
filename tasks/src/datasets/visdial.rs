//! VisDial v1.0 (datasets.md §8, trap 7): questions/answers are indices into shared pools;
//! `gt_index` is 0-based, `round_id` 1-based; dense relevance for one round per val image; train
//! images in either COCO folder; test dialogs have 1–10 rounds and only the last is ranked.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::origin::Origin;
use super::{require, unknown_split, Content, Media, Sample, SampleId, Turn};
use crate::input::{index, read_json, InputError, Json};

pub const SPLITS: &[&str] = &["val", "test", "train"];
pub const DENSE_FILE: &str = "visdial_1.0_val_dense_annotations.json";

pub fn dialog_file(split: &str) -> Option<String> {
    SPLITS.contains(&split).then(|| format!("visdial_1.0_{split}.json"))
}

/// Image of a dialog: VisualDialog_{val,test}2018 for val/test; train tries `train2014/` then
/// `val2014/` (COCO ids).
pub fn image(dir: &Path, split: &str, image_id: u64) -> Media {
    let path: PathBuf = match split {
        "val" | "test" => {
            let folder = format!("VisualDialog_{split}2018");
            dir.join(&folder).join(format!("{folder}_{image_id:012}.jpg"))
        }
        _ => {
            let train = dir.join("train2014").join(format!("COCO_train2014_{image_id:012}.jpg"));
            let val = dir.join("val2014").join(format!("COCO_val2014_{image_id:012}.jpg"));
            if !train.exists() && val.exists() {
                val
            } else {
                train
            }
        }
    };
    let key = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Media::Image { key, path }
}

/// One raw round, indices checked against the pools.
struct Round {
    question: usize,
    answer: Option<usize>,
    options: Option<Vec<usize>>,
    gt_index: Option<usize>,
}

/// Collects every index problem of a file so one error can name all positions.
struct Problems<'a> {
    j: Json<'a>,
    list: Vec<InputError>,
    /// Where we are, for messages: `dialog 0, round 4` (round 1-based, as `round_id`).
    at: String,
}

impl Problems<'_> {
    fn index(
        &mut self,
        v: &Value,
        field: &str,
        len: usize,
        pool: &str,
    ) -> Result<Option<usize>, InputError> {
        let i = self.j.u64(v, field)? as usize;
        if i >= len {
            self.list.push(self.j.err(
                field,
                format!("index {i} is past the {pool} list ({len} entries) ({})", self.at),
            ));
            return Ok(None);
        }
        Ok(Some(i))
    }
}

pub fn load(dir: &Path, split: &str) -> Result<Vec<Sample>, InputError> {
    let rel = dialog_file(split).ok_or_else(|| unknown_split(dir, "visdial", split, SPLITS))?;
    let path = require(dir, &rel)?;
    let dense = if split == "val" { Some(load_dense(&require(dir, DENSE_FILE)?)?) } else { None };
    let root = read_json(&path)?;
    let j = Json::new(&path);
    let data = j.get(&root, "", "data")?;
    let questions = j.strings(j.get(data, "data", "questions")?, "data.questions")?;
    let answers = j.strings(j.get(data, "data", "answers")?, "data.answers")?;
    let dialogs = j.array(j.get(data, "data", "dialogs")?, "data.dialogs")?;
    let mut p = Problems { j: Json::new(&path), list: Vec::new(), at: String::new() };
    let mut samples = Vec::new();
    let mut dense_used = 0usize;
    for (d, dialog) in dialogs.iter().enumerate() {
        let f = index("data.dialogs", d);
        let image_id = j.u64(j.get(dialog, &f, "image_id")?, &format!("{f}.image_id"))?;
        let caption = j.str(j.get(dialog, &f, "caption")?, &format!("{f}.caption"))?.to_owned();
        let rf = format!("{f}.dialog");
        let raw = j.array(j.get(dialog, &f, "dialog")?, &rf)?;
        if raw.is_empty() {
            return Err(j.err(&rf, "dialog has no rounds"));
        }
        let mut rounds = Vec::with_capacity(raw.len());
        for (r, round) in raw.iter().enumerate() {
            let f = index(&rf, r);
            p.at = format!("dialog {d}, round {}", r + 1);
            let question = p.index(
                j.get(round, &f, "question")?,
                &format!("{f}.question"),
                questions.len(),
                "questions",
            )?;
            let answer = match j.opt(round, &f, "answer")? {
                Some(v) => p.index(v, &format!("{f}.answer"), answers.len(), "answers")?,
                None => None,
            };
            let options = match j.opt(round, &f, "answer_options")? {
                Some(v) if split != "train" => {
                    let of = format!("{f}.answer_options");
                    let mut opts = Vec::new();
                    for (k, o) in j.array(v, &of)?.iter().enumerate() {
                        opts.push(
                            p.index(o, &index(&of, k), answers.len(), "answers")?.unwrap_or(0),
                        );
                    }
                    Some(opts)
                }
                _ => None,
            };
            let gt_index = match j.opt(round, &f, "gt_index")? {
                Some(v) if split != "train" => {
                    let gf = format!("{f}.gt_index");
                    let n = options.as_ref().map_or(0, Vec::len);
                    let g = p.index(v, &gf, n, "answer_options")?;
                    if let (Some(g), Some(opts), Some(a)) = (g, &options, answer) {
                        if opts[g] != a {
                            p.list.push(j.err(
                                &gf,
                                format!(
                                    "answer_options[{g}] = {} but answer = {a} ({})",
                                    opts[g], p.at
                                ),
                            ));
                        }
                    }
                    g
                }
                _ => None,
            };
            let needs_answer = split != "test" || r + 1 < raw.len();
            if needs_answer && j.opt(round, &f, "answer")?.is_none() {
                return Err(j.err(&format!("{f}.answer"), "missing field"));
            }
            let to_rank = split == "val" || (split == "test" && r + 1 == raw.len());
            if to_rank && options.is_none() {
                return Err(j.err(&format!("{f}.answer_options"), "missing field"));
            }
            if split == "val" && gt_index.is_none() && j.opt(round, &f, "gt_index")?.is_none() {
                return Err(j.err(&format!("{f}.gt_index"), "missing field"));
            }
            rounds.push(Round { question: question.unwrap_or(0), answer, options, gt_index });
        }
        if !p.list.is_empty() {
            continue;
        }
        let media = image(dir, split, image_id);
        let turn = |r: &Round| Turn {
            question: questions[r.question].clone(),
            answer: r.answer.map(|a| answers[a].clone()).unwrap_or_default(),
        };
        let history: Vec<Turn> = rounds.iter().map(turn).collect();
        let ranked: Vec<usize> = match split {
            "val" => (0..rounds.len()).collect(),
            "test" => vec![rounds.len() - 1],
            _ => Vec::new(),
        };
        if split == "train" {
            samples.push(Sample {
                id: SampleId::Round { image_id, round_id: 0 },
                media: media.clone(),
                content: Content::Dialog {
                    caption: caption.clone(),
                    history,
                    question: String::new(),
                    options: Vec::new(),
                    gt_index: None,
                    gt_relevance: None,
                },
                origin: Origin::new(&path, &f).with("history", &path, &rf),
            });
            continue;
        }
        for r in ranked {
            let round_id = r as u32 + 1;
            let mut origin = Origin::new(&path, index(&rf, r)).with("history", &path, &rf);
            let entry = dense.as_ref().and_then(|m| m.get(&(image_id, round_id)));
            if let Some((k, _)) = entry {
                let dense_path = dir.join(DENSE_FILE);
                origin = origin.with("gt_relevance", &dense_path, format!("[{k}].gt_relevance"));
            }
            let gt_relevance = entry.map(|(_, rel)| rel.clone());
            dense_used += gt_relevance.is_some() as usize;
            let options = rounds[r].options.clone().unwrap_or_default();
            samples.push(Sample {
                id: SampleId::Round { image_id, round_id },
                media: media.clone(),
                content: Content::Dialog {
                    caption: caption.clone(),
                    history: history[..r].to_vec(),
                    question: questions[rounds[r].question].clone(),
                    options: options.iter().map(|&o| answers[o].clone()).collect(),
                    gt_index: rounds[r].gt_index,
                    gt_relevance,
                },
                origin,
            });
        }
    }
    if let Some(first) = p.list.first() {
        let mut e = first.clone();
        for other in &p.list[1..] {
            e.message.push_str(&format!(
                "; also {}: {}",
                other.field.as_deref().unwrap_or(""),
                other.message
            ));
        }
        return Err(e);
    }
    if let Some(d) = &dense {
        if dense_used != d.len() {
            let p = dir.join(DENSE_FILE);
            return Err(InputError::file(
                &p,
                format!(
                    "{} of {} entries match no dialog round of {rel}",
                    d.len() - dense_used,
                    d.len()
                ),
            ));
        }
    }
    Ok(samples)
}

/// Dense relevance by `(image_id, round_id)`, each with its index in the file.
type Dense = HashMap<(u64, u32), (usize, Vec<f64>)>;

/// `[{"image_id","round_id" (1-based),"gt_relevance":[100 floats]}]`.
fn load_dense(path: &Path) -> Result<Dense, InputError> {
    let root = read_json(path)?;
    let j = Json::new(path);
    let mut out = HashMap::new();
    for (i, rec) in j.array(&root, "(root)")?.iter().enumerate() {
        let f = index("", i);
        let image_id = j.u64(j.get(rec, &f, "image_id")?, &format!("{f}.image_id"))?;
        let rf = format!("{f}.round_id");
        let round_id = j.u64(j.get(rec, &f, "round_id")?, &rf)?;
        if !(1..=10).contains(&round_id) {
            return Err(
                j.err(&rf, format!("round_id {round_id} is not in 1..10 (round ids are 1-based)"))
            );
        }
        let rel = j.f64s(j.get(rec, &f, "gt_relevance")?, &format!("{f}.gt_relevance"))?;
        out.insert((image_id, round_id as u32), (i, rel));
    }
    Ok(out)
}
