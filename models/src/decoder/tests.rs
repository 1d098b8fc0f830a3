//! Parity with ../shared/fixtures/visual-decoder-tiny (the official EmuGenerationPipeline with
//! diffusers 0.15.1, float32 CPU). Tolerances are the fixture README's.
use std::collections::HashMap;

use candle_core::{DType, Device, IndexOp, Tensor};

use super::config::SchedulerConfig;
use super::pndm::Pndm;
use super::*;
use crate::testing::{assert_close, assert_close_max, f32s, fixture, vectors};

const NET_RTOL: f32 = 1e-4;
const NET_ATOL: f32 = 1e-5;

fn decoder() -> VisualDecoder {
    VisualDecoder::load(&fixture("visual-decoder-tiny"), DType::F32, &Device::Cpu)
        .expect("tiny decoder loads")
}

fn scheduler() -> Pndm {
    let cfg =
        SchedulerConfig::load(&fixture("visual-decoder-tiny/scheduler/scheduler_config.json"))
            .unwrap();
    Pndm::new(&cfg)
}

fn v() -> HashMap<String, Tensor> {
    vectors("visual-decoder-tiny")
}

fn ints(t: &Tensor) -> Vec<i64> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// The uint8 image: exact except where our float value lies within 1e-4 of a rounding boundary,
/// where ±1 is allowed. Returns how many pixels used the allowance.
fn assert_image(what: &str, ours: &Generated, reference: &Tensor) -> usize {
    let r: Vec<u8> = reference.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(ours.rgb.len(), r.len(), "{what}: size");
    let float = f32s(&image_float(&ours.decoded).unwrap());
    let mut near = 0;
    for (i, (&a, &b)) in ours.rgb.iter().zip(&r).enumerate() {
        if a == b {
            continue;
        }
        let boundary = ((float[i] * 255.0).floor() + 0.5) / 255.0;
        let at_boundary = (float[i] - boundary).abs() <= 1e-4;
        assert!(
            at_boundary && a.abs_diff(b) == 1,
            "{what}: byte {i}: ours {a}, ref {b} (float {})",
            float[i]
        );
        near += 1;
    }
    near
}

#[test]
fn betas_and_alphas_cumprod_match_torch() {
    let s = scheduler();
    let v = v();
    let ours = Tensor::new(s.alphas_cumprod.as_slice(), &Device::Cpu).unwrap();
    assert_close_max("alphas_cumprod", &ours, &v["sched_alphas_cumprod"], 1e-7);
    assert_eq!(s.final_alpha_cumprod, f32s(&v["sched_alphas_cumprod"])[0]);
}

#[test]
fn timesteps_match_exactly() {
    let mut s = scheduler();
    let v = v();
    for (n, key) in [(10, "timesteps_10"), (50, "timesteps_50")] {
        let ours: Vec<i64> = s.set_timesteps(n).iter().map(|&t| t as i64).collect();
        assert_eq!(ours, ints(&v[key]), "{key}");
    }
}

#[test]
fn sched50_chain_within_tolerance() {
    let mut s = scheduler();
    let v = v();
    let ts = s.set_timesteps(50).to_vec();
    let outputs = &v["sched50_model_outputs"];
    let t_prev = ints(&v["sched50_t_prev_t"]);
    let mut x = v["sched50_sample_in"].clone();
    for (k, &t) in ts.iter().enumerate() {
        let out = s.step(&outputs.get(k).unwrap(), t, &x).unwrap();
        assert_eq!(
            [out.t_prev_t.0, out.t_prev_t.1],
            [t_prev[2 * k], t_prev[2 * k + 1]],
            "step {k} (t, prev_t)"
        );
        assert_close_max(
            &format!("sched50 eps' {k}"),
            &out.eps_combined,
            &v["sched50_eps_combined"].get(k).unwrap(),
            2e-6,
        );
        assert_close_max(
            &format!("sched50 sample {k}"),
            &out.prev_sample,
            &v["sched50_samples_out"].get(k).unwrap(),
            2e-6,
        );
        x = out.prev_sample;
    }
}

#[test]
fn run10_scheduler_steps_from_stored_inputs() {
    let mut s = scheduler();
    let v = v();
    let ts = s.set_timesteps(10).to_vec();
    let t_prev = ints(&v["run10_sched_t_prev_t"]);
    for (k, &t) in ts.iter().enumerate() {
        let out = s
            .step(
                &v["run10_noise_pred_guided"].get(k).unwrap(),
                t,
                &v["run10_latents_in"].get(k).unwrap(),
            )
            .unwrap();
        assert_eq!(
            [out.t_prev_t.0, out.t_prev_t.1],
            [t_prev[2 * k], t_prev[2 * k + 1]],
            "step {k}"
        );
        assert_close_max(
            &format!("sample used {k}"),
            &out.sample_used,
            &v["run10_sched_sample_used"].get(k).unwrap(),
            1e-6,
        );
        assert_close_max(
            &format!("eps' {k}"),
            &out.eps_combined,
            &v["run10_sched_eps_combined"].get(k).unwrap(),
            1e-6,
        );
        assert_close_max(
            &format!("latents out {k}"),
            &out.prev_sample,
            &v["run10_latents_out"].get(k).unwrap(),
            1e-6,
        );
    }
}

#[test]
fn unet_time_embedding_and_every_step_output() {
    let d = decoder();
    let v = v();
    let (proj, emb) = d.unet.time_embed(901, 2, DType::F32, &Device::Cpu).unwrap();
    assert_close("time_proj", &proj, &v["unet_time_proj_step0"], NET_RTOL, NET_ATOL);
    assert_close("time_emb", &emb, &v["unet_time_emb_step0"], NET_RTOL, NET_ATOL);
    let ctx = &v["cond_batch_text"];
    for (k, t) in ints(&v["timesteps_10"]).into_iter().enumerate() {
        let lat = v["run10_latents_in"].get(k).unwrap();
        let out = d.unet.forward(&Tensor::cat(&[&lat, &lat], 0).unwrap(), t as usize, ctx).unwrap();
        assert_close(
            &format!("noise cond {k}"),
            &out.i(0..1).unwrap(),
            &v["run10_noise_pred_cond"].get(k).unwrap(),
            NET_RTOL,
            NET_ATOL,
        );
        assert_close(
            &format!("noise uncond {k}"),
            &out.i(1..2).unwrap(),
            &v["run10_noise_pred_uncond"].get(k).unwrap(),
            NET_RTOL,
            NET_ATOL,
        );
    }
}

#[test]
fn vae_decode_of_stored_latents() {
    let d = decoder();
    let v = v();
    let g = d.decode(&v["run10_final_latents"]).unwrap();
    assert_close("vae decoded", &g.decoded, &v["run10_vae_decoded"], NET_RTOL, NET_ATOL);
    assert_close(
        "image float",
        &image_float(&g.decoded).unwrap(),
        &v["run10_image_float"],
        NET_RTOL,
        NET_ATOL,
    );
    assert_image("run10 image from stored latents", &g, &v["run10_image_u8"]);
}

/// Runs the whole pipeline and checks every step's guided noise and latents, then the image.
fn full_run(steps: usize, guidance: f64, ctx: &str, prefix: &str) -> (Generated, Vec<StepTrace>) {
    let d = decoder();
    let v = v();
    let rows = &v[ctx];
    let (cond, uncond) = if rows.dim(0).unwrap() == 2 {
        (rows.i(0..1).unwrap(), rows.i(1..2).unwrap())
    } else {
        (rows.clone(), rows.clone())
    };
    let mut trace = vec![];
    let g = d
        .generate(&cond, &uncond, &v["initial_latents"], GenerateOptions { steps, guidance }, |s| {
            trace.push(s.clone())
        })
        .unwrap();
    assert_eq!(trace.len(), steps + 1, "{prefix}: UNet evaluations");
    assert_close_max(
        &format!("{prefix} final latents"),
        &g.final_latents,
        &v[&format!("{prefix}_final_latents")],
        1e-4,
    );
    (g, trace)
}

#[test]
fn run10_guidance5_matches_every_step_and_the_image() {
    let v = v();
    let (g, trace) = full_run(10, 5.0, "cond_batch_text", "run10");
    for (k, s) in trace.iter().enumerate() {
        assert_close_max(
            &format!("latents in {k}"),
            &s.latents_in,
            &v["run10_latents_in"].get(k).unwrap(),
            1e-4,
        );
        assert_close(
            &format!("cond {k}"),
            &s.noise_cond,
            &v["run10_noise_pred_cond"].get(k).unwrap(),
            NET_RTOL,
            NET_ATOL,
        );
        assert_close(
            &format!("uncond {k}"),
            s.noise_uncond.as_ref().unwrap(),
            &v["run10_noise_pred_uncond"].get(k).unwrap(),
            NET_RTOL,
            NET_ATOL,
        );
        assert_close(
            &format!("guided {k}"),
            &s.noise_guided,
            &v["run10_noise_pred_guided"].get(k).unwrap(),
            NET_RTOL,
            NET_ATOL,
        );
        assert_close_max(
            &format!("latents out {k}"),
            &s.sched.prev_sample,
            &v["run10_latents_out"].get(k).unwrap(),
            1e-4,
        );
    }
    // The fixture README's check for latents chained through the UNet: 1e-4 of max|ref|.
    let vae_in = (&g.final_latents * (1.0 / 0.18215)).unwrap();
    assert_close_max("vae input", &vae_in, &v["run10_vae_input"], 1e-4);
    assert_close("vae decoded", &g.decoded, &v["run10_vae_decoded"], NET_RTOL, NET_ATOL);
    assert_image("run10 image", &g, &v["run10_image_u8"]);
}

#[test]
fn run50_guidance5_matches_every_step_and_the_image() {
    let v = v();
    let (g, trace) = full_run(50, 5.0, "cond_batch_text", "run50");
    for (k, s) in trace.iter().enumerate() {
        assert_close_max(
            &format!("run50 latents out {k}"),
            &s.sched.prev_sample,
            &v["run50_latents_out"].get(k).unwrap(),
            1e-4,
        );
    }
    assert_close("run50 vae decoded", &g.decoded, &v["run50_vae_decoded"], NET_RTOL, NET_ATOL);
    assert_image("run50 image", &g, &v["run50_image_u8"]);
}

#[test]
fn run10_guidance7p5_image() {
    let v = v();
    let (g, _) = full_run(10, 7.5, "cond_batch_text", "run10_g7p5");
    assert_image("run10 g7.5 image", &g, &v["run10_g7p5_image_u8"]);
}

#[test]
fn run10_guidance1_has_no_cfg_batch() {
    let (_, trace) = full_run(10, 1.0, "cond_text_only_unbatched", "run10_g1");
    assert!(trace.iter().all(|s| s.noise_uncond.is_none()));
}

#[test]
fn run10_image_prompt_image() {
    let v = v();
    let (g, _) = full_run(10, 5.0, "cond_batch_image", "run10_image_prompt");
    assert_image("image-prompt image", &g, &v["run10_image_prompt_image_u8"]);
}

#[test]
fn strict_loading_names_missing_and_unexpected_keys() {
    let dir = std::env::temp_dir().join(format!("vd-strict-{}", std::process::id()));
    for sub in ["unet", "vae", "scheduler"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let src = fixture("visual-decoder-tiny");
    for f in [
        "unet/config.json",
        "vae/config.json",
        "scheduler/scheduler_config.json",
        "vae.safetensors",
    ] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let mut unet =
        candle_core::safetensors::load(src.join("unet.safetensors"), &Device::Cpu).unwrap();
    unet.insert("extra.weight".into(), Tensor::zeros(1, DType::F32, &Device::Cpu).unwrap());
    candle_core::safetensors::save(&unet, dir.join("unet.safetensors")).unwrap();
    let e = VisualDecoder::load(&dir, DType::F32, &Device::Cpu)
        .err()
        .expect("unexpected key refused")
        .to_string();
    assert!(
        e.contains("unet.safetensors")
            && e.contains("1 unexpected key(s), first `extra.weight`")
            && !e.contains('\n'),
        "{e}"
    );
    unet.remove("extra.weight");
    unet.remove("conv_in.bias");
    candle_core::safetensors::save(&unet, dir.join("unet.safetensors")).unwrap();
    let e = VisualDecoder::load(&dir, DType::F32, &Device::Cpu)
        .err()
        .expect("missing key refused")
        .to_string();
    assert!(
        e.contains("unet.safetensors")
            && e.contains("missing key `conv_in.bias`")
            && !e.contains('\n'),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `UNet2DConditionModel::prepare(h, w)` makes exactly the Winograd transforms that a forward at
/// (h, w) makes (odd latents: the second level is 9 × 9, below the Winograd size), and the
/// prepared model's output is the unprepared one's.
#[test]
fn unet_prepare_transforms_what_the_forward_uses() {
    use candle_nn::{VarBuilder, VarMap};
    let cfg: super::config::UNetConfig = serde_json::from_value(serde_json::json!({
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "block_out_channels": [128, 128], "layers_per_block": 1, "attention_head_dim": 8,
        "cross_attention_dim": 32 }))
    .unwrap();
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    // Two models over the same weights, each with its own transforms.
    let prepared = unet::UNet2DConditionModel::new(vb.clone(), &cfg).unwrap();
    let plain = unet::UNet2DConditionModel::new(vb, &cfg).unwrap();
    prepared.prepare(17, 17).unwrap();
    let ready: Vec<bool> = prepared.convs().iter().map(|c| c.is_transformed()).collect();
    let latents = Tensor::randn(0f32, 1.0, (1, 4, 17, 17), &Device::Cpu).unwrap();
    let context = Tensor::randn(0f32, 1.0, (1, 3, 32), &Device::Cpu).unwrap();
    let a = plain.forward(&latents, 500, &context).unwrap();
    let used: Vec<bool> = plain.convs().iter().map(|c| c.is_transformed()).collect();
    assert_eq!(ready, used);
    if crate::conv::winograd_enabled() {
        assert!(used.contains(&true) && used.contains(&false), "{used:?}");
    }
    let b = prepared.forward(&latents, 500, &context).unwrap();
    assert_eq!(f32s(&a), f32s(&b));
}
