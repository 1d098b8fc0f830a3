//! Synthetic run folders in the `emu-eval run` schema (v1), for tests and demos of the reports:
//! several tasks, shot counts and both families, with plausible, seeded values. Images point at
//! real files under a media folder (`../shared/fixtures` in tests) so thumbnails can be drawn.
use std::path::{Path, PathBuf};

use serde_json::json;
use tasks::registry::Metric;
use tasks::rng::SplitMix64;

use crate::runs::{
    Counts, Family, Headline, Metrics, Prediction, RunConfig, RunJson, Stage, Support, Timing,
};

/// What a synthetic run looks like.
#[derive(Debug, Clone)]
pub struct Spec {
    pub task: &'static str,
    pub family: Family,
    pub shots: u32,
    pub cot: bool,
    pub text_examples: bool,
    pub samples: usize,
    pub limit: Option<u64>,
    /// Per-sample success probability (scales the headline).
    pub skill: f64,
    /// Samples (by position) that failed.
    pub failed: Vec<usize>,
    pub seed: u64,
}

impl Spec {
    pub fn new(task: &'static str, family: Family, shots: u32) -> Spec {
        Spec {
            task,
            family,
            shots,
            cot: false,
            text_examples: false,
            samples: 12,
            limit: None,
            skill: 0.5,
            failed: Vec::new(),
            seed: 0,
        }
    }
    /// The runner's default folder name.
    pub fn dir_name(&self) -> String {
        let mut s = format!("{}-{}-{}shot", self.task, self.family, self.shots);
        if self.cot {
            s.push_str("-cot");
        }
        if self.text_examples {
            s.push_str("-text");
        }
        s
    }
}

/// The set used by the report tests: 11 runs over 7 tasks, shots 0/2/4/8, both families.
pub fn default_specs() -> Vec<Spec> {
    let s = Spec::new;
    let with = |mut sp: Spec, f: &dyn Fn(&mut Spec)| {
        f(&mut sp);
        sp
    };
    vec![
        with(s("vqav2", Family::Emu, 0), &|x| {
            x.cot = true;
            x.skill = 0.45;
        }),
        with(s("vqav2", Family::Emu, 0), &|x| {
            x.text_examples = true;
            x.skill = 0.5;
        }),
        with(s("vqav2", Family::EmuI, 0), &|x| x.skill = 0.35),
        with(s("vqav2", Family::Emu, 2), &|x| x.skill = 0.55),
        with(s("vqav2", Family::Emu, 4), &|x| {
            x.skill = 0.6;
            x.failed = vec![3];
        }),
        with(s("vqav2", Family::Emu, 8), &|x| x.skill = 0.62),
        with(s("vizwiz", Family::Emu, 4), &|x| x.skill = 0.4),
        with(s("coco_caption", Family::EmuI, 0), &|x| {
            x.limit = Some(8);
            x.samples = 8;
        }),
        with(s("msvd_qa", Family::EmuI, 0), &|x| {
            x.text_examples = true;
            x.skill = 0.3;
            x.samples = 6;
        }),
        s("coco_t2i", Family::Emu, 0),
        with(s("okvqa", Family::Emu, 4), &|x| x.skill = 0.4),
    ]
}

fn config(spec: &Spec) -> RunConfig {
    RunConfig {
        task: spec.task.to_owned(),
        split: tasks::registry::get(spec.task).map_or("val", |t| t.eval_split).to_owned(),
        model: "/models/emu-synthetic".to_owned(),
        weights_hash: "sha256:5eed".to_owned(),
        model_family: spec.family,
        dtype: "f32".to_owned(),
        shots: spec.shots as usize,
        cot: spec.cot,
        text_examples: spec.text_examples,
        support_method: if spec.shots > 0 { "rices" } else { "random-fallback" }.to_owned(),
        seed: spec.seed,
        limit: spec.limit.map(|l| l as usize),
        limit_fraction: None,
        generation: None,
        template_version: "emu-paper-v1".to_owned(),
        shard: None,
        emu_eval_version: "0.1.0".to_owned(),
        git_commit: "0123456789abcdef".to_owned(),
        t2i: None,
        vqa_variant: None,
        data: tasks::run_folder::DataProvenance {
            root: "/data/synthetic".to_owned(),
            builtin: false,
            files: [(format!("{}/annotations.json", spec.task), "sha256:5eed".to_owned())].into(),
            media_files: spec.samples as u64,
            media_bytes: 1000 * spec.samples as u64,
            media_digest: None,
        },
        device: None,
    }
}

fn headline_name(task: &str) -> &'static str {
    tasks::registry::get(task).map_or("score", |t| t.metric.name())
}

/// Writes one run folder under `root`; returns its path.
pub fn write_run(root: &Path, spec: &Spec, media: &Path) -> std::io::Result<PathBuf> {
    let dir = root.join(spec.dir_name());
    std::fs::create_dir_all(&dir)?;
    let cfg = config(spec);
    let name_seed =
        spec.dir_name().bytes().fold(spec.seed, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let mut rng = SplitMix64::new(name_seed);
    let metric = tasks::registry::get(spec.task).map(|t| t.metric);
    let corpus = metric.is_some_and(|m| m.corpus_level());
    let video = tasks::registry::get(spec.task)
        .is_some_and(|t| t.media == tasks::registry::MediaKind::Video);
    let photos = [media.join("emu-tiny/cat.jpg"), media.join("emu-tiny/tiger.jpg")];
    let clip = media.join("datasets/msvd_qa/YouTubeClips/-4wsuPCjDBc_5_15.avi");
    let mut preds = Vec::new();
    for i in 0..spec.samples {
        let id = format!("{}", 1000 + i);
        let failed = spec.failed.contains(&i);
        let (images, frames): (Vec<String>, Vec<Option<[usize; 2]>>) = if video {
            (vec![clip.display().to_string(); 2], vec![Some([0, 8]), Some([7, 8])])
        } else {
            let n = spec.shots as usize + 1;
            ((0..n).map(|j| photos[(i + j) % 2].display().to_string()).collect(), vec![None; n])
        };
        let answer = ["two", "yes", "red", "a cat", "tiger", "no"][rng.below(6)];
        let score = if corpus || failed {
            None
        } else {
            // VQA-style accuracy steps (0, 1/3, 2/3, 1) ×100.
            let hits = (0..3).filter(|_| rng.uniform() < spec.skill).count();
            Some((hits as f64 * 100.0 / 3.0 * 100.0).round() / 100.0)
        };
        let mut stages = Vec::new();
        if spec.cot {
            stages.push(Stage {
                stage: "caption".to_owned(),
                kind: "generate".to_owned(),
                text: "<image> a photo of".to_owned(),
                images: images[..1].to_vec(),
                frames: frames[..1].to_vec(),
                output: json!("a cat on a mat"),
                error: None,
            });
        }
        stages.push(Stage {
            stage: "answer".to_owned(),
            kind: "generate".to_owned(),
            text: format!("<image> question {i}: what is shown? short answer:"),
            images,
            frames,
            output: if failed { serde_json::Value::Null } else { json!(format!("{answer}.")) },
            error: None,
        });
        preds.push(Prediction {
            id,
            support: (spec.shots > 0).then(|| Support {
                method: cfg.support_method.clone(),
                ids: (0..spec.shots).map(|k| format!("{}", 9000 + k)).collect(),
                similarities: Some((0..spec.shots).map(|k| 0.9 - 0.01 * k as f64).collect()),
            }),
            stages,
            prediction: if failed { serde_json::Value::Null } else { json!(answer) },
            score,
            error: failed
                .then(|| format!("{}: cannot decode: synthetic failure", photos[0].display())),
            time_seconds: 0.05,
            caption: None,
            image: None,
            answerable: None,
            ground_truth: None,
        });
    }
    let scored: Vec<f64> =
        preds.iter().filter(|p| p.error.is_none()).filter_map(|p| p.score).collect();
    let value = match metric {
        Some(Metric::Cider) => 80.0 + 40.0 * rng.uniform(),
        Some(Metric::Fid) => 11.0 + 2.0 * rng.uniform(),
        _ => scored.iter().sum::<f64>() / spec.samples as f64,
    };
    let value = (value * 1e4).round() / 1e4;
    let failed = spec.failed.len() as u64;
    let metrics = Metrics {
        task: cfg.task.clone(),
        split: cfg.split.clone(),
        counts: Counts {
            samples: spec.samples as u64,
            scored: spec.samples as u64 - failed,
            failed,
        },
        failed_counted_as_wrong: Some(failed > 0),
        failed_left_out: None,
        headline: Some(Headline { name: headline_name(spec.task).to_owned(), value: Some(value) }),
        metric: json!({ "overall": value }),
        fid_statistics: None,
        result_file: format!("{}_{}_results.json", cfg.task, cfg.split),
        config: cfg.clone(),
        timing: Timing {
            wall_seconds: Some(1.5),
            model_seconds: Some(1.2),
            samples_per_second: Some(spec.samples as f64 / 1.5),
            ..Timing::default()
        },
    };
    write_json(&dir.join("run.json"), &RunJson::new(cfg))?;
    write_json(&dir.join("metrics.json"), &metrics)?;
    let lines: Vec<String> =
        preds.iter().map(|p| serde_json::to_string(p).expect("serialisable")).collect();
    std::fs::write(dir.join("predictions.jsonl"), lines.join("\n") + "\n")?;
    Ok(dir)
}

/// Writes every spec under `root`; returns the folders in order.
pub fn write_runs(root: &Path, specs: &[Spec], media: &Path) -> std::io::Result<Vec<PathBuf>> {
    specs.iter().map(|s| write_run(root, s, media)).collect()
}

fn write_json<T: serde::Serialize>(path: &Path, v: &T) -> std::io::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(v).expect("serialisable") + "\n")
}
