//! MSVD-QA (datasets.md §9), MSRVTT-QA (§10) and NExT-QA open-ended (§11). The three tasks show
//! the same clips (as the real ones share nothing, but this keeps encoding cheap): a shape sliding
//! across the frame, 16–30 frames at the odd rates real clips have.
use std::fmt::Write;

use serde_json::{json, Value};
use tasks::rng::SplitMix64;

use super::coco::a;
use super::plan::{class_of, Container, Ids, Plan};
use super::scene::{colour, shape, Clip, CLASSES};

/// Clips per split (and the class of the first) and questions per clip: test 6 × 2, train 8 × 2
/// (RICES pool), val 1 × 2.
const SPLITS: [(&str, usize, usize); 3] = [("train", 8, 0), ("val", 1, 4), ("test", 6, 0)];
const QUESTIONS_PER_CLIP: usize = 2;

/// The clips of every split, in `SPLITS` order.
fn clips() -> Vec<(&'static str, Vec<Clip>)> {
    let mut rng = SplitMix64::new(0x71DE_0006);
    let mut n = 0;
    SPLITS
        .iter()
        .map(|&(split, count, first)| {
            let clips = (0..count)
                .map(|i| {
                    n += 1;
                    let frames = [16, 20, 24, 30][n % 4];
                    let fps = [(25, 1), (30000, 1001), (24, 1)][n % 3];
                    Clip::random(&mut rng, class_of(i, first), 80, 60, frames, fps)
                })
                .collect();
            (split, clips)
        })
        .collect()
}

/// A one-word-answer question (MSVD-QA and MSRVTT-QA style: lower case, ends with "?").
fn short_question(kind: usize, clip: &Clip, msrvtt: bool) -> (String, String) {
    let (c, sh) = (colour(clip.scene.class), shape(clip.scene.class));
    match (kind % 4, msrvtt) {
        (0, false) => ("what slides across the screen?".into(), sh.into()),
        (0, true) => ("what is shown in the video?".into(), sh.into()),
        (1, false) => ("what color is the moving object?".into(), c.into()),
        (1, true) => (format!("what is the color of the {sh}?"), c.into()),
        (2, _) => (format!("which way does the {sh} move?"), clip.direction().into()),
        _ => (format!("what does the {c} object do?"), "slide".into()),
    }
}

/// `msvd_qa/` (`msrvtt` false): QA lists (ids run over train, val, then test),
/// `youtube_mapping.txt` and AVI clips named like YouTube ids (some start with `-`).
/// `msrvtt_qa/` (`msrvtt` true): QA lists with `category_id`, MP4 clips `videos/video{id}.mp4`.
fn short_qa(plan: &mut Plan, all: &[(&str, Vec<Clip>)], msrvtt: bool) {
    let (task, seed) = if msrvtt { ("msrvtt_qa", 0x3575_0008) } else { ("msvd_qa", 0x3573_0007) };
    let mut rng = SplitMix64::new(seed);
    let mut ids = Ids::new(rng.next_u64());
    let (mut id, mut kind, mut mapping) = (0, usize::from(msrvtt), Vec::new());
    for (split, clips) in all {
        // The official video id ranges of each split.
        let range = match (*split, msrvtt) {
            ("train", false) => (1, 1201),
            ("val", false) => (1201, 1301),
            (_, false) => (1301, 1971),
            ("train", true) => (0, 6513),
            ("val", true) => (6513, 7010),
            _ => (7010, 10000),
        };
        let mut qa = Vec::new();
        for (i, clip) in clips.iter().enumerate() {
            let video_id = ids.draw(range.0, range.1);
            let category_id = rng.below(20);
            if msrvtt {
                plan.video(format!("{task}/videos/video{video_id}.mp4"), *clip, Container::Mp4);
            } else {
                let name = clip_name(&mut rng, i == 0);
                plan.video(format!("{task}/YouTubeClips/{name}.avi"), *clip, Container::Avi);
                mapping.push((video_id, name));
            }
            for _ in 0..QUESTIONS_PER_CLIP {
                let (question, answer) = short_question(kind, clip, msrvtt);
                kind += 1;
                qa.push(if msrvtt {
                    json!({"answer": answer, "category_id": category_id, "id": id, "question": question, "video_id": video_id})
                } else {
                    json!({"answer": answer, "id": id, "question": question, "video_id": video_id})
                });
                id += 1;
            }
        }
        plan.json(format!("{task}/{split}_qa.json"), &Value::Array(qa));
    }
    if !msrvtt {
        mapping.sort();
        let text = mapping.iter().fold(String::new(), |mut t, (vid, name)| {
            let _ = writeln!(t, "{name} vid{vid}");
            t
        });
        plan.bytes(format!("{task}/youtube_mapping.txt"), text.into_bytes());
    }
}

/// `<11-char YouTube id>_<start>_<end>`; `dash` forces a leading `-`.
fn clip_name(rng: &mut SplitMix64, dash: bool) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id: String = (0..11).map(|_| *rng.pick(ALPHABET) as char).collect();
    if dash {
        id.replace_range(0..1, "-");
    }
    let start = rng.below(200);
    format!("{id}_{start}_{}", start + 4 + rng.below(12))
}

/// NExT-OE question of a type: (question without "?", answer, an extra reference answer).
fn nextqa_question(qtype: &str, clip: &Clip, other: usize) -> (String, String, Option<String>) {
    let (c, sh, dir) = (colour(clip.scene.class), shape(clip.scene.class), clip.direction());
    let (q, ans, extra) = match qtype {
        "DO" => (
            "what object appears in the video".to_owned(),
            format!("{c} {sh}"),
            Some(sh.to_owned()),
        ),
        "DC" => {
            ("how many objects are in the video".to_owned(), "one".to_owned(), Some("1".to_owned()))
        }
        "DB" => {
            let asked = if other.is_multiple_of(2) {
                clip.scene.class
            } else {
                (clip.scene.class + 1 + other % (CLASSES - 1)) % CLASSES
            };
            (
                format!("is the object {}", colour(asked)),
                if asked == clip.scene.class { "yes" } else { "no" }.to_owned(),
                None,
            )
        }
        "DL" => {
            ("where is the object at the end of the video".to_owned(), format!("{dir} side"), None)
        }
        "TN" => (
            format!("what does the {sh} do after it appears"),
            format!("move {dir}"),
            Some(format!("slide {dir}")),
        ),
        "TC" => (format!("as the {sh} moves, which way does it go"), dir.to_owned(), None),
        "TP" => (
            format!("what was the {sh} doing before the video ended"),
            format!("moving {dir}"),
            None,
        ),
        "CW" => (format!("why does the {sh} end up on the {dir}"), format!("it moved {dir}"), None),
        _ => (
            format!("how does {} {c} {sh} move", a(c)),
            "slide".to_owned(),
            Some("sideways".to_owned()),
        ),
    };
    (q, ans, extra)
}

/// RFC 4180: quoted when it holds a comma, quote or line break.
fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_owned()
    }
}

const QTYPES: [&str; 9] = ["DO", "TC", "DB", "TN", "CW", "DC", "TP", "DL", "CH"];

/// `nextqa/`: open-ended CSVs (`frame_count,width,height` match the clips), `map_vid_vidorID.json`,
/// `add_reference_answer_test.json`, MP4 clips under `NExTVideo/<dir>/`. Video ids exceed 32 bits.
fn nextqa(plan: &mut Plan, all: &[(&str, Vec<Clip>)]) {
    let mut rng = SplitMix64::new(0x4E58_0009);
    let mut ids = Ids::new(rng.next_u64());
    let mut dirs = Ids::new(rng.next_u64());
    let (mut map, mut extra) = (serde_json::Map::new(), serde_json::Map::new());
    let mut kind = 0;
    for (split, clips) in all {
        let mut csv = String::from("video,frame_count,width,height,question,answer,qid,type\n");
        for clip in clips {
            let video = ids.draw(5_000_000_000, 14_000_000_000).to_string();
            let rel = format!("{:04}/{video}", dirs.draw(0, 1200));
            plan.video(format!("nextqa/NExTVideo/{rel}.mp4"), *clip, Container::Mp4);
            map.insert(video.clone(), Value::String(rel));
            let mut qid = rng.below(2);
            for _ in 0..QUESTIONS_PER_CLIP {
                let qtype = QTYPES[kind % QTYPES.len()];
                let (question, answer, more) = nextqa_question(qtype, clip, kind);
                kind += 1;
                let s = clip.scene;
                let row = [
                    video.clone(),
                    clip.frames.to_string(),
                    s.width.to_string(),
                    s.height.to_string(),
                    question,
                    answer,
                    qid.to_string(),
                    qtype.to_owned(),
                ];
                let _ = writeln!(
                    csv,
                    "{}",
                    row.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",")
                );
                if let (true, Some(more)) = (*split == "test", more) {
                    let per = extra.entry(video.clone()).or_insert_with(|| json!({}));
                    per[qid.to_string()] = Value::String(more);
                }
                qid += 1 + rng.below(3);
            }
        }
        plan.bytes(format!("nextqa/{split}.csv"), csv.into_bytes());
    }
    plan.json("nextqa/map_vid_vidorID.json", &Value::Object(map));
    plan.json("nextqa/add_reference_answer_test.json", &Value::Object(extra));
}

/// The three video tasks.
pub fn all(plan: &mut Plan) {
    let clips = clips();
    short_qa(plan, &clips, false);
    short_qa(plan, &clips, true);
    nextqa(plan, &clips);
}
