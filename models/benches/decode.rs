//! Decoding benchmarks on a mid-size random Emu (LLaMA hidden 512, 8 layers, real vocabulary):
//! shared-prefix vs naive option ranking on 100 candidates, and beam-5 generation throughput for
//! batch 1, 8, 32 on the CPU. Run: `cargo bench -p harness --bench decode`.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use models::decode::emu_lm::EmuSession;
use models::decode::rank_emu::{encode_candidates, rank_naive, rank_shared, single_prompt_embeds};
use models::decode::{generate, GenerationConfig};
use models::emu::Emu;

const HIDDEN: usize = 512;
const INTER: usize = 1376;
const HEADS: usize = 8;
const LAYERS: usize = 8;

fn tiny() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/emu-tiny")
}

/// Deterministic pseudo-normal values (scaled uniform sums).
fn random(n: usize, seed: u64, std: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            let mut acc = 0.0f32;
            for _ in 0..3 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                acc += (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            }
            acc * 2.0 * std
        })
        .collect()
}

/// A model directory with the tiny vision tower / causal former and a mid-size random LLaMA.
fn mid_model(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tiny().join("config.json"))?)?;
    let l = &mut cfg["llama"];
    l["hidden_size"] = HIDDEN.into();
    l["intermediate_size"] = INTER.into();
    l["num_attention_heads"] = HEADS.into();
    l["num_hidden_layers"] = LAYERS.into();
    l["head_dim"] = (HIDDEN / HEADS).into();
    cfg["causal_former"]["output_dim"] = HIDDEN.into();
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&cfg)?)?;
    std::fs::copy(tiny().join("tokenizer.json"), dir.join("tokenizer.json"))?;
    std::fs::copy(tiny().join("tokenizer_config.json"), dir.join("tokenizer_config.json"))?;

    let src = candle_core::safetensors::load(tiny().join("model.safetensors"), &Device::Cpu)?;
    let map_dim = |d: usize| match d {
        64 => HIDDEN,
        176 => INTER,
        other => other,
    };
    let mut out: HashMap<String, Tensor> = HashMap::new();
    let mut seed = 1u64;
    let mut make = |shape: Vec<usize>, norm: bool| -> anyhow::Result<Tensor> {
        seed += 1;
        let n: usize = shape.iter().product();
        let data = if norm { vec![1.0f32; n] } else { random(n, seed, 0.05) };
        Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
    };
    for (name, t) in &src {
        if name.contains("rotary_emb.inv_freq") {
            continue;
        }
        if let Some(rest) = name.strip_prefix("decoder.lm.model.layers.0.") {
            let shape: Vec<usize> = t.dims().iter().map(|&d| map_dim(d)).collect();
            for layer in 0..LAYERS {
                let t = make(shape.clone(), rest.contains("layernorm"))?;
                out.insert(format!("decoder.lm.model.layers.{layer}.{rest}"), t);
            }
        } else if name.starts_with("decoder.lm.model.layers.") {
            continue;
        } else if name.starts_with("decoder.lm.") {
            let shape: Vec<usize> = t.dims().iter().map(|&d| map_dim(d)).collect();
            let t = make(shape, name.ends_with("norm.weight"))?;
            out.insert(name.clone(), t);
        } else if name.starts_with("cformer.projection.") {
            let mut shape = t.dims().to_vec();
            shape[0] = HIDDEN;
            let t = make(shape, false)?;
            out.insert(name.clone(), t);
        } else {
            out.insert(name.clone(), t.clone());
        }
    }
    candle_core::safetensors::save(&out, dir.join("model.safetensors"))?;
    Ok(())
}

fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..reps {
        let t = Instant::now();
        last = Some(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, last.unwrap())
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("emu-eval-bench-decode-{}", std::process::id()));
    mid_model(&dir)?;
    let emu = Emu::load(&dir, None, DType::F32, &Device::Cpu)?;
    let pixels = candle_core::safetensors::load(tiny().join("vectors.safetensors"), &Device::Cpu)?
        .remove("pixel_values_cat")
        .expect("pixel_values_cat");
    println!("model: LLaMA hidden {HIDDEN}, {LAYERS} layers, {HEADS} heads, intermediate {INTER}, vocab 32004; f32 CPU");

    // Ranking: a VisDial-like prompt (~110 tokens) and 100 candidates.
    let history = " [USER]: is it sunny? [ASSISTANT]: yes.</s>".repeat(6);
    let prompt = format!("[IMG]<image><image><image><image>[/IMG]</s>{history} [USER]: how many people are in the picture? [ASSISTANT]:");
    let embeds = single_prompt_embeds(&emu, &prompt, Some(&pixels))?;
    let words = [
        "yes",
        "no",
        "two people",
        "i can't tell",
        "a cat on the table",
        "blue",
        "it is sunny outside",
        "maybe",
        "three",
        "white and brown",
    ];
    let cands: Vec<String> =
        (0..100).map(|i| format!("{} {}", words[i % 10], words[(i / 10) % 10])).collect();
    let cands = encode_candidates(&emu, &cands)?;
    let p = embeds.dim(1)?;
    let (t_shared, shared) = time(3, || rank_shared(&emu, &embeds, &cands, 100, 100).unwrap());
    let (t_naive, naive) = time(3, || rank_naive(&emu, &embeds, &cands, 100).unwrap());
    let (t_naive1, _) = time(3, || rank_naive(&emu, &embeds, &cands, 1).unwrap());
    let max_diff =
        shared.losses.iter().zip(&naive.losses).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    println!(
        "\n## ranking: prompt {p} tokens, 100 candidates (1-5 tokens), n_segments 100 (VisDial)"
    );
    println!("naive (one [prompt; cand] forward per segment, as the reference): {:.3} s", t_naive);
    println!("naive with n_segments 1 (one batch of 100 full sequences):        {:.3} s", t_naive1);
    println!(
        "shared prefix (prompt once, 100 candidates batched over its cache): {:.3} s",
        t_shared
    );
    println!("speed-up vs naive n_segments 100: {:.1}x; vs n_segments 1: {:.1}x; max |loss diff| {max_diff:.2e}", t_naive / t_shared, t_naive1 / t_shared);

    // Beam-5 generation throughput.
    println!(
        "\n## beam search: 5 beams, 16 new tokens (EOS blocked by min_length), ~30-token prompts"
    );
    let cfg = GenerationConfig {
        num_beams: 5,
        max_new_tokens: 16,
        min_length: 17,
        ..GenerationConfig::default()
    };
    for batch in [1usize, 8, 32] {
        let prompts: Vec<String> =
            (0..batch).map(|i| format!("[IMG]<image><image><image><image>[/IMG]Question {i}: what can be seen in this picture? Please describe it{}", " briefly".repeat(i % 4))).collect();
        let px = pixels.repeat((batch, 1, 1, 1))?;
        let (t, out) = time(1, || {
            let mut s = EmuSession::from_prompts(&emu, &prompts, Some(&px)).unwrap();
            generate(&mut s, &cfg, None).unwrap()
        });
        let tokens: usize = out.iter().map(|g| g.ids.len()).sum();
        println!(
            "batch {batch:>2}: {tokens} tokens in {t:.2} s = {:.1} generated tokens/s",
            tokens as f64 / t
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
