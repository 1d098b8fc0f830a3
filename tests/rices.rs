//! RICES: support pool, feature cache, search and the `index` / `neighbours` commands.
//!
//! Library tests use a deterministic stand-in feature (a hue histogram of saturated pixels) on
//! the fixture datasets, whose items show one of six coloured shapes; class labels come from the
//! fixtures' own records (captions, `expected.json`), not from the stand-in. Command tests run
//! the real vision tower of `shared/fixtures/emu-tiny`.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use harness::rices::{RicesOptions, SupportIndex};
use harness::rices_features::FeatureExtractor;
use retrieval::{FeatureCache, Outcome};
use tasks::datasets::{Content, Sample};
use tasks::media::image::RgbImage;

use crate::common::{emu_eval, json_out, shared};

const COLOURS: [&str; 6] = ["red", "blue", "green", "yellow", "purple", "orange"];

/// 24-bin hue histogram of the saturated pixels (the shapes; the backgrounds are light grey).
struct HueHistogram {
    images: AtomicUsize,
}

impl FeatureExtractor for HueHistogram {
    fn recipe(&self) -> String {
        "test:hue-histogram-24".into()
    }
    fn embed(&self, images: &[RgbImage]) -> anyhow::Result<Vec<Vec<f32>>> {
        self.images.fetch_add(images.len(), Ordering::SeqCst);
        Ok(images.iter().map(hue_histogram).collect())
    }
}

fn hue_histogram(img: &RgbImage) -> Vec<f32> {
    let mut h = vec![0f32; 24];
    for p in img.data.chunks_exact(3) {
        let [r, g, b] = [p[0] as f32, p[1] as f32, p[2] as f32];
        let (max, min) = (r.max(g).max(b), r.min(g).min(b));
        if max - min < 80.0 {
            continue;
        }
        let c = max - min;
        let hue = if max == r {
            ((g - b) / c).rem_euclid(6.0)
        } else if max == g {
            (b - r) / c + 2.0
        } else {
            (r - g) / c + 4.0
        } * 60.0;
        h[(hue / 15.0) as usize % 24] += 1.0;
    }
    h
}

fn data_root() -> PathBuf {
    shared().join("fixtures/datasets")
}

fn temp_cache(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("emu-eval-rices-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Class of a sample from the fixture records: the colour word of a caption, or the clip's
/// class in `expected.json`.
fn label(sample: &Sample, videos: &HashMap<String, String>) -> Option<usize> {
    let text = match &sample.content {
        Content::Caption { references } => references.first()?.clone(),
        _ => {
            let rel =
                sample.media.path().strip_prefix(data_root()).ok()?.to_string_lossy().into_owned();
            videos.get(&rel)?.clone()
        }
    };
    let first = text.split_whitespace().find(|w| COLOURS.contains(w))?;
    COLOURS.iter().position(|c| *c == first)
}

fn is_grayscale(s: &Sample) -> bool {
    match &s.media {
        tasks::datasets::Media::Image { path, .. } => {
            let img = tasks::media::image::decode_file(path).unwrap();
            img.data.chunks_exact(3).all(|p| p[0] == p[1] && p[1] == p[2])
        }
        _ => false,
    }
}

fn video_classes() -> HashMap<String, String> {
    let e: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data_root().join("expected.json")).unwrap()).unwrap();
    e["videos"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["class"].as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn stand_in_neighbours_are_same_class_training_samples() {
    let videos = video_classes();
    let cache = FeatureCache::new(temp_cache("classes"));
    let ex = HueHistogram { images: AtomicUsize::new(0) };
    for task_id in ["coco_caption", "msvd_qa", "msrvtt_qa", "nextqa"] {
        let task = tasks::registry::get(task_id).unwrap();
        let index = SupportIndex::open_or_build(
            &ex,
            "stand-in",
            task,
            &data_root(),
            &cache,
            &RicesOptions::default(),
            &mut |_, _, _| {},
        )
        .unwrap();
        let pool_labels: Vec<Option<usize>> =
            index.pool_samples().iter().map(|s| label(s, &videos)).collect();
        assert!(pool_labels.iter().all(Option::is_some), "{task_id}: unlabelled pool sample");
        let mut checked = 0;
        for q in index.queries() {
            let Some(class) = label(q, &videos) else { continue };
            // The fixtures' one grayscale picture (coco_caption 184613, a "green triangle") has no
            // colour for a colour stand-in to match.
            if is_grayscale(q) {
                continue;
            }
            let same = index
                .pool_samples()
                .iter()
                .zip(&pool_labels)
                .filter(|(s, l)| **l == Some(class) && s.media.key() != q.media.key())
                .count();
            if same == 0 {
                continue;
            }
            let id = q.id.to_string();
            let best = index.neighbours(&[id.as_str()], same).unwrap().remove(0);
            assert_eq!(best.len(), same);
            for n in &best {
                assert_eq!(
                    pool_labels[n.row],
                    Some(class),
                    "{task_id} query {id}: neighbour {} is another class",
                    n.id
                );
                assert!(n.similarity > 0.9, "{task_id} query {id}: similarity {}", n.similarity);
            }
            // Prompt order: most similar last.
            let sel = index.select(&id, same).unwrap();
            assert_eq!(sel.indices.first(), best.last().map(|n| &n.row));
            checked += 1;
        }
        assert!(checked >= 3, "{task_id}: only {checked} queries checked");
    }
    std::fs::remove_dir_all(cache.dir()).unwrap();
}

#[test]
fn stand_in_cache_is_reused_and_keyed_by_seed_and_weights() {
    let cache = FeatureCache::new(temp_cache("reuse"));
    let task = tasks::registry::get("msvd_qa").unwrap();
    let ex = HueHistogram { images: AtomicUsize::new(0) };
    let open = |weights: &str, seed: u64| {
        let opts = RicesOptions { pool_seed: seed, ..Default::default() };
        SupportIndex::open_or_build(
            &ex,
            weights,
            task,
            &data_root(),
            &cache,
            &opts,
            &mut |_, _, _| {},
        )
        .unwrap()
    };
    let mut a = open("w1", 0);
    assert!(
        matches!(a.pool_outcome(), Outcome::Built { computed: 4, .. }),
        "{:?}",
        a.pool_outcome()
    );
    // 4 pool videos × 2 frames.
    assert_eq!(ex.images.load(Ordering::SeqCst), 8);
    let q = a.build_query_cache(&cache, &mut |_, _, _| {}).unwrap();
    assert!(matches!(q, Outcome::Built { computed: 3, .. }), "{q:?}");
    // + 3 test videos × 8 frames.
    assert_eq!(ex.images.load(Ordering::SeqCst), 32);
    let first = a.neighbours(&["10", "12"], 2).unwrap();

    let b = open("w1", 0);
    assert_eq!(b.pool_outcome(), &Outcome::Reused);
    assert_eq!(b.neighbours(&["10", "12"], 2).unwrap(), first);
    assert_eq!(ex.images.load(Ordering::SeqCst), 32, "reused caches computed features");

    assert!(matches!(open("w1", 7).pool_outcome(), Outcome::Built { computed: 4, .. }));
    assert!(matches!(open("w2", 0).pool_outcome(), Outcome::Built { computed: 4, .. }));
    assert_eq!(ex.images.load(Ordering::SeqCst), 48);

    // Frames per support video are part of the recipe of video tasks.
    let opts = RicesOptions { support_frames: 3, ..Default::default() };
    let c = SupportIndex::open_or_build(
        &ex,
        "w1",
        task,
        &data_root(),
        &cache,
        &opts,
        &mut |_, _, _| {},
    )
    .unwrap();
    assert!(matches!(c.pool_outcome(), Outcome::Built { computed: 4, .. }));
    assert_eq!(ex.images.load(Ordering::SeqCst), 60);
    std::fs::remove_dir_all(cache.dir()).unwrap();
}

#[test]
fn a_query_never_retrieves_its_own_media() {
    // VQAv2: the pool is the train split; query from the pool's own split share images.
    let cache = FeatureCache::new(temp_cache("dedup"));
    let task = tasks::registry::get("vqav2").unwrap();
    let ex = HueHistogram { images: AtomicUsize::new(0) };
    let opts = RicesOptions { split: Some("train".into()), ..Default::default() };
    let index =
        SupportIndex::open_or_build(&ex, "w", task, &data_root(), &cache, &opts, &mut |_, _, _| {})
            .unwrap();
    let pool = index.pool_samples();
    for q in index.queries() {
        let id = q.id.to_string();
        let best = index.neighbours(&[id.as_str()], pool.len()).unwrap().remove(0);
        let sharing = pool.iter().filter(|s| s.media.key() == q.media.key()).count();
        assert_eq!(best.len(), pool.len() - sharing, "query {id}");
        assert!(
            best.iter().all(|n| n.id != id && pool[n.row].media.key() != q.media.key()),
            "query {id}"
        );
        // Ranked best first; ties by sample id.
        for w in best.windows(2) {
            let (a, b) = (&pool[w[0].row], &pool[w[1].row]);
            assert!(
                w[0].similarity > w[1].similarity
                    || (w[0].similarity == w[1].similarity && a.id < b.id)
            );
        }
    }
    std::fs::remove_dir_all(cache.dir()).unwrap();
}

fn model() -> PathBuf {
    shared().join("fixtures/emu-tiny")
}

fn index_cmd(cache: &Path, extra: &[&str]) -> serde_json::Value {
    let root = data_root();
    let mut args = vec![
        "index",
        "--task",
        "msvd_qa",
        "--data-root",
        root.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    json_out(&emu_eval(&args, None))
}

fn neighbours_cmd(cache: &Path, sample: &str, extra: &[&str]) -> serde_json::Value {
    let (root, model) = (data_root(), model());
    let mut args = vec![
        "neighbours",
        "--task",
        "msvd_qa",
        "--data-root",
        root.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
        "--sample",
        sample,
        "-k",
        "3",
        "--json",
    ];
    args.extend_from_slice(extra);
    json_out(&emu_eval(&args, None))
}

#[test]
fn index_command_reuses_rebuilds_and_repairs_the_cache() {
    let cache = temp_cache("cmd");
    let m = model();
    let model = ["--model", m.to_str().unwrap()];
    let first = index_cmd(&cache, &model);
    assert_eq!(first["pool"]["outcome"]["status"], "built");
    assert_eq!(first["pool"]["outcome"]["computed"], 4);
    assert_eq!(first["queries"]["outcome"]["computed"], 3);
    let again = index_cmd(&cache, &model);
    assert_eq!(again["pool"]["outcome"]["status"], "reused");
    assert_eq!(again["pool"]["outcome"]["computed"], 0);
    assert_eq!(again["queries"]["outcome"]["computed"], 0);

    // Another pool seed: the pool (not the queries) is computed again.
    let seeded = index_cmd(&cache, &[&model[..], &["--seed", "9"]].concat());
    assert_eq!(seeded["pool"]["outcome"]["computed"], 4);
    assert_eq!(seeded["queries"]["outcome"]["status"], "reused");

    // Other weights (one byte of a tensor changed): everything is computed again.
    let dir = cache.join("model-copy");
    std::fs::create_dir_all(&dir).unwrap();
    let mut st = std::fs::read(m.join("model.safetensors")).unwrap();
    let last = st.len() - 1;
    st[last] ^= 1;
    let weights = dir.join("model.safetensors");
    std::fs::write(&weights, st).unwrap();
    let other =
        index_cmd(&cache, &[&model[..], &["--weights", weights.to_str().unwrap()]].concat());
    assert_eq!(other["pool"]["outcome"]["computed"], 4);
    assert_eq!(other["queries"]["outcome"]["computed"], 3);
    assert_ne!(other["weights"], first["weights"]);

    // A corrupt cache file is detected and rebuilt.
    let files: Vec<PathBuf> = std::fs::read_dir(cache.join("rices"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.to_string_lossy().contains("msvd_qa.train.pool-seed0")
                && p.extension().is_some_and(|e| e == "safetensors")
        })
        .collect();
    assert_eq!(files.len(), 2, "{files:?}"); // two weights
    for f in &files {
        let mut b = std::fs::read(f).unwrap();
        let n = b.len() - 5;
        b[n] ^= 0x10;
        std::fs::write(f, b).unwrap();
    }
    let repaired = index_cmd(&cache, &model);
    assert_eq!(repaired["pool"]["outcome"]["status"], "built");
    assert!(
        repaired["pool"]["outcome"]["reason"].as_str().unwrap().contains("checksum"),
        "{repaired}"
    );
    assert_eq!(repaired["queries"]["outcome"]["status"], "reused");
    let sidecar = files[0].with_extension("json");
    let audit: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sidecar).unwrap()).unwrap();
    assert_eq!(audit["ids"].as_array().unwrap().len(), 8);
    std::fs::remove_dir_all(cache).unwrap();
}

#[test]
fn neighbours_command_is_stable_and_backends_agree() {
    let cache = temp_cache("nb");
    for sample in ["10", "12", "14"] {
        let a = neighbours_cmd(&cache, sample, &[]);
        assert_eq!(a["sample"], sample);
        let n = a["neighbours"].as_array().unwrap();
        assert_eq!(n.len(), 3);
        assert!(n.windows(2).all(|w| w[0]["similarity"].as_f64() >= w[1]["similarity"].as_f64()));
        assert_eq!(neighbours_cmd(&cache, sample, &[]), a, "second run (cached) differs");
        let faiss = emu_eval(
            &[
                "neighbours",
                "--task",
                "msvd_qa",
                "--data-root",
                data_root().to_str().unwrap(),
                "--model",
                model().to_str().unwrap(),
                "--cache",
                cache.to_str().unwrap(),
                "--sample",
                sample,
                "-k",
                "3",
                "--json",
                "--backend",
                "faiss",
            ],
            None,
        );
        if cfg!(feature = "faiss") {
            assert_eq!(json_out(&faiss), a, "faiss and exact differ for sample {sample}");
        } else {
            assert_eq!(faiss.status.code(), Some(1));
            let err = String::from_utf8_lossy(&faiss.stderr);
            assert!(err.contains("faiss") && err.lines().count() == 1, "{err}");
        }
    }
    let bad = emu_eval(
        &[
            "neighbours",
            "--task",
            "msvd_qa",
            "--data-root",
            data_root().to_str().unwrap(),
            "--model",
            model().to_str().unwrap(),
            "--cache",
            cache.to_str().unwrap(),
            "--sample",
            "nope",
        ],
        None,
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--sample"));
    std::fs::remove_dir_all(cache).unwrap();
}
