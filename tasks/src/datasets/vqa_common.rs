//! VQAv2 and OK-VQA share containers: a questions file and an annotations file, joined on
//! `question_id` (datasets.md §5, §6; trap 1). Annotations need not be in question order.
use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::origin::Origin;
use super::{coco_image, context, require, Content, Sample, SampleId};
use crate::input::{index, read_json, InputError, Json};

/// One annotation: the scored answers and types.
struct Annotation {
    /// Its index in `annotations[]`.
    index: usize,
    answers: Vec<String>,
    question_type: Option<String>,
    answer_type: Option<String>,
}

fn opt_string(j: &Json, rec: &Value, field: &str, key: &str) -> Result<Option<String>, InputError> {
    match j.opt(rec, field, key)? {
        Some(v) => Ok(Some(j.str(v, &format!("{field}.{key}"))?.to_owned())),
        None => Ok(None),
    }
}

/// Reads `annotations[]`: `question_id`, `answers[].answer` (not `raw_answer`), types.
fn read_annotations(path: &Path) -> Result<HashMap<u64, Annotation>, InputError> {
    let root = read_json(path)?;
    let j = Json::new(path);
    let list = j.array(j.get(&root, "", "annotations")?, "annotations")?;
    let mut out = HashMap::with_capacity(list.len());
    for (i, rec) in list.iter().enumerate() {
        let f = index("annotations", i);
        let qid = j.u64(j.get(rec, &f, "question_id")?, &format!("{f}.question_id"))?;
        let ctx = |e| context(e, format!("question_id {qid}"));
        let answers = j
            .array(j.get(rec, &f, "answers").map_err(ctx)?, &format!("{f}.answers"))
            .map_err(ctx)?;
        let mut texts = Vec::with_capacity(answers.len());
        for (k, a) in answers.iter().enumerate() {
            let af = index(&format!("{f}.answers"), k);
            texts.push(
                j.str(j.get(a, &af, "answer").map_err(ctx)?, &format!("{af}.answer"))
                    .map_err(ctx)?
                    .to_owned(),
            );
        }
        let ann = Annotation {
            index: i,
            answers: texts,
            question_type: opt_string(&j, rec, &f, "question_type").map_err(ctx)?,
            answer_type: opt_string(&j, rec, &f, "answer_type").map_err(ctx)?,
        };
        if out.insert(qid, ann).is_some() {
            return Err(j.err(&format!("{f}.question_id"), format!("duplicate question_id {qid}")));
        }
    }
    Ok(out)
}

/// Loads `questions_rel` (+ `annotations_rel`, joined on `question_id`); images in `subset/`.
pub fn load(
    dir: &Path,
    questions_rel: &str,
    annotations_rel: Option<&str>,
    subset: &str,
) -> Result<Vec<Sample>, InputError> {
    let qpath = require(dir, questions_rel)?;
    let apath = annotations_rel.map(|rel| require(dir, rel)).transpose()?;
    let root = read_json(&qpath)?;
    let j = Json::new(&qpath);
    let list = j.array(j.get(&root, "", "questions")?, "questions")?;
    let mut anns = match apath {
        Some(p) => Some((read_annotations(&p)?, p)),
        None => None,
    };
    let mut seen = std::collections::HashSet::with_capacity(list.len());
    let mut samples = Vec::with_capacity(list.len());
    for (i, rec) in list.iter().enumerate() {
        let f = index("questions", i);
        let qid = j.u64(j.get(rec, &f, "question_id")?, &format!("{f}.question_id"))?;
        let image_id = j.u64(j.get(rec, &f, "image_id")?, &format!("{f}.image_id"))?;
        let question = j.str(j.get(rec, &f, "question")?, &format!("{f}.question"))?.to_owned();
        if !seen.insert(qid) {
            return Err(j.err(&format!("{f}.question_id"), format!("duplicate question_id {qid}")));
        }
        let mut origin = Origin::new(&qpath, f.clone());
        let (answers, question_type, answer_type) = match anns.as_mut() {
            Some((map, apath)) => {
                let a = map.remove(&qid).ok_or_else(|| {
                    InputError::file(
                        apath,
                        format!("no annotation for question_id {qid} ({} {f})", qpath.display()),
                    )
                })?;
                origin = origin.with("answers", apath, format!("annotations[{}].answers", a.index));
                (a.answers, a.question_type, a.answer_type)
            }
            None => (Vec::new(), None, None),
        };
        samples.push(Sample {
            id: SampleId::Int(qid),
            media: coco_image(dir, subset, image_id),
            content: Content::Vqa {
                question,
                answers,
                question_type,
                answer_type,
                answerable: None,
            },
            origin,
        });
    }
    Ok(samples)
}
