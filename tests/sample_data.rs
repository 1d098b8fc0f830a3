//! The built-in sample data (`harness::sample_data`): every task's files pass `data check` with the
//! intended sizes, two generations are byte-identical, and `ensure` leaves a complete copy alone
//! but replaces an incomplete one.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use harness::sample_data;
use tasks::datasets::{Content, Media};
use tasks::registry;

use crate::common::emu_eval;

/// Samples per split the generator is meant to write (the first split is the evaluation split).
const SIZES: [(&str, &[(&str, usize)]); 9] = [
    ("coco_caption", &[("test", 10), ("train", 16), ("val", 2)]),
    ("coco_t2i", &[("val", 12)]),
    ("vqav2", &[("val", 10), ("train", 18), ("test-dev", 3)]),
    ("okvqa", &[("val", 10), ("train", 16)]),
    ("vizwiz", &[("val", 10), ("train", 16), ("test", 3)]),
    ("visdial", &[("val", 10), ("train", 12), ("test", 2)]),
    ("msvd_qa", &[("test", 12), ("train", 16), ("val", 2)]),
    ("msrvtt_qa", &[("test", 12), ("train", 16), ("val", 2)]),
    ("nextqa", &[("test", 12), ("train", 16), ("val", 2)]),
];

fn scratch(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sample-data-{name}"))
}

/// One generated copy shared by the tests.
fn generated() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = scratch("a");
        let _ = std::fs::remove_dir_all(&d);
        sample_data::ensure(&d).expect("generating the sample data");
        d
    })
}

/// Every file under `root`: relative path → bytes.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn sample_data_every_task_and_split_passes_data_check_with_intended_sizes() {
    let root = generated();
    let root_s = root.to_str().unwrap();
    for (task, splits) in SIZES {
        let t = registry::get(task).unwrap();
        assert_eq!(splits[0].0, t.eval_split, "{task}");
        // The command: exit status 0 means no problems.
        let out = emu_eval(&["data", "check", "--task", task, "--data-root", root_s], None);
        assert!(out.status.success(), "{task}: {}", String::from_utf8_lossy(&out.stderr));
        let pool = t.pool_split.map_or(0, |p| splits.iter().find(|s| s.0 == p).unwrap().1);
        if t.pool_split.is_some() {
            assert!(pool >= 8, "{task}: {pool} pool samples are too few for 8-shot prompts");
        }
        for &(split, n) in splits {
            // Decodes every image/video of the split and checks the pool's media exist.
            let r = tasks::datasets::check::check(t, &t.dir(root), Some(split));
            assert!(r.problems.is_empty(), "{task} {split}: {:?}", r.problems);
            assert_eq!((r.samples, r.pool), (n, pool), "{task} {split}: (samples, pool)");
        }
    }
}

#[test]
fn sample_data_is_in_the_scored_shapes_of_each_task() {
    let root = generated();
    let load = |task: &str, split: &str| {
        let t = registry::get(task).unwrap();
        t.load(&t.dir(root), split).unwrap().samples
    };
    for (task, split) in [
        ("vqav2", "val"),
        ("vqav2", "train"),
        ("okvqa", "val"),
        ("vizwiz", "val"),
        ("vizwiz", "train"),
    ] {
        for s in load(task, split) {
            let Content::Vqa { answers, answer_type, .. } = &s.content else {
                panic!("{task}: not VQA")
            };
            assert_eq!(answers.len(), 10, "{task} {}", s.id);
            assert!(answer_type.is_some(), "{task} {}", s.id);
        }
    }
    let unanswerable = load("vizwiz", "val")
        .iter()
        .filter(|s| matches!(&s.content, Content::Vqa { answerable: Some(0), answer_type: Some(t), .. } if t == "unanswerable"))
        .count();
    assert_eq!(unanswerable, 2);
    let rounds = load("visdial", "val");
    for s in &rounds {
        let Content::Dialog { options, gt_index, .. } = &s.content else {
            panic!("visdial: not a dialog")
        };
        assert_eq!(options.len(), 100);
        assert!(gt_index.is_some_and(|g| g < 100));
    }
    let dense = rounds.iter().filter(|s| matches!(&s.content, Content::Dialog { gt_relevance: Some(r), .. } if r.len() == 100)).count();
    assert_eq!(dense, 1, "one densely annotated round per val dialog");
    // Query videos have at least 16 frames, so 8-frame sampling never repeats a frame.
    for task in ["msvd_qa", "msrvtt_qa", "nextqa"] {
        for s in load(task, "test") {
            let Media::Video { path, .. } = &s.media else { panic!("{task}: not a video") };
            let info = tasks::media::video::probe(path).unwrap();
            assert!(
                info.decoded_frames >= 16,
                "{}: {} frames",
                path.display(),
                info.decoded_frames
            );
        }
    }
    let nextqa = load("nextqa", "test");
    assert!(nextqa.iter().any(
        |s| matches!(&s.content, Content::VideoQa { question, .. } if question.contains(','))
    ));
    assert!(nextqa
        .iter()
        .any(|s| matches!(&s.content, Content::VideoQa { answer_add: Some(_), .. })));
    assert!(nextqa.iter().all(|s| s.media.key().parse::<u64>().is_ok_and(|v| v > u32::MAX as u64)));
}

/// Two generators racing on an interrupted copy (no marker, a partial file) both succeed and leave
/// one complete copy, byte-identical to an independent generation.
#[test]
fn sample_data_regenerates_an_incomplete_copy_identically() {
    let a = generated();
    let b = scratch("b");
    let _ = std::fs::remove_dir_all(&b);
    std::fs::create_dir_all(b.join("vqav2")).unwrap();
    std::fs::write(b.join("vqav2/v2_mscoco_val2014_annotations.json"), "{\"annotations\": [")
        .unwrap();
    std::thread::scope(|s| {
        let racers: Vec<_> = (0..2).map(|_| s.spawn(|| sample_data::ensure(&b))).collect();
        for r in racers {
            r.join().unwrap().unwrap();
        }
    });
    let (fa, fb) = (files(a), files(&b));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>(), "file lists differ");
    for (path, bytes) in &fa {
        assert!(bytes == &fb[path], "{path} differs between two generations");
    }
    assert!(fa.contains_key(sample_data::MARKER));
    assert!(
        fa.keys().any(|p| p.ends_with(".avi"))
            && fa.keys().any(|p| p.ends_with(".mp4"))
            && fa.keys().any(|p| p.ends_with(".jpg"))
    );
    assert_eq!(leftovers("b"), Vec::<String>::new(), "temporary folders left behind");
    let _ = std::fs::remove_dir_all(&b);
}

#[test]
fn sample_data_ensure_leaves_a_complete_copy_alone() {
    use std::os::unix::fs::MetadataExt;
    let a = generated();
    let before = (
        std::fs::metadata(a).unwrap().ino(),
        std::fs::metadata(a.join(sample_data::MARKER)).unwrap().modified().unwrap(),
    );
    sample_data::ensure(a).unwrap();
    let after = (
        std::fs::metadata(a).unwrap().ino(),
        std::fs::metadata(a.join(sample_data::MARKER)).unwrap().modified().unwrap(),
    );
    assert_eq!(before, after, "a complete copy was regenerated");
    assert_eq!(leftovers("a"), Vec::<String>::new(), "temporary folders left behind");
}

/// Temporary or moved-aside siblings of `scratch(name)`.
fn leftovers(name: &str) -> Vec<String> {
    let prefix = format!(".sample-data-{name}.");
    std::fs::read_dir(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}
