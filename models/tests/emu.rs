//! Emu model parity against `shared/fixtures/emu-tiny` (official code, float32): vision per block,
//! ln_visual, causal former, spliced embeddings, every hidden state and full logits, for weights
//! from `model.safetensors` and from the bfloat16 `model.pt`; loader strictness, pickle safety,
//! LoRA merging.
use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, IndexOp, Tensor};
use models::emu::{config::EmuConfig, tokenizer::EmuTokenizer, Emu, KvCache};
use models::testing::{assert_close_flat as assert_close, ids_of, temp_dir};

fn fixture() -> PathBuf {
    models::testing::fixture("emu-tiny")
}

fn vectors() -> HashMap<String, Tensor> {
    models::testing::vectors("emu-tiny")
}

fn strings() -> serde_json::Value {
    models::testing::strings("emu-tiny")
}

/// Full parity of one loaded model against every single-prompt and batch vector.
fn check_parity(emu: &Emu) {
    let v = vectors();
    let s = strings();
    // Token ids.
    let ids = emu.tokenizer().encode(s["PROMPT_SINGLE"].as_str().unwrap());
    assert_eq!(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), ids_of(&v["prompt_input_ids"]));
    let input_ids = v["prompt_input_ids"].clone();
    let tr = emu.forward_all(Some(&v["pixel_values_cat"]), &input_ids, None).unwrap();
    let tol = 1e-4;
    assert_close(
        "vision_patch_embed",
        tr.vision_patch_embed.as_ref().unwrap(),
        &v["vision_patch_embed_cat"],
        tol,
    );
    assert_close("vision_blocks", tr.vision_blocks.as_ref().unwrap(), &v["vision_blocks_cat"], tol);
    assert_close(
        "vision_features",
        tr.vision_features.as_ref().unwrap(),
        &v["vision_features_cat"],
        tol,
    );
    assert_close("ln_visual", tr.ln_visual.as_ref().unwrap(), &v["ln_visual_cat"], tol);
    assert_close(
        "cformer_t5_hidden_states_all",
        tr.cformer_hidden_states.as_ref().unwrap(),
        &v["cformer_t5_hidden_states_all"],
        tol,
    );
    assert_close(
        "cformer_hidden",
        tr.cformer_hidden.as_ref().unwrap(),
        &v["cformer_hidden_cat"],
        tol,
    );
    assert_close("cformer_out", tr.cformer_out.as_ref().unwrap(), &v["cformer_out_cat"], tol);
    assert_close("inputs_embeds", &tr.inputs_embeds, &v["prompt_inputs_embeds"], tol);
    assert_close("hidden_states_all", &tr.hidden_states_all, &v["prompt_hidden_states_all"], tol);
    assert_close("final_hidden", &tr.final_hidden, &v["prompt_final_hidden"], tol);
    assert_close("logits", &tr.logits, &v["prompt_logits"], tol);

    // Tiger through encode_images, and the batch splice (cat into row 0, tiger into row 1).
    let tiger = emu.encode_images(&v["pixel_values_tiger"]).unwrap();
    assert_close("cformer_out_tiger", &tiger, &v["cformer_out_tiger"], tol);
    let pixels = Tensor::cat(&[&v["pixel_values_cat"], &v["pixel_values_tiger"]], 0).unwrap();
    let images = emu.encode_images(&pixels).unwrap();
    let batch_embeds = emu.embed(&v["batch_input_ids"], Some(&images)).unwrap();
    assert_close("batch_inputs_embeds", &batch_embeds, &v["batch_inputs_embeds"], tol);

    // Left-padded batch as generate runs it: positions cumsum(mask) − 1 (pads 1); the first
    // step's scores are the last position's logits.
    let mask = &v["batch_attention_mask"];
    let m = mask.to_vec2::<i64>().unwrap();
    let pos: Vec<i64> = m
        .iter()
        .flat_map(|row| {
            let mut c = 0;
            row.iter().map(move |&x| {
                c += x;
                if x == 0 {
                    1
                } else {
                    c - 1
                }
            })
        })
        .collect();
    let (b, l) = mask.dims2().unwrap();
    let pos = Tensor::from_vec(pos, (b, l), &Device::Cpu).unwrap();
    let mut cache = KvCache::new(emu);
    let hidden = emu.forward_embeds(&batch_embeds, &pos, mask, &mut cache).unwrap();
    assert_eq!(cache.len(), l);
    let logits = emu.lm_head(&hidden.i((.., l - 1..l, ..)).unwrap()).unwrap();
    let step0 = v["batch_greedy_step_scores"].i((.., 0..1, ..)).unwrap();
    assert_close("batch step 0 scores", &logits, &step0, 5e-4);

    // KV cache: greedy single prompt, steps 1 and 2 fed one token at a time.
    let embeds = tr.inputs_embeds.clone();
    let l = embeds.dim(1).unwrap();
    let mut cache = KvCache::new(emu);
    let pos = Tensor::arange(0i64, l as i64, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let ones = Tensor::ones((1, l), DType::I64, &Device::Cpu).unwrap();
    let h = emu.forward_embeds(&embeds, &pos, &ones, &mut cache).unwrap();
    let scores = &v["greedy_step_scores"];
    assert_close(
        "greedy step 0",
        &emu.lm_head(&h.i((.., l - 1.., ..)).unwrap()).unwrap(),
        &scores.i((.., 0..1, ..)).unwrap(),
        5e-4,
    );
    let out = ids_of(&v["greedy_output_ids"]);
    #[allow(clippy::needless_range_loop)] // `step` is the decoding step (positions, scores)
    for step in 1..scores.dim(1).unwrap() {
        let tok = Tensor::new(&[[out[step] as u32]], &Device::Cpu).unwrap();
        let e = emu.embed(&tok, None).unwrap();
        let p = Tensor::new(&[[(l + step - 1) as i64]], &Device::Cpu).unwrap();
        let mask = Tensor::ones((1, l + step), DType::I64, &Device::Cpu).unwrap();
        let h = emu.forward_embeds(&e, &p, &mask, &mut cache).unwrap();
        assert_close(
            &format!("greedy step {step}"),
            &emu.lm_head(&h).unwrap(),
            &scores.i((.., step..step + 1, ..)).unwrap(),
            5e-4,
        );
    }
    // Beam reordering keeps rows: expand to 3 rows and check one more step is row-identical.
    cache.index_select(&Tensor::new(&[0u32, 0, 0], &Device::Cpu).unwrap()).unwrap();
    let n = cache.len();
    let tok = Tensor::new(&[[29889u32], [29889], [29889]], &Device::Cpu).unwrap();
    let e = emu.embed(&tok, None).unwrap();
    let p = Tensor::new(&[[n as i64], [n as i64], [n as i64]], &Device::Cpu).unwrap();
    let h = emu
        .forward_embeds(
            &e,
            &p,
            &Tensor::ones((3, n + 1), DType::U8, &Device::Cpu).unwrap(),
            &mut cache,
        )
        .unwrap();
    assert_close("beam rows equal", &h.i(2).unwrap(), &h.i(0).unwrap(), 1e-6);
}

#[test]
fn parity_from_safetensors() {
    let emu = Emu::load(&fixture(), None, DType::F32, &Device::Cpu).unwrap();
    assert!(emu.load_report.path.ends_with("model.safetensors"));
    // Tolerated unused keys: visual.norm/head, T5 embedding, 2 inv_freq.
    assert_eq!(emu.load_report.ignored.len(), 7, "{:?}", emu.load_report.ignored);
    check_parity(&emu);
}

#[test]
fn parity_from_bf16_pickle() {
    let emu =
        Emu::load(&fixture(), Some(&fixture().join("model.pt")), DType::F32, &Device::Cpu).unwrap();
    check_parity(&emu);
}

#[test]
fn bf16_forward_is_close() {
    let emu = Emu::load(&fixture(), None, DType::BF16, &Device::Cpu).unwrap();
    let v = vectors();
    let tr = emu.forward_all(Some(&v["pixel_values_cat"]), &v["prompt_input_ids"], None).unwrap();
    assert_eq!(tr.logits.dtype(), DType::F32);
    assert_close("bf16 logits", &tr.logits, &v["prompt_logits"], 0.1);
}

#[test]
fn dtype_probe_decodes_exactly() {
    let ck = models::emu::load::Checkpoint::open(&fixture().join("dtype_probe.pt"), None).unwrap();
    let names = ck.canonical_shapes();
    assert_eq!(names.len(), 9);
    for base in ["ln_visual.weight", "cformer.causal_tokens", "decoder.lm.model.norm.weight"] {
        let f32t = ck.read_file_key(&format!("{base}.f32")).unwrap();
        assert_eq!(f32t.dtype(), DType::F32);
        for (suffix, dt) in [("f16", DType::F16), ("bf16", DType::BF16)] {
            let t = ck.read_file_key(&format!("{base}.{suffix}")).unwrap();
            assert_eq!(t.dtype(), dt);
            assert_eq!(t.dims(), f32t.dims());
            // Stored values are the f32 values rounded to the narrower type: compare bits.
            let ours =
                t.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let want = f32t
                .to_dtype(dt)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert_eq!(ours, want, "{base}.{suffix}");
        }
    }
}

fn fixture_tensors() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture().join("model.safetensors"), &Device::Cpu).unwrap()
}

fn load_err(tensors: &HashMap<String, Tensor>, tag: &str) -> String {
    let dir = temp_dir(tag);
    let path = dir.join("w.safetensors");
    candle_core::safetensors::save(tensors, &path).unwrap();
    let r = Emu::load(&fixture(), Some(&path), DType::F32, &Device::Cpu);
    let _ = std::fs::remove_dir_all(&dir);
    match r {
        Ok(_) => panic!("{tag}: load succeeded"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn strict_loading_names_the_key() {
    let base = fixture_tensors();
    let mut t = base.clone();
    let w = t.remove("visual.blocks.1.attn.q_bias").unwrap();
    let msg = load_err(&t, "missing");
    assert!(msg.contains("visual.blocks.1.attn.q_bias"), "{msg}");

    let mut t = base.clone();
    t.insert("visual.blocks.1.attn.q_bias_renamed".into(), w);
    t.remove("visual.blocks.1.attn.q_bias");
    let msg = load_err(&t, "renamed");
    assert!(msg.contains("visual.blocks.1.attn.q_bias"), "{msg}");

    let mut t = base.clone();
    t.insert("cformer.extra.weight".into(), Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap());
    let msg = load_err(&t, "unexpected");
    assert!(msg.contains("cformer.extra.weight") && msg.contains("unexpected"), "{msg}");

    let mut t = base;
    t.insert(
        "cformer.projection.bias".into(),
        Tensor::zeros(63, DType::F32, &Device::Cpu).unwrap(),
    );
    let msg = load_err(&t, "shape");
    assert!(msg.contains("cformer.projection.bias") && msg.contains("[63]"), "{msg}");
}

/// A zip pickle whose data.pkl calls `posix.system` is refused before anything is read.
#[test]
fn foreign_pickle_is_refused() {
    use std::io::Write;
    let dir = temp_dir("pickle");
    let path = dir.join("evil.pt");
    let mut pkl = vec![0x80, 2, b'}', b'X'];
    pkl.extend_from_slice(&1u32.to_le_bytes());
    pkl.push(b'x');
    pkl.extend_from_slice(b"cposix\nsystem\n");
    pkl.push(b'X');
    pkl.extend_from_slice(&7u32.to_le_bytes());
    pkl.extend_from_slice(b"echo hi");
    pkl.extend_from_slice(&[0x85, b'R', b's', b'.']);
    {
        let f = std::fs::File::create(&path).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file("evil/data.pkl", opts).unwrap();
        z.write_all(&pkl).unwrap();
        z.start_file("evil/version", opts).unwrap();
        z.write_all(b"3\n").unwrap();
        z.finish().unwrap();
    }
    let r = Emu::load(&fixture(), Some(&path), DType::F32, &Device::Cpu);
    let _ = std::fs::remove_dir_all(&dir);
    let msg = format!("{:#}", r.err().expect("evil pickle loaded"));
    assert!(msg.contains("posix.system") && msg.contains("refused"), "{msg}");
}

/// Emu-I naming: LLaMA under `decoder.lm.base_model.model.`, LoRA on q/k/v/o, both peft
/// namings; the merged model equals a plain checkpoint holding W + scaling·B·A.
#[test]
fn lora_checkpoints_merge() {
    let base = fixture_tensors();
    let dev = Device::Cpu;
    let (r, alpha) = (4usize, 8.0f64); // scaling 2, so a wrong scaling shows
    let mut merged = base.clone();
    let mut peft_old = HashMap::new();
    let mut peft_new = HashMap::new();
    let mut seed = 0u64;
    for (k, t) in &base {
        let Some(rest) = k.strip_prefix("decoder.lm.") else {
            peft_old.insert(k.clone(), t.clone());
            peft_new.insert(k.clone(), t.clone());
            continue;
        };
        let pk = format!("decoder.lm.base_model.model.{rest}");
        let is_attn = ["q_proj", "k_proj", "v_proj", "o_proj"]
            .iter()
            .any(|p| rest.ends_with(&format!("self_attn.{p}.weight")));
        if !is_attn {
            peft_old.insert(pk.clone(), t.clone());
            peft_new.insert(pk, t.clone());
            continue;
        }
        let (out, inp) = t.dims2().unwrap();
        seed += 1;
        let a = Tensor::randn(0f32, 0.1, (r, inp), &dev).unwrap();
        let b = Tensor::randn(0f32, 0.1, (out, r), &dev).unwrap();
        let stem = pk.strip_suffix(".weight").unwrap();
        merged.insert(
            k.clone(),
            (t + (b.matmul(&a).unwrap() * (alpha / r as f64)).unwrap()).unwrap(),
        );
        peft_old.insert(pk.clone(), t.clone());
        peft_old.insert(format!("{stem}.lora_A.default.weight"), a.clone());
        peft_old.insert(format!("{stem}.lora_B.default.weight"), b.clone());
        peft_new.insert(format!("{stem}.base_layer.weight"), t.clone());
        peft_new.insert(format!("{stem}.lora_A.weight"), a);
        peft_new.insert(format!("{stem}.lora_B.weight"), b);
    }
    assert_eq!(seed, 8);
    let dir = temp_dir("lora");
    let mut cfg = EmuConfig::from_file(&fixture().join("config.json")).unwrap();
    cfg.lora = Some(models::emu::config::LoraConfig { r, lora_alpha: alpha });
    let v = vectors();
    let mut logits = vec![];
    for (name, t) in [("merged", &merged), ("old", &peft_old), ("new", &peft_new)] {
        let path = dir.join(format!("{name}.safetensors"));
        candle_core::safetensors::save(t, &path).unwrap();
        let tok = EmuTokenizer::from_file(&fixture().join("tokenizer.json"), false).unwrap();
        let emu = Emu::load_with(cfg.clone(), &path, tok, DType::F32, &dev).unwrap();
        if name != "merged" {
            assert_eq!(emu.load_report.lora_merged, 8, "{name}");
        }
        logits.push(
            emu.forward_all(Some(&v["pixel_values_cat"]), &v["prompt_input_ids"], None)
                .unwrap()
                .logits,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert_close("lora old naming", &logits[1], &logits[0], 1e-5);
    assert_close("lora new naming", &logits[2], &logits[0], 1e-5);
    // And it differs from the base model.
    let diff = (&logits[0] - &v["prompt_logits"])
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff > 1e-2);
}
