//! NExT-QA open-ended (NExT-OE, datasets.md §11, trap 10): CSV
//! `video,frame_count,width,height,question,answer,qid,type`; `video` ids exceed 32 bits (kept as
//! text); `qid` is per video, so the key is `(video, qid)`. The multiple-choice release uses the
//! same file names with `a0..a4` columns and an option index as `answer`: refused.
use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::origin::Origin;
use super::{require, unknown_split, Content, Media, Sample, SampleId};
use crate::input::{read_json, InputError, Json};

pub const SPLITS: &[&str] = &["test", "val", "train"];
pub const MAP_FILE: &str = "map_vid_vidorID.json";
const COLUMNS: [&str; 8] =
    ["video", "frame_count", "width", "height", "question", "answer", "qid", "type"];

/// `{ "<video>": "<dir>/<video>" }` → path `NExTVideo/<value>.mp4`.
fn read_map(path: &Path) -> Result<HashMap<String, String>, InputError> {
    let root = read_json(path)?;
    let j = Json::new(path);
    let obj = root.as_object().ok_or_else(|| j.err("(root)", "expected an object"))?;
    obj.iter().map(|(k, v)| Ok((k.clone(), j.str(v, k)?.to_owned()))).collect()
}

/// `add_reference_answer_{split}.json`: `{ "<video>": { "<qid>": str } }` (optional file).
fn read_extra(path: &Path) -> Result<HashMap<(String, String), String>, InputError> {
    let root = read_json(path)?;
    let j = Json::new(path);
    let mut out = HashMap::new();
    let obj = root.as_object().ok_or_else(|| j.err("(root)", "expected an object"))?;
    for (video, per) in obj {
        let per = per.as_object().ok_or_else(|| {
            j.err(video, format!("expected an object, found {}", crate::input::type_name(per)))
        })?;
        for (qid, a) in per {
            let a: &Value = a;
            out.insert(
                (video.clone(), qid.clone()),
                j.str(a, &format!("{video}.{qid}"))?.to_owned(),
            );
        }
    }
    Ok(out)
}

/// Checks the header: the open-ended columns, and no multiple-choice `a0..a4`.
pub fn check_header(
    path: &Path,
    header: &csv::StringRecord,
) -> Result<HashMap<&'static str, usize>, InputError> {
    let names: Vec<&str> = header.iter().map(str::trim).collect();
    if names.iter().any(|h| matches!(*h, "a0" | "a1" | "a2" | "a3" | "a4")) {
        return Err(InputError::field(
            path,
            "header",
            "multiple-choice NExT-QA CSV (columns a0..a4; `answer` is an option index): the nextqa task needs the open-ended (NExT-OE) CSV with the same file name",
        ));
    }
    let mut cols = HashMap::new();
    for c in COLUMNS {
        let i = names
            .iter()
            .position(|h| *h == c)
            .ok_or_else(|| InputError::field(path, "header", format!("missing column {c:?}")))?;
        cols.insert(c, i);
    }
    Ok(cols)
}

pub fn load(dir: &Path, split: &str) -> Result<Vec<Sample>, InputError> {
    if !SPLITS.contains(&split) {
        return Err(unknown_split(dir, "nextqa", split, SPLITS));
    }
    let path = require(dir, &format!("{split}.csv"))?;
    let map_path = require(dir, MAP_FILE)?;
    let extra_path = dir.join(format!("add_reference_answer_{split}.json"));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(&path)
        .map_err(|e| InputError::file(&path, format!("cannot read CSV: {e}")))?;
    let header = reader
        .headers()
        .map_err(|e| InputError::file(&path, format!("cannot read CSV header: {e}")))?
        .clone();
    let cols = check_header(&path, &header)?;
    let map = read_map(&map_path)?;
    let extra = if extra_path.is_file() { read_extra(&extra_path)? } else { HashMap::new() };
    let mut seen = std::collections::HashSet::new();
    let mut samples = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let line = format!("line {}", i + 2);
        let rec =
            rec.map_err(|e| InputError::field(&path, &line, format!("bad CSV record: {e}")))?;
        let col = |c: &str| rec.get(cols[c]).unwrap_or("").trim().to_owned();
        let video = col("video");
        if video.is_empty() || !video.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InputError::field(
                &path,
                format!("{line}.video"),
                format!("expected a numeric video id, found {video:?}"),
            ));
        }
        let qid_text = col("qid");
        let qid: u64 = qid_text.parse().map_err(|_| {
            InputError::field(
                &path,
                format!("{line}.qid"),
                format!("expected an integer, found {qid_text:?}"),
            )
        })?;
        if !seen.insert((video.clone(), qid)) {
            return Err(InputError::field(
                &path,
                format!("{line}.qid"),
                format!("duplicate (video {video}, qid {qid})"),
            ));
        }
        let rel = map.get(&video).ok_or_else(|| {
            InputError::field(
                &path,
                format!("{line}.video"),
                format!("video {video} is not in {}", map_path.display()),
            )
        })?;
        let answer_add = extra.get(&(video.clone(), qid.to_string())).cloned();
        samples.push(Sample {
            id: SampleId::VideoQid { video: video.clone(), qid },
            media: Media::Video {
                key: video,
                path: dir.join("NExTVideo").join(format!("{rel}.mp4")),
            },
            content: Content::VideoQa {
                question: col("question"),
                answer: col("answer"),
                answer_add,
                qtype: Some(col("type")),
            },
            origin: Origin::new(&path, line),
        });
    }
    Ok(samples)
}
