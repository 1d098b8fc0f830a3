//! Emu forward throughput and memory on CPU for a mid-size random configuration (LLaMA width
//! 1024, 8 layers; vision width 1024, 16 blocks), f32 and bf16, plus checkpoint loading time and
//! resident memory for safetensors (mmap) vs a PyTorch `.pt`, and the same computation in PyTorch
//! when `python3 -c "import torch"` works.
//!
//! `cargo bench -p harness --bench forward`. Each measurement runs in a fresh child process
//! (this binary re-executed) so that peak RSS (`VmHWM`) belongs to that case alone.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use models::emu::{config::*, tokenizer::EmuTokenizer, Emu, KvCache};

const PROMPT_TEXT_TOKENS: usize = 94; // + [IMG] + 32 <image> + [/IMG] + BOS = 129
const DECODE_STEPS: usize = 16;

fn mid_config() -> EmuConfig {
    let mut cfg = EmuConfig::emu_14b();
    cfg.vision.width = 1024;
    cfg.vision.head_width = 64;
    cfg.vision.layers = 16;
    cfg.causal_former.encoder_width = 1024;
    cfg.causal_former.d_model = 512;
    cfg.causal_former.d_kv = 64;
    cfg.causal_former.num_heads = 8;
    cfg.causal_former.d_ff = 2048;
    cfg.causal_former.num_decoder_layers = 4;
    cfg.causal_former.vocab_size_unused_embedding = None;
    cfg.causal_former.output_dim = 1024;
    cfg.llama.hidden_size = 1024;
    cfg.llama.intermediate_size = 2816;
    cfg.llama.num_attention_heads = 16;
    cfg.llama.num_hidden_layers = 8;
    cfg.embed_dim = None;
    cfg
}

/// Every weight the model asks for, random normal with std 0.02 (norm scales 1).
fn random_weights(cfg: &EmuConfig) -> HashMap<String, Tensor> {
    let dev = Device::Cpu;
    let mut w = HashMap::new();
    let mut put = |k: String, shape: &[usize]| {
        let t = if k.contains("norm") && k.ends_with("weight") && shape.len() == 1 {
            Tensor::ones(shape, DType::F32, &dev).unwrap()
        } else {
            Tensor::randn(0f32, 0.02, shape, &dev).unwrap()
        };
        w.insert(k, t);
    };
    let v = &cfg.vision;
    let (vw, mh) = (v.width, v.mlp_hidden());
    put("visual.cls_token".into(), &[1, 1, vw]);
    put("visual.pos_embed".into(), &[1, v.num_tokens(), vw]);
    put("visual.patch_embed.proj.weight".into(), &[vw, 3, v.patch_size, v.patch_size]);
    put("visual.patch_embed.proj.bias".into(), &[vw]);
    for i in 0..v.layers {
        let p = format!("visual.blocks.{i}");
        for n in ["norm1", "norm2"] {
            put(format!("{p}.{n}.weight"), &[vw]);
            put(format!("{p}.{n}.bias"), &[vw]);
        }
        put(format!("{p}.attn.q_bias"), &[vw]);
        put(format!("{p}.attn.v_bias"), &[vw]);
        put(format!("{p}.attn.qkv.weight"), &[3 * vw, vw]);
        put(format!("{p}.attn.proj.weight"), &[vw, vw]);
        put(format!("{p}.attn.proj.bias"), &[vw]);
        put(format!("{p}.mlp.fc1.weight"), &[mh, vw]);
        put(format!("{p}.mlp.fc1.bias"), &[mh]);
        put(format!("{p}.mlp.fc2.weight"), &[vw, mh]);
        put(format!("{p}.mlp.fc2.bias"), &[vw]);
    }
    put("ln_visual.weight".into(), &[vw]);
    put("ln_visual.bias".into(), &[vw]);
    let c = &cfg.causal_former;
    let inner = c.num_heads * c.d_kv;
    put("cformer.causal_tokens".into(), &[1, cfg.n_causal, c.d_model]);
    put("cformer.projection.weight".into(), &[c.output_dim, c.d_model]);
    put("cformer.projection.bias".into(), &[c.output_dim]);
    put("cformer.cformer.final_layer_norm.weight".into(), &[c.d_model]);
    put(
        "cformer.cformer.block.0.layer.0.SelfAttention.relative_attention_bias.weight".into(),
        &[c.relative_attention_num_buckets, c.num_heads],
    );
    for j in 0..c.num_decoder_layers {
        let p = format!("cformer.cformer.block.{j}.layer");
        for (l, name, kvw) in
            [(0, "SelfAttention", c.d_model), (1, "EncDecAttention", c.encoder_width)]
        {
            put(format!("{p}.{l}.{name}.q.weight"), &[inner, c.d_model]);
            put(format!("{p}.{l}.{name}.k.weight"), &[inner, kvw]);
            put(format!("{p}.{l}.{name}.v.weight"), &[inner, kvw]);
            put(format!("{p}.{l}.{name}.o.weight"), &[c.d_model, inner]);
        }
        for l in 0..3 {
            put(format!("{p}.{l}.layer_norm.weight"), &[c.d_model]);
        }
        put(format!("{p}.2.DenseReluDense.wi.weight"), &[c.d_ff, c.d_model]);
        put(format!("{p}.2.DenseReluDense.wo.weight"), &[c.d_model, c.d_ff]);
    }
    let l = &cfg.llama;
    let (h, im) = (l.hidden_size, l.intermediate_size);
    put("decoder.lm.model.embed_tokens.weight".into(), &[l.vocab_size, h]);
    put("decoder.lm.model.norm.weight".into(), &[h]);
    put("decoder.lm.lm_head.weight".into(), &[l.vocab_size, h]);
    put("decoder.lm.stu_regress_head.weight".into(), &[h, h]);
    for i in 0..l.num_hidden_layers {
        let p = format!("decoder.lm.model.layers.{i}");
        for n in ["q_proj", "k_proj", "v_proj", "o_proj"] {
            put(format!("{p}.self_attn.{n}.weight"), &[h, h]);
        }
        put(format!("{p}.mlp.gate_proj.weight"), &[im, h]);
        put(format!("{p}.mlp.up_proj.weight"), &[im, h]);
        put(format!("{p}.mlp.down_proj.weight"), &[h, im]);
        put(format!("{p}.input_layernorm.weight"), &[h]);
        put(format!("{p}.post_attention_layernorm.weight"), &[h]);
    }
    w
}

fn fixture_tokenizer() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/emu-tiny/tokenizer.json"
    ))
}

/// Peak and current resident memory in MiB from /proc/self/status.
fn rss_mib() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn prompt(cfg: &EmuConfig) -> (Vec<u32>, Tensor) {
    let mut ids = vec![1u32, 32001];
    ids.extend(std::iter::repeat_n(32003u32, cfg.n_causal));
    ids.push(32002);
    ids.extend((0..PROMPT_TEXT_TOKENS).map(|i| 300 + (i as u32 * 37) % 20000));
    let pixels = Tensor::randn(0f32, 1.0, (1, 3, 224, 224), &Device::Cpu).unwrap();
    (ids, pixels)
}

/// Child: load + forward (+ decode steps) in one dtype; prints one result line.
fn child_forward(dir: &Path, dtype: DType) {
    let cfg = mid_config();
    let tok = EmuTokenizer::from_file(&fixture_tokenizer(), false).unwrap();
    let t0 = Instant::now();
    let emu = Emu::load_with(cfg.clone(), &dir.join("model.safetensors"), tok, dtype, &Device::Cpu)
        .unwrap();
    let load_s = t0.elapsed().as_secs_f64();
    let (ids, pixels) = prompt(&cfg);
    let l = ids.len();
    let input = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    // Warm-up, then timed full forwards (vision + cformer + LLM, logits for every position).
    emu.forward_all(Some(&pixels), &input, None).unwrap();
    let reps = 3;
    let t0 = Instant::now();
    for _ in 0..reps {
        emu.forward_all(Some(&pixels), &input, None).unwrap();
    }
    let fwd_s = t0.elapsed().as_secs_f64() / reps as f64;
    // Prefill with cache, then single-token decode steps.
    let img = emu.encode_images(&pixels).unwrap();
    let embeds = emu.embed(&input, Some(&img)).unwrap();
    let mut cache = KvCache::new(&emu);
    let pos = Tensor::arange(0i64, l as i64, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let t0 = Instant::now();
    let h = emu
        .forward_embeds(
            &embeds,
            &pos,
            &Tensor::ones((1, l), DType::U8, &Device::Cpu).unwrap(),
            &mut cache,
        )
        .unwrap();
    let _ = emu.lm_head(&h).unwrap();
    let prefill_s = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for s in 0..DECODE_STEPS {
        let tok = Tensor::new(&[[500u32 + s as u32]], &Device::Cpu).unwrap();
        let e = emu.embed(&tok, None).unwrap();
        let p = Tensor::new(&[[(l + s) as i64]], &Device::Cpu).unwrap();
        let m = Tensor::ones((1, l + s + 1), DType::U8, &Device::Cpu).unwrap();
        let h = emu.forward_embeds(&e, &p, &m, &mut cache).unwrap();
        let _ = emu.lm_head(&h).unwrap();
    }
    let decode_s = t0.elapsed().as_secs_f64();
    let (peak, _) = rss_mib();
    println!(
        "RESULT candle {dtype:?} load_s={load_s:.3} forward_s={fwd_s:.3} forward_tok_s={:.1} prefill_tok_s={:.1} decode_tok_s={:.2} peak_rss_mib={peak:.0}",
        l as f64 / fwd_s,
        l as f64 / prefill_s,
        DECODE_STEPS as f64 / decode_s
    );
}

/// Child: load only, report time and RSS.
fn child_load(path: &Path) {
    let cfg = mid_config();
    let tok = EmuTokenizer::from_file(&fixture_tokenizer(), false).unwrap();
    let t0 = Instant::now();
    let emu = Emu::load_with(cfg, path, tok, DType::F32, &Device::Cpu).unwrap();
    let load_s = t0.elapsed().as_secs_f64();
    let (peak, rss) = rss_mib();
    drop(emu);
    println!(
        "RESULT load {} load_s={load_s:.3} rss_mib={rss:.0} peak_rss_mib={peak:.0}",
        path.display()
    );
}

const TORCH_SCRIPT: &str = r#"
import sys, time, json, math, resource
import torch, torch.nn.functional as F
from safetensors.torch import load_file
d, dtype_name, L, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
mode = sys.argv[5]
torch.set_num_threads(2)
if mode == "topt":
    sd = load_file(d + "/model.safetensors"); torch.save(sd, d + "/model.pt"); sys.exit(0)
if mode == "loadpt":
    t0 = time.time(); sd = torch.load(d + "/model.pt", map_location="cpu"); t = time.time() - t0
    rss = int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
    print(f"RESULT torch.load load_s={t:.3f} rss_mib={rss:.0f}"); sys.exit(0)
dt = {"F32": torch.float32, "BF16": torch.bfloat16}[dtype_name]
cfg = json.load(open(d + "/config.json"))
sd = {k: v.to(dt) for k, v in load_file(d + "/model.safetensors").items()}
V, C, LM = cfg["vision"], cfg["causal_former"], cfg["llama"]
def ln(x, p, eps=1e-6): return F.layer_norm(x, (x.shape[-1],), sd[p + ".weight"], sd[p + ".bias"], eps)
def rms(x, w, eps=1e-6):
    v = x.float().pow(2).mean(-1, keepdim=True); return (x.float() * torch.rsqrt(v + eps)).to(dt) * w
def sm(x): return torch.softmax(x.float(), -1).to(dt)
def vision(px):
    x = F.conv2d(px.to(dt), sd["visual.patch_embed.proj.weight"], sd["visual.patch_embed.proj.bias"], stride=V["patch_size"])
    x = x.flatten(2).transpose(1, 2); B = x.shape[0]
    x = torch.cat([sd["visual.cls_token"].expand(B, -1, -1), x], 1) + sd["visual.pos_embed"]
    H = V["width"] // V["head_width"]
    for i in range(V["layers"]):
        p = f"visual.blocks.{i}"; h = ln(x, p + ".norm1")
        b = torch.cat([sd[p + ".attn.q_bias"], torch.zeros_like(sd[p + ".attn.q_bias"]), sd[p + ".attn.v_bias"]])
        qkv = F.linear(h, sd[p + ".attn.qkv.weight"], b).reshape(B, -1, 3, H, V["head_width"]).permute(2, 0, 3, 1, 4)
        a = sm(qkv[0] @ qkv[1].transpose(-1, -2) * V["head_width"] ** -0.5) @ qkv[2]
        x = x + F.linear(a.transpose(1, 2).reshape(B, -1, V["width"]), sd[p + ".attn.proj.weight"], sd[p + ".attn.proj.bias"])
        h = F.gelu(F.linear(ln(x, p + ".norm2"), sd[p + ".mlp.fc1.weight"], sd[p + ".mlp.fc1.bias"]))
        x = x + F.linear(h, sd[p + ".mlp.fc2.weight"], sd[p + ".mlp.fc2.bias"])
    return ln(x, "ln_visual")
def cformer(vis):
    B = vis.shape[0]; x = sd["cformer.causal_tokens"].expand(B, -1, -1); n = x.shape[1]; H, dk = C["num_heads"], C["d_kv"]
    i = torch.arange(n)[:, None]; j = torch.arange(n)[None]; rel = (i - j).clamp(min=0)
    large = 16 + (torch.log(rel.float() / 16) / math.log(128 / 16) * 16).long()
    bucket = torch.where(rel < 16, rel, large.clamp(max=31))
    bias = sd["cformer.cformer.block.0.layer.0.SelfAttention.relative_attention_bias.weight"][bucket].permute(2, 0, 1)[None]
    bias = bias + torch.where(j <= i, 0.0, torch.finfo(dt).min).to(dt)
    def att(p, q_in, kv, bias):
        q = F.linear(q_in, sd[p + ".q.weight"]).reshape(B, -1, H, dk).transpose(1, 2)
        k = F.linear(kv, sd[p + ".k.weight"]).reshape(B, -1, H, dk).transpose(1, 2)
        v = F.linear(kv, sd[p + ".v.weight"]).reshape(B, -1, H, dk).transpose(1, 2)
        s = q @ k.transpose(-1, -2)
        if bias is not None: s = s + bias
        return F.linear((sm(s) @ v).transpose(1, 2).reshape(B, -1, H * dk), sd[p + ".o.weight"])
    for b in range(C["num_decoder_layers"]):
        p = f"cformer.cformer.block.{b}.layer"
        h = rms(x, sd[p + ".0.layer_norm.weight"]); x = x + att(p + ".0.SelfAttention", h, h, bias)
        h = rms(x, sd[p + ".1.layer_norm.weight"]); x = x + att(p + ".1.EncDecAttention", h, vis, None)
        h = rms(x, sd[p + ".2.layer_norm.weight"])
        x = x + F.linear(F.relu(F.linear(h, sd[p + ".2.DenseReluDense.wi.weight"])), sd[p + ".2.DenseReluDense.wo.weight"])
    x = rms(x, sd["cformer.cformer.final_layer_norm.weight"])
    return F.linear(x, sd["cformer.projection.weight"], sd["cformer.projection.bias"])
hd = LM["hidden_size"] // LM["num_attention_heads"]
inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
def rot(x, pos):
    f = pos.float()[:, None] * inv[None]; e = torch.cat([f, f], -1); cos, sin = e.cos().to(dt), e.sin().to(dt)
    x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
    return x * cos + torch.cat([-x2, x1], -1) * sin
def llm(x, pos, cache):
    B, T, Hd = x.shape; nh = LM["num_attention_heads"]; past = cache[0][0].shape[2] if cache[0] is not None else 0
    mask = torch.full((T, past + T), torch.finfo(dt).min, dtype=dt).triu(past + 1)
    for l in range(LM["num_hidden_layers"]):
        p = f"decoder.lm.model.layers.{l}"; h = rms(x, sd[p + ".input_layernorm.weight"])
        q, k, v = [F.linear(h, sd[f"{p}.self_attn.{n}_proj.weight"]).reshape(B, T, nh, hd).transpose(1, 2) for n in "qkv"]
        q, k = rot(q, pos), rot(k, pos)
        if cache[l] is not None: k = torch.cat([cache[l][0], k], 2); v = torch.cat([cache[l][1], v], 2)
        cache[l] = (k, v)
        a = sm(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask) @ v
        x = x + F.linear(a.transpose(1, 2).reshape(B, T, Hd), sd[p + ".self_attn.o_proj.weight"])
        h = rms(x, sd[p + ".post_attention_layernorm.weight"])
        x = x + F.linear(F.silu(F.linear(h, sd[p + ".mlp.gate_proj.weight"])) * F.linear(h, sd[p + ".mlp.up_proj.weight"]), sd[p + ".mlp.down_proj.weight"])
    x = rms(x, sd["decoder.lm.model.norm.weight"])
    return F.linear(x, sd["decoder.lm.lm_head.weight"]).float()
n = C.get("n_causal", cfg["n_causal"]) if False else cfg["n_causal"]
ids = torch.tensor([[1, 32001] + [32003] * n + [32002] + [300 + (i * 37) % 20000 for i in range(L - n - 3)]])
px = torch.randn(1, 3, 224, 224)
def full():
    img = cformer(vision(px)); e = F.embedding(ids, sd["decoder.lm.model.embed_tokens.weight"]).clone()
    e[ids == 32003] = img.reshape(-1, img.shape[-1]); return llm(e, torch.arange(L), [None] * LM["num_hidden_layers"]), e
with torch.no_grad():
    full(); t0 = time.time(); reps = 3
    for _ in range(reps): full()
    fwd = (time.time() - t0) / reps
    _, e = full(); cache = [None] * LM["num_hidden_layers"]
    t0 = time.time(); llm(e, torch.arange(L), cache); pre = time.time() - t0
    t0 = time.time()
    for s in range(steps):
        llm(F.embedding(torch.tensor([[500 + s]]), sd["decoder.lm.model.embed_tokens.weight"]), torch.tensor([L + s]), cache)
    dec = time.time() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"RESULT torch {dtype_name} forward_s={fwd:.3f} forward_tok_s={L / fwd:.1f} prefill_tok_s={L / pre:.1f} decode_tok_s={steps / dec:.2f} peak_rss_mib={peak:.0f} torch={torch.__version__} threads={torch.get_num_threads()}")
"#;

fn run_child(args: &[&str]) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        eprintln!("child {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    text.lines().filter(|l| l.starts_with("RESULT")).collect::<Vec<_>>().join("\n")
}

fn torch(dir: &Path, args: &[&str]) -> Option<String> {
    let out =
        Command::new("python3").arg("-c").arg(TORCH_SCRIPT).arg(dir).args(args).output().ok()?;
    if !out.status.success() {
        eprintln!(
            "torch {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        );
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("RESULT"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.first().map(String::as_str) {
        Some("child-forward") => {
            let dtype = if args[2] == "bf16" { DType::BF16 } else { DType::F32 };
            return child_forward(Path::new(&args[1]), dtype);
        }
        Some("child-load") => return child_load(Path::new(&args[1])),
        _ => {}
    }
    let dir = std::env::temp_dir().join(format!("emu-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = mid_config();
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    let w = random_weights(&cfg);
    let n_params: usize = w.values().map(|t| t.elem_count()).sum();
    candle_core::safetensors::save(&w, dir.join("model.safetensors")).unwrap();
    drop(w);
    let (ids, _) = prompt(&cfg);
    println!("mid config: {n_params} parameters, prompt {} tokens (1 image), {DECODE_STEPS} decode steps", ids.len());
    let d = dir.to_str().unwrap();
    for dt in ["f32", "bf16"] {
        println!("{}", run_child(&["child-forward", d, dt]));
        let name = if dt == "f32" { "F32" } else { "BF16" };
        match torch(&dir, &[name, &ids.len().to_string(), &DECODE_STEPS.to_string(), "forward"]) {
            Some(r) => println!("{r}"),
            None => println!("torch {dt}: not available"),
        }
    }
    println!("{}", run_child(&["child-load", dir.join("model.safetensors").to_str().unwrap()]));
    if torch(&dir, &["F32", "0", "0", "topt"]).is_some() {
        println!("{}", run_child(&["child-load", dir.join("model.pt").to_str().unwrap()]));
        if let Some(r) = torch(&dir, &["F32", "0", "0", "loadpt"]) {
            println!("{r}");
        }
    } else {
        println!("no torch: .pt load not measured");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
