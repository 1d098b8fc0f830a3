//! The QA list shared by MSVD-QA and MSRVTT-QA: `[{"answer","id","question","video_id"}]`.
use std::path::Path;

use super::origin::Origin;
use super::{context, Content, Media, Sample, SampleId};
use crate::input::{index, read_json, InputError, Invalid, Json};

/// Reads the list; `media(video_id)` resolves a video or explains why it cannot.
pub fn load(
    path: &Path,
    media: impl Fn(u64) -> Result<Media, Invalid>,
) -> Result<Vec<Sample>, InputError> {
    let root = read_json(path)?;
    let j = Json::new(path);
    let list = j.array(&root, "(root)")?;
    let mut seen = std::collections::HashSet::with_capacity(list.len());
    let mut samples = Vec::with_capacity(list.len());
    for (i, rec) in list.iter().enumerate() {
        let f = index("", i);
        let id = j.u64(j.get(rec, &f, "id")?, &format!("{f}.id"))?;
        let ctx = |e| context(e, format!("id {id}"));
        let question = j
            .str(j.get(rec, &f, "question").map_err(ctx)?, &format!("{f}.question"))
            .map_err(ctx)?
            .to_owned();
        let answer = j
            .str(j.get(rec, &f, "answer").map_err(ctx)?, &format!("{f}.answer"))
            .map_err(ctx)?
            .to_owned();
        let vf = format!("{f}.video_id");
        let video_id = j.u64(j.get(rec, &f, "video_id").map_err(ctx)?, &vf).map_err(ctx)?;
        let media = media(video_id).map_err(|m| ctx(j.err(&vf, m.0)))?;
        if !seen.insert(id) {
            return Err(j.err(&format!("{f}.id"), format!("duplicate id {id}")));
        }
        samples.push(Sample {
            id: SampleId::Int(id),
            media,
            content: Content::VideoQa { question, answer, answer_add: None, qtype: None },
            origin: Origin::new(path, f),
        });
    }
    Ok(samples)
}
