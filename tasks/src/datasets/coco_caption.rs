//! COCO Caption, Karpathy split (datasets.md §4): `dataset_coco.json`; image path is
//! `{filepath}/{filename}` (restval lives in `val2014/`, trap 3); the key is `cocoid`, not
//! `imgid` (trap 4). The RICES pool (`train`) is Karpathy `train` + `restval`.
use std::path::Path;

use super::origin::Origin;
use super::{context, require, unknown_split, Content, Media, Sample, SampleId};
use crate::input::{index, read_json, InputError, Json};

pub const SPLITS: &[&str] = &["test", "val", "train"];
pub const FILE: &str = "dataset_coco.json";

/// Karpathy `split` values a split name selects.
fn karpathy_splits(split: &str) -> Option<&'static [&'static str]> {
    match split {
        "test" => Some(&["test"]),
        "val" => Some(&["val"]),
        "train" => Some(&["train", "restval"]),
        _ => None,
    }
}

pub fn load(dir: &Path, split: &str) -> Result<Vec<Sample>, InputError> {
    let wanted =
        karpathy_splits(split).ok_or_else(|| unknown_split(dir, "coco_caption", split, SPLITS))?;
    let path = require(dir, FILE)?;
    let root = read_json(&path)?;
    let j = Json::new(&path);
    let list = j.array(j.get(&root, "", "images")?, "images")?;
    let mut samples = Vec::new();
    for (i, rec) in list.iter().enumerate() {
        let f = index("images", i);
        let s = j.str(j.get(rec, &f, "split")?, &format!("{f}.split"))?;
        if !wanted.contains(&s) {
            continue;
        }
        let cocoid = j.u64(j.get(rec, &f, "cocoid")?, &format!("{f}.cocoid"))?;
        let ctx = |e| context(e, format!("cocoid {cocoid}"));
        let filepath = j
            .str(j.get(rec, &f, "filepath").map_err(ctx)?, &format!("{f}.filepath"))
            .map_err(ctx)?;
        let filename = j
            .str(j.get(rec, &f, "filename").map_err(ctx)?, &format!("{f}.filename"))
            .map_err(ctx)?;
        let sf = format!("{f}.sentences");
        let sentences = j.array(j.get(rec, &f, "sentences").map_err(ctx)?, &sf).map_err(ctx)?;
        let mut references = Vec::with_capacity(sentences.len());
        for (k, sent) in sentences.iter().enumerate() {
            let kf = index(&sf, k);
            references.push(
                j.str(j.get(sent, &kf, "raw").map_err(ctx)?, &format!("{kf}.raw"))
                    .map_err(ctx)?
                    .to_owned(),
            );
        }
        if references.is_empty() {
            return Err(ctx(j.err(&sf, "no sentences")));
        }
        samples.push(Sample {
            id: SampleId::Int(cocoid),
            media: Media::Image {
                key: filename.to_owned(),
                path: dir.join(filepath).join(filename),
            },
            content: Content::Caption { references },
            origin: Origin::new(&path, f).with("references", &path, sf),
        });
    }
    Ok(samples)
}
