//! Visual decoder and FID Inception throughput on CPU: UNet classifier-free-guidance steps per
//! second (one step = the UNet on a [cond; uncond] batch of 2, then the PNDM update) for the tiny
//! fixture decoder, a mid-size random UNet and (with `T2I_BENCH_FULL=1`) the SD 1.5 size with
//! Emu's 5120-wide conditioning; VAE decodes per second; Inception pool3 images per second.
//!
//! `cargo bench -p models --bench t2i`
use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use models::decoder::config::{SchedulerConfig, UNetConfig};
use models::decoder::pndm::Pndm;
use models::decoder::unet::UNet2DConditionModel;
use models::decoder::VisualDecoder;
use models::inception::{self, FidInception};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures").join(name)
}

/// Median seconds of `reps` calls after one warm-up.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[reps / 2]
}

fn sd15_scheduler() -> SchedulerConfig {
    serde_json::from_value(serde_json::json!({
        "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
        "skip_prk_steps": true, "steps_offset": 1 }))
    .unwrap()
}

/// Seconds per CFG step: UNet on batch 2 + guidance + PNDM step.
fn cfg_step_seconds(
    unet: &UNet2DConditionModel,
    latent: usize,
    tokens: usize,
    width: usize,
    reps: usize,
) -> f64 {
    let dev = Device::Cpu;
    let lat = Tensor::randn(0f32, 1.0, (1, 4, latent, latent), &dev).unwrap();
    let ctx = Tensor::randn(0f32, 1.0, (2, tokens, width), &dev).unwrap();
    let mut sched = Pndm::new(&sd15_scheduler());
    let ts = sched.set_timesteps(50).to_vec();
    let mut k = 0;
    time(reps, || {
        let x = Tensor::cat(&[&lat, &lat], 0).unwrap();
        let e = unet.forward(&x, ts[k % ts.len()], &ctx).unwrap();
        let (c, u) =
            (e.get(0).unwrap().unsqueeze(0).unwrap(), e.get(1).unwrap().unsqueeze(0).unwrap());
        let g = (&u + ((&c - &u).unwrap() * 5.0).unwrap()).unwrap();
        sched.step(&g, ts[k % ts.len()], &lat).unwrap();
        k += 1;
    })
}

fn random_unet(cfg: serde_json::Value) -> (UNet2DConditionModel, usize) {
    let cfg: UNetConfig = serde_json::from_value(cfg).unwrap();
    let vm = VarMap::new();
    let unet =
        UNet2DConditionModel::new(VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu), &cfg)
            .unwrap();
    let params = vm.all_vars().iter().map(|v| v.elem_count()).sum();
    (unet, params)
}

fn main() {
    let dev = Device::Cpu;
    println!("threads: {}", candle_core::utils::get_num_threads());

    let tiny = VisualDecoder::load(&fixture("visual-decoder-tiny"), DType::F32, &dev).unwrap();
    let s = cfg_step_seconds(&tiny.unet, 8, 4, 64, 50);
    println!(
        "unet tiny (32/64 ch, 8x8 latents, 4x64 conditioning): {:.1} CFG steps/s ({:.2} ms/step)",
        1.0 / s,
        s * 1e3
    );
    let lat = Tensor::randn(0f32, 1.0, (1, 4, 8, 8), &dev).unwrap();
    let s = time(20, || {
        tiny.decode(&lat).unwrap();
    });
    println!("vae tiny decode 8x8 -> 64x64: {:.1} images/s", 1.0 / s);

    let mid = serde_json::json!({
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "block_out_channels": [128, 256, 512], "layers_per_block": 1, "attention_head_dim": 8,
        "cross_attention_dim": 1024 });
    let (unet, params) = random_unet(mid);
    let s = cfg_step_seconds(&unet, 32, 32, 1024, 5);
    println!("unet mid (128/256/512 ch, {:.0}M params, 32x32 latents, 32x1024 conditioning): {:.2} CFG steps/s ({:.0} ms/step)", params as f64 / 1e6, 1.0 / s, s * 1e3);

    if std::env::var("T2I_BENCH_FULL").is_ok_and(|v| v == "1") {
        let full = serde_json::json!({
            "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
            "block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2, "attention_head_dim": 8,
            "cross_attention_dim": 5120 });
        let (unet, params) = random_unet(full);
        let s = cfg_step_seconds(&unet, 64, 32, 5120, 1);
        println!("unet SD1.5 size with 5120-wide conditioning ({:.0}M params, 64x64 latents): {:.3} CFG steps/s ({:.1} s/step)", params as f64 / 1e6, 1.0 / s, s);
    }

    let net =
        FidInception::load(&fixture("fid-inception/inception_weights.safetensors"), &dev).unwrap();
    let img: Vec<u8> = (0..512 * 512 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let s = time(10, || {
        inception::preprocess(&img, 512, 512);
    });
    println!("inception preprocess 512x512 -> 299x299: {:.0} images/s (one thread)", 1.0 / s);
    let one = inception::preprocess(&img, 512, 512);
    for batch in [1usize, 16] {
        let x = inception::batch_tensor(&vec![one.clone(); batch], &dev).unwrap();
        let s = time(3, || {
            net.pool3(&x).unwrap();
        });
        println!("inception pool3 batch {batch}: {:.2} images/s", batch as f64 / s);
    }
}
