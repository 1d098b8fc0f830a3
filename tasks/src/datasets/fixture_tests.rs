//! Loaders and `check` on `shared/fixtures/datasets`, counts read from its `expected.json`.
use std::path::PathBuf;

use serde_json::Value;

use super::check::check;
use super::{Content, SampleId};
use crate::media::video;
use crate::registry::{get, TASKS};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/datasets"))
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("expected.json")).unwrap()).unwrap()
}

fn n(v: &Value) -> usize {
    v.as_u64().unwrap() as usize
}

/// `(samples, media, pool)` expected for a task's default split.
fn counts(task: &str, e: &Value) -> (usize, usize, usize) {
    let t = &e["tasks"][task];
    match task {
        "coco_caption" => (n(&t["test_samples"]), n(&t["test_samples"]), n(&t["train_pool"])),
        "coco_t2i" => (n(&t["captions"]), n(&t["reference_images"]), 0),
        "vqav2" | "okvqa" => (n(&t["val_samples"]), n(&t["val_images"]), n(&t["train_pool"])),
        "vizwiz" => (n(&t["val_samples"]), n(&t["val_samples"]), n(&t["train_pool"])),
        "visdial" => (n(&t["val_rounds"]), n(&t["val_dialogs"]), n(&t["train_dialogs"])),
        _ => (n(&t["test_samples"]), n(&t["test_videos"]), n(&t["train_pool"])),
    }
}

#[test]
fn every_task_checks_clean_with_expected_counts() {
    let e = expected();
    for t in TASKS {
        let r = check(t, &root().join(t.id), None);
        assert!(r.problems.is_empty(), "{}: {:?}", t.id, r.problems);
        assert_eq!((r.samples, r.media, r.pool), counts(t.id, &e), "{}", t.id);
    }
}

#[test]
fn other_splits_have_expected_counts() {
    let e = &expected()["tasks"];
    let len = |task: &str, split: &str| {
        get(task).unwrap().load(&root().join(task), split).unwrap().samples.len()
    };
    assert_eq!(len("coco_caption", "val"), n(&e["coco_caption"]["val_samples"]));
    assert_eq!(len("vqav2", "test-dev"), n(&e["vqav2"]["testdev_samples"]));
    assert_eq!(len("vizwiz", "test"), n(&e["vizwiz"]["test_samples"]));
    assert_eq!(len("visdial", "test"), n(&e["visdial"]["test_rounds_to_rank"]));
    for t in ["msvd_qa", "msrvtt_qa", "nextqa"] {
        assert_eq!(len(t, "val"), n(&e[t]["val_samples"]), "{t}");
    }
}

#[test]
fn traps_are_honoured() {
    let e = expected();
    let load =
        |task: &str, split: &str| get(task).unwrap().load(&root().join(task), split).unwrap();
    // Karpathy: cocoid keys, all sentences, restval from val2014.
    let coco = load("coco_caption", "test");
    let refs: usize = coco
        .samples
        .iter()
        .map(|s| match &s.content {
            Content::Caption { references } => references.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(refs, n(&e["tasks"]["coco_caption"]["test_reference_captions"]));
    let ids: Vec<String> = coco.samples.iter().map(|s| s.id.to_string()).collect();
    for k in e["tasks"]["coco_caption"]["test_classes"].as_object().unwrap().keys() {
        assert!(ids.contains(k), "{k}");
    }
    let pool = get("coco_caption").unwrap().load_pool(&root().join("coco_caption")).unwrap();
    assert_eq!(
        pool.iter().filter(|s| s.media.path().to_string_lossy().contains("/val2014/")).count(),
        3
    );
    // VQAv2: annotations in reverse order, joined on question_id.
    let vqa = load("vqav2", "val");
    let s = vqa.samples.iter().find(|s| s.id == SampleId::Int(262148000)).unwrap();
    let Content::Vqa { answers, .. } = &s.content else { panic!() };
    assert!(answers.contains(&"dark red".to_owned()) && answers.len() == 10);
    let td = load("vqav2", "test-dev");
    assert!(td.samples.iter().all(|s| s
        .media
        .path()
        .to_string_lossy()
        .contains("/test2015/COCO_test2015_")));
    // VizWiz: image key, one unanswerable.
    let vz = load("vizwiz", "val");
    let un = vz
        .samples
        .iter()
        .filter(|s| matches!(s.content, Content::Vqa { answerable: Some(0), .. }))
        .count();
    assert_eq!(un, n(&e["tasks"]["vizwiz"]["val_unanswerable"]));
    assert!(matches!(&vz.samples[0].id, SampleId::Image(s) if s.starts_with("VizWiz_val_")));
    // VisDial: dense rounds, 1-based; options resolve gt.
    let vd = load("visdial", "val");
    let dense: Vec<(u64, u32)> = vd
        .samples
        .iter()
        .filter(|s| matches!(s.content, Content::Dialog { gt_relevance: Some(_), .. }))
        .map(|s| match s.id {
            SampleId::Round { image_id, round_id } => (image_id, round_id),
            _ => panic!(),
        })
        .collect();
    let want: Vec<(u64, u32)> = e["tasks"]["visdial"]["dense"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["image_id"].as_u64().unwrap(), d["round_id"].as_u64().unwrap() as u32))
        .collect();
    assert_eq!(dense, want);
    for s in &vd.samples {
        let Content::Dialog { options, gt_index: Some(g), gt_relevance, history, .. } = &s.content
        else {
            panic!()
        };
        assert_eq!(options.len(), 100);
        if let Some(rel) = gt_relevance {
            assert_eq!(rel[*g], 1.0);
        }
        let SampleId::Round { round_id, .. } = s.id else { panic!() };
        assert_eq!(history.len() as u32, round_id - 1);
    }
    let vt = load("visdial", "test");
    let rounds: Vec<u32> = vt
        .samples
        .iter()
        .map(|s| match s.id {
            SampleId::Round { round_id, .. } => round_id,
            _ => 0,
        })
        .collect();
    assert_eq!(rounds, [4, 10]);
    let vpool = get("visdial").unwrap().load_pool(&root().join("visdial")).unwrap();
    assert_eq!(
        vpool.iter().filter(|s| s.media.path().to_string_lossy().contains("/val2014/")).count(),
        2
    );
    // MSVD: names starting with '-'.
    let msvd = load("msvd_qa", "test");
    assert!(msvd
        .samples
        .iter()
        .any(|s| s.media.path().ends_with("YouTubeClips/-vZ3hQk9bLs_12_20.avi")));
    // NExT-QA: 64-bit ids, (video, qid) keys, extra references, types.
    let nx = load("nextqa", "test");
    assert!(nx
        .samples
        .iter()
        .any(|s| s.id == SampleId::VideoQid { video: "13496244575".into(), qid: 1 }));
    let types: Vec<String> = nx
        .samples
        .iter()
        .map(|s| match &s.content {
            Content::VideoQa { qtype, .. } => qtype.clone().unwrap(),
            _ => panic!(),
        })
        .collect();
    let want: Vec<String> = e["tasks"]["nextqa"]["test_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, want);
    assert!(nx.samples.iter().any(
        |s| matches!(&s.content, Content::VideoQa { answer_add: Some(a), .. } if a == "circle")
    ));
    assert!(nx.samples.iter().any(
        |s| matches!(&s.content, Content::VideoQa { question, .. } if question.contains(", as"))
    ));
}

/// Every broken case yields at least one problem naming the right file; nothing panics.
#[test]
fn broken_cases_are_reported() {
    let e = expected();
    for (case, info) in e["broken"].as_object().unwrap() {
        let task = TASKS.iter().find(|t| case.starts_with(t.id)).unwrap();
        let r = check(task, &root().join("_broken").join(case), None);
        assert!(!r.problems.is_empty(), "{case}: no problem found");
        let file = info["file"].as_str().unwrap().split(' ').next().unwrap();
        let base = file.rsplit('/').next().unwrap().trim_start_matches("..._");
        assert!(
            r.problems.iter().any(|p| p.to_string().contains(base)),
            "{case}: {:?} does not name {base}",
            r.problems
        );
    }
}

#[test]
fn broken_details() {
    let dir = root().join("_broken");
    let err = |task: &str, case: &str| {
        get(task)
            .unwrap()
            .load(&dir.join(case), get(task).unwrap().eval_split)
            .unwrap_err()
            .to_string()
    };
    assert!(err("okvqa", "okvqa_missing_field").contains("5819292"));
    assert!(err("okvqa", "okvqa_missing_field").contains("answers"));
    let vd = err("visdial", "visdial_bad_index");
    // README: "dialog 0 round 4" and "dialog 1 round 1" (1-based rounds = array positions 3 and 0).
    assert!(
        vd.contains("data.dialogs[0].dialog[3].gt_index") && vd.contains("dialog 0, round 4"),
        "{vd}"
    );
    assert!(
        vd.contains("data.dialogs[1].dialog[0].answer_options") && vd.contains("dialog 1, round 1"),
        "{vd}"
    );
    assert!(err("nextqa", "nextqa_multichoice_csv").contains("multiple-choice"));
    assert!(err("msvd_qa", "msvd_qa_unmapped_video").contains("1512"));
    assert!(err("vqav2", "vqav2_truncated_json").contains("malformed JSON at line"));
    assert!(err("vizwiz", "vizwiz_wrong_type").contains("[1].answers"));
    // Per-sample media errors leave the annotation counts intact.
    for (task, case) in
        [("coco_caption", "coco_caption_missing_image"), ("msrvtt_qa", "msrvtt_qa_empty_video")]
    {
        let r = check(get(task).unwrap(), &dir.join(case), None);
        assert_eq!(r.samples, 5, "{case}");
    }
    let r = check(get("visdial").unwrap(), &dir.join("visdial_undecodable_image"), None);
    assert_eq!(r.samples, 30);
}

/// Frame indices for every fixture clip, K = 8 and K = 2, from the frames that decode.
#[test]
fn frame_indices_of_every_fixture_clip() {
    let e = expected();
    let videos = e["videos"].as_object().unwrap();
    assert!(videos.len() >= 24);
    for (rel, v) in videos {
        let path = root().join(rel);
        let idx = |k: &str| v[k].as_array().unwrap().iter().map(n).collect::<Vec<_>>();
        let f8 = video::read_frames(&path, video::QUERY_FRAMES).unwrap();
        assert_eq!(f8.info.decoded_frames, n(&v["decoded_frames"]), "{rel}");
        assert_eq!(f8.indices, idx("emu_index_k8"), "{rel}");
        assert_eq!(f8.frames.len(), 8);
        let size = v["size"].as_array().unwrap();
        assert_eq!((f8.frames[0].width, f8.frames[0].height), (n(&size[0]), n(&size[1])), "{rel}");
        let f2 = video::read_frames(&path, video::SUPPORT_FRAMES).unwrap();
        assert_eq!(f2.indices, idx("emu_index_k2"), "{rel}");
    }
}

#[test]
fn damaged_videos_never_read_past_the_end() {
    let dir = root().join("_broken");
    let t = video::read_frames(
        &dir.join("msvd_qa_truncated_video/YouTubeClips/-vZ3hQk9bLs_12_20.avi"),
        8,
    );
    if let Ok(f) = t {
        assert!(f.info.decoded_frames < 75);
        assert!(f.indices.iter().all(|&i| i < f.info.decoded_frames));
        assert_eq!(f.frames.len(), 8);
    }
    let err =
        video::read_frames(&dir.join("msrvtt_qa_empty_video/videos/video9999.mp4"), 8).unwrap_err();
    assert!(err.to_string().contains("video9999.mp4"));
}

/// Every picked frame equals the `ffmpeg` command's RGB24 output for that frame (same libraries,
/// passthrough timing: one output frame per decoded frame), for an AVI, an MP4 and a NExT-QA clip.
#[test]
fn picked_frames_equal_the_ffmpeg_command_output() {
    let e = expected();
    let videos = e["videos"].as_object().unwrap();
    let mut checked = std::collections::BTreeSet::new();
    for rel in videos.keys() {
        let ext = rel.rsplit('.').next().unwrap_or("").to_owned();
        let family = rel.split('/').next().unwrap_or("").to_owned();
        if !checked.insert((ext, family)) {
            continue;
        }
        let path = root().join(rel);
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&path)
            .args([
                "-map",
                "0:v:0",
                "-fps_mode",
                "passthrough",
                "-pix_fmt",
                "rgb24",
                "-f",
                "rawvideo",
                "-",
            ])
            .output()
            .expect("the ffmpeg command (scripts/setup.sh)");
        assert!(out.status.success(), "{rel}: {}", String::from_utf8_lossy(&out.stderr));
        let f = video::read_frames(&path, video::QUERY_FRAMES).unwrap();
        let frame_bytes = f.frames[0].width * f.frames[0].height * 3;
        assert_eq!(out.stdout.len(), frame_bytes * f.info.decoded_frames, "{rel}: frame count");
        for (i, frame) in f.indices.iter().zip(&f.frames) {
            assert!(
                frame.data == out.stdout[i * frame_bytes..(i + 1) * frame_bytes],
                "{rel}: frame {i}"
            );
        }
    }
    assert!(checked.len() >= 3, "{checked:?}");
}
