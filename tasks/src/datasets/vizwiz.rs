//! VizWiz VQA (datasets.md §7): top-level list per split, keyed by `image` (trap 6); the image
//! folder is implied by the file name (`VizWiz_val_…` → `val/`).
use std::path::Path;

use super::origin::Origin;
use super::{context, require, unknown_split, Content, Media, Sample, SampleId};
use crate::input::{index, read_json, InputError, Json};

pub const SPLITS: &[&str] = &["val", "train", "test"];

pub fn annotation_file(split: &str) -> Option<String> {
    SPLITS.contains(&split).then(|| format!("annotations/{split}.json"))
}

/// Folder named by `VizWiz_<folder>_<n>.jpg`, else the split's own.
pub fn image_folder<'a>(image: &'a str, split: &'a str) -> &'a str {
    image.strip_prefix("VizWiz_").and_then(|r| r.split_once('_')).map(|(f, _)| f).unwrap_or(split)
}

pub fn load(dir: &Path, split: &str) -> Result<Vec<Sample>, InputError> {
    let rel = annotation_file(split).ok_or_else(|| unknown_split(dir, "vizwiz", split, SPLITS))?;
    let path = require(dir, &rel)?;
    let root = read_json(&path)?;
    let j = Json::new(&path);
    let list = j.array(&root, "(root)")?;
    let mut seen = std::collections::HashSet::with_capacity(list.len());
    let mut samples = Vec::with_capacity(list.len());
    for (i, rec) in list.iter().enumerate() {
        let f = index("", i);
        let image = j.str(j.get(rec, &f, "image")?, &format!("{f}.image"))?.to_owned();
        let ctx = |e| context(e, format!("image {image}"));
        let question = j
            .str(j.get(rec, &f, "question").map_err(ctx)?, &format!("{f}.question"))
            .map_err(ctx)?
            .to_owned();
        let mut answers = Vec::new();
        if let Some(list) = j.opt(rec, &f, "answers")? {
            let af = format!("{f}.answers");
            for (k, a) in j.array(list, &af).map_err(ctx)?.iter().enumerate() {
                let kf = index(&af, k);
                answers.push(
                    j.str(j.get(a, &kf, "answer").map_err(ctx)?, &format!("{kf}.answer"))
                        .map_err(ctx)?
                        .to_owned(),
                );
            }
        }
        let answer_type = match j.opt(rec, &f, "answer_type")? {
            Some(v) => Some(j.str(v, &format!("{f}.answer_type")).map_err(ctx)?.to_owned()),
            None => None,
        };
        let answerable = match j.opt(rec, &f, "answerable")? {
            Some(v) => Some(j.i64(v, &format!("{f}.answerable")).map_err(ctx)?),
            None => None,
        };
        if !seen.insert(image.clone()) {
            return Err(j.err(&format!("{f}.image"), format!("duplicate image {image}")));
        }
        let media_path = dir.join(image_folder(&image, split)).join(&image);
        samples.push(Sample {
            id: SampleId::Image(image.clone()),
            media: Media::Image { key: image, path: media_path },
            content: Content::Vqa {
                question,
                answers,
                question_type: None,
                answer_type,
                answerable,
            },
            origin: Origin::new(&path, f),
        });
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    #[test]
    fn folder_from_name() {
        assert_eq!(super::image_folder("VizWiz_val_00000001.jpg", "x"), "val");
        assert_eq!(super::image_folder("other.jpg", "test"), "test");
    }
}
