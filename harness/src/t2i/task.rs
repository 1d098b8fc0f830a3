//! The `coco_t2i` task as one library call for the runner: sample the prompts (seeded, list
//! written next to the results), generate one PNG per caption id with resume, then FID of the
//! generated images against the real images' statistics (cached as `.npz`).
use std::path::PathBuf;

use anyhow::{Context, Result};
use candle_core::Device;
use models::inception::FidInception;
use serde::Serialize;
use tasks::datasets::Sample;
use tasks::metrics::fid::frechet_distance;

use super::captions::{read_captions, sample_captions, write_captions, Caption};
use super::fid::cached_stats;
use super::{generate_images, image_path, GenerateCounts, TextToImage};

/// Folder of the generated images in a run folder (the registry's `result_file` of coco_t2i).
pub const IMAGES_DIR: &str = "coco_t2i_images";

/// Files of a coco_t2i run folder.
pub struct T2iLayout {
    pub dir: PathBuf,
}

impl T2iLayout {
    pub fn captions(&self) -> PathBuf {
        self.dir.join("captions.json")
    }
    /// The generated PNGs: the task's result "file" (`coco_t2i_images`).
    pub fn images(&self) -> PathBuf {
        self.dir.join(IMAGES_DIR)
    }
    pub fn generated_stats(&self) -> PathBuf {
        self.dir.join("generated_stats.npz")
    }
}

/// Settings of a coco_t2i run.
#[derive(Debug, Clone)]
pub struct T2iSettings {
    /// Number of prompts (30,000 in the paper's protocol).
    pub prompts: usize,
    /// Seed of the caption sample and of every image's noise.
    pub seed: u64,
    /// Real-image statistics: read when the file exists, else computed from the sampled
    /// captions' distinct images and written there.
    pub reference_stats: PathBuf,
    /// Inception batch size.
    pub batch: usize,
    /// `(index, count)`: generate only captions `i` with `i % count == index`; FID is computed
    /// only when every image of the list exists.
    pub shard: Option<(usize, usize)>,
}

/// The outcome, as `metrics.json` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct T2iOutcome {
    pub prompts: usize,
    pub generated: usize,
    pub skipped: usize,
    /// Missing images (other shards still to run); FID needs 0.
    pub missing: usize,
    pub reference_images: usize,
    /// pytorch-fid convention (Inception pool3, bilinear resize in the network, float64 stats).
    pub fid: Option<f64>,
}

/// The prompt list of a run folder: read back when it exists (resume), else sampled and written.
pub fn prompt_list(layout: &T2iLayout, samples: &[Sample], prompts: usize, seed: u64) -> Result<Vec<Caption>> {
    let path = layout.captions();
    if path.is_file() {
        return read_captions(&path);
    }
    std::fs::create_dir_all(&layout.dir).with_context(|| format!("{}: cannot create", layout.dir.display()))?;
    let list = sample_captions(samples, prompts, seed);
    write_captions(&path, &list)?;
    Ok(list)
}

/// Runs the task: prompts, images (resumable), FID.
pub fn run_coco_t2i(
    t2i: &TextToImage,
    inception: &FidInception,
    device: &Device,
    samples: &[Sample],
    layout: &T2iLayout,
    settings: &T2iSettings,
    on_image: impl FnMut(u64, f64),
) -> Result<T2iOutcome> {
    let list = prompt_list(layout, samples, settings.prompts, settings.seed)?;
    let mine: Vec<Caption> = match settings.shard {
        Some((i, n)) => list.iter().enumerate().filter(|(k, _)| k % n == i).map(|(_, c)| c.clone()).collect(),
        None => list.clone(),
    };
    let GenerateCounts { generated, skipped } = generate_images(t2i, &mine, &layout.images(), settings.seed, on_image)?;
    let images: Vec<PathBuf> = list.iter().map(|c| image_path(&layout.images(), c.id)).collect();
    let missing = images.iter().filter(|p| !p.is_file()).count();
    let mut reference: Vec<PathBuf> = list.iter().map(|c| c.image.clone()).collect();
    reference.sort();
    reference.dedup();
    let mut outcome = T2iOutcome { prompts: list.len(), generated, skipped, missing, reference_images: reference.len(), fid: None };
    if missing == 0 {
        let (mu_r, sigma_r) = cached_stats(inception, &reference, &settings.reference_stats, settings.batch, device)?;
        let stats = layout.generated_stats();
        if generated > 0 {
            std::fs::remove_file(&stats).ok(); // new images: the cached statistics are stale
        }
        let (mu_g, sigma_g) = cached_stats(inception, &images, &stats, settings.batch, device)?;
        outcome.fid = Some(frechet_distance(&mu_g, &sigma_g, &mu_r, &sigma_r));
    }
    Ok(outcome)
}
