//! RICES feature extraction throughput on CPU: a mid-size random EVA-CLIP tower (width 1024,
//! 16 blocks, 224 px, as the `forward` bench) through `media_features` (decode, Pillow-exact
//! resize, tower, CLS of `ln_visual`, L2 norm) on the fixture photos, f32, batches of 16.
//!
//! `cargo bench -p harness --bench rices` (env: RICES_BENCH_IMAGES, default 64; RICES_BENCH_BATCH).
use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use harness::rices_features::{media_features, Pooling, VisionFeatures, VisionTower};
use models::emu::config::EmuConfig;
use tasks::datasets::Media;

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Every weight normal(0, 0.02); rank-1 `*.weight` (norm scales) 1.
struct Random;

impl SimpleBackend for Random {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        if s.rank() == 1 && name.ends_with("weight") {
            return Tensor::ones(s, dtype, dev);
        }
        Tensor::randn(0f32, 0.02, s, dev)?.to_dtype(dtype)
    }
    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("{name}: shape needed")
    }
    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}

fn main() {
    let n = env_usize("RICES_BENCH_IMAGES", 64);
    let batch = env_usize("RICES_BENCH_BATCH", 16);
    let mut cfg = EmuConfig::emu_14b().vision;
    cfg.width = 1024;
    cfg.head_width = 64;
    cfg.layers = 16;
    let vb = VarBuilder::from_backend(Box::new(Random), DType::F32, Device::Cpu);
    let tower = VisionTower::new(&cfg, 1e-6, vb).expect("random tower");
    let params = cfg.layers * (4 * cfg.width * cfg.width + 2 * cfg.width * cfg.mlp_hidden());
    let ex = VisionFeatures { tower: &tower, pooling: Pooling::Cls };

    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures");
    let photos = ["emu-tiny/cat.jpg", "emu-tiny/tiger.jpg"];
    let media: Vec<Media> = (0..n)
        .map(|i| {
            let rel = photos[i % photos.len()];
            Media::Image { key: format!("{i}"), path: shared.join(rel) }
        })
        .collect();
    let refs: Vec<&Media> = media.iter().collect();
    // Warm-up batch (allocations, thread pools).
    media_features(&ex, &refs[..batch.min(n)], 1, batch).expect("features");
    let t = Instant::now();
    let out = media_features(&ex, &refs, 1, batch).expect("features");
    let s = t.elapsed().as_secs_f64();
    assert_eq!(out.len(), n * cfg.width);
    println!(
        "vision tower width {} × {} blocks ({:.0} M parameters), f32, batch {batch}, rayon threads {}: {n} images in {s:.2} s = {:.2} images/s",
        cfg.width,
        cfg.layers,
        params as f64 / 1e6,
        rayon::current_num_threads(),
        n as f64 / s
    );
}
