//! COCO text-to-image (datasets.md §4.5): one sample per caption annotation of
//! `annotations/captions_val2014.json`; the media is the caption's real val2014 image (FID
//! reference). Annotations are interleaved across images; [`super::subsample`] draws the 30,000.
use std::collections::HashMap;
use std::path::Path;

use super::origin::Origin;
use super::{context, require, unknown_split, Content, Media, Sample, SampleId};
use crate::input::{index, read_json, InputError, Json};

pub const SPLITS: &[&str] = &["val", "train"];

pub fn annotation_file(split: &str) -> Option<String> {
    SPLITS.contains(&split).then(|| format!("annotations/captions_{split}2014.json"))
}

pub fn load(dir: &Path, split: &str) -> Result<Vec<Sample>, InputError> {
    let rel =
        annotation_file(split).ok_or_else(|| unknown_split(dir, "coco_t2i", split, SPLITS))?;
    let path = require(dir, &rel)?;
    let root = read_json(&path)?;
    let j = Json::new(&path);
    let images = j.array(j.get(&root, "", "images")?, "images")?;
    let mut files = HashMap::with_capacity(images.len());
    for (i, rec) in images.iter().enumerate() {
        let f = index("images", i);
        let id = j.u64(j.get(rec, &f, "id")?, &format!("{f}.id"))?;
        let name = j.str(j.get(rec, &f, "file_name")?, &format!("{f}.file_name"))?;
        files.insert(id, name.to_owned());
    }
    let anns = j.array(j.get(&root, "", "annotations")?, "annotations")?;
    let subset = format!("{split}2014");
    let mut samples = Vec::with_capacity(anns.len());
    for (i, rec) in anns.iter().enumerate() {
        let f = index("annotations", i);
        let id = j.u64(j.get(rec, &f, "id")?, &format!("{f}.id"))?;
        let ctx = |e| context(e, format!("annotation id {id}"));
        let image_id = j
            .u64(j.get(rec, &f, "image_id").map_err(ctx)?, &format!("{f}.image_id"))
            .map_err(ctx)?;
        let caption = j
            .str(j.get(rec, &f, "caption").map_err(ctx)?, &format!("{f}.caption"))
            .map_err(ctx)?
            .to_owned();
        let name = files.get(&image_id).ok_or_else(|| {
            ctx(j.err(&format!("{f}.image_id"), format!("image_id {image_id} is not in images[]")))
        })?;
        samples.push(Sample {
            id: SampleId::Int(id),
            media: Media::Image { key: name.clone(), path: dir.join(&subset).join(name) },
            content: Content::TextToImage { annotation_id: id, caption },
            origin: Origin::new(&path, f),
        });
    }
    Ok(samples)
}
