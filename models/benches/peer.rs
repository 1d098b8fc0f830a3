//! Thin emu-eval side of the peer benchmarks `benches/peers/vision.py` and `benches/peers/unet.py`:
//! loads weights and inputs written by the Python script, runs one forward, and prints the time
//! of the forward alone (`forward_s <seconds>`) before writing the output for the agreement check.
//!
//! ```text
//! peer vision <weights.safetensors> <inputs.safetensors> <out.safetensors> <width> <layers> <head_width> <mlp_ratio>
//! peer unet   <unet dir: config.json, unet.safetensors> <inputs.safetensors> <out.safetensors>
//! peer gelu   <N>     (candle's gelu_erf against models::gelu::gelu_erf, ns per element)
//! peer conv <cin> <cout> <size>   (models::conv::Conv2d 3x3, batch 2, GFLOP/s)
//! peer matmul <M> <K> <N>   (candle's f32 matmul, GFLOP/s)
//! peer gemv <ROWS> <IN> <OUT> [bf16]   (models::emu::gemv over 48 weight matrices, GB/s)
//! peer attention <tokens> <heads> <head_dim>   (models::attention, batch 2, best of 5)
//! ```
//!
//! `inputs.safetensors` holds `pixels` (b, 3, H, W) for the vision tower; `latents`
//! (b, 4, h, w), `context` (b, tokens, d) and `timestep` (one integer, as f32) for the UNet.
//! Built by `cargo build --release -p models --bench peer`; the scripts find the binary.
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use models::decoder::config::UNetConfig;
use models::decoder::unet::UNet2DConditionModel;
use models::emu::config::EmuConfig;
use models::emu::vision::EvaVisionTransformer;

/// The emu-eval binary's allocator (harness/src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn inputs(path: &str) -> Result<HashMap<String, Tensor>> {
    candle_core::safetensors::load(path, &Device::Cpu).with_context(|| format!("reading {path}"))
}

fn input(map: &HashMap<String, Tensor>, name: &str) -> Result<Tensor> {
    map.get(name).cloned().with_context(|| format!("inputs have no `{name}`"))
}

fn parse<T: std::str::FromStr>(s: &str, what: &str) -> Result<T> {
    s.parse().map_err(|_| anyhow::anyhow!("{what}: cannot parse {s:?}"))
}

fn vision(args: &[String]) -> Result<()> {
    let [weights, inp, out, width, layers, head_width, mlp_ratio] = args else {
        bail!("usage: peer vision WEIGHTS INPUTS OUT WIDTH LAYERS HEAD_WIDTH MLP_RATIO");
    };
    let mut cfg = EmuConfig::emu_14b().vision;
    cfg.width = parse(width, "width")?;
    cfg.layers = parse(layers, "layers")?;
    cfg.head_width = parse(head_width, "head_width")?;
    cfg.mlp_ratio = parse(mlp_ratio, "mlp_ratio")?;
    let dev = Device::Cpu;
    // SAFETY: the file is written once by the benchmark script and not modified while mapped.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &dev)? };
    let tower = EvaVisionTransformer::new(&cfg, vb.pp("visual"))?;
    let pixels = input(&inputs(inp)?, "pixels")?;
    let feats = timed(false, || tower.forward_features(&pixels))?;
    candle_core::safetensors::save(&HashMap::from([("features".to_string(), feats)]), out)?;
    Ok(())
}

fn unet(args: &[String]) -> Result<()> {
    let [dir, inp, out] = args else {
        bail!("usage: peer unet UNET_DIR INPUTS OUT");
    };
    let dir = Path::new(dir);
    let cfg = UNetConfig::load(&dir.join("config.json"))?;
    let dev = Device::Cpu;
    let weights = dir.join("unet.safetensors");
    // SAFETY: as above.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &dev)? };
    let model = UNet2DConditionModel::new(vb, &cfg)?;
    let map = inputs(inp)?;
    let (latents, context) = (input(&map, "latents")?, input(&map, "context")?);
    let t = input(&map, "timestep")?.flatten_all()?.to_vec1::<f32>()?;
    let timestep = match t.first() {
        Some(&v) if v >= 0.0 && v.fract() == 0.0 => v as usize,
        _ => bail!("timestep {t:?}: expected one non-negative integer"),
    };
    // As the text-to-image pipeline: weight transforms for this latent size before the loop.
    let (_, _, h, w) = latents.dims4()?;
    let t0 = Instant::now();
    model.prepare(h, w)?;
    eprintln!("prepare: {:.4} s", t0.elapsed().as_secs_f64());
    let noise = timed(true, || model.forward(&latents, timestep, &context))?;
    candle_core::safetensors::save(&HashMap::from([("noise".to_string(), noise)]), out)?;
    Ok(())
}

/// Minor page faults of this process so far (`/proc/self/stat` field 10), 0 where unreadable.
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; minflt is the 10th field overall.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    rest.split_whitespace().nth(7).and_then(|f| f.parse().ok()).unwrap_or(0)
}

/// Runs `forward` once (or `PEER_REPEAT` times), printing the time of the first run as
/// `forward_s`, of the last as `warm_forward_s` (several runs), and of every run with its minor
/// page faults on stderr. `on_pool`: on rayon's workers (`models::pool`), as emu-eval runs that
/// network.
fn timed(
    on_pool: bool,
    forward: impl Fn() -> candle_core::Result<Tensor> + Sync,
) -> Result<Tensor> {
    let repeat: usize = std::env::var("PEER_REPEAT").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let mut first = None;
    for run in 0..repeat.max(1) {
        let (faults, t0) = (minor_faults(), Instant::now());
        let out = if on_pool { models::pool::on_workers(&forward)? } else { forward()? };
        let secs = t0.elapsed().as_secs_f64();
        eprintln!("run {run}: {secs:.4} s, {} minor page faults", minor_faults() - faults);
        if first.is_none() {
            println!("forward_s {secs:.4}");
            first = Some(out);
        }
        if repeat > 1 && run + 1 == repeat {
            println!("warm_forward_s {secs:.4}");
        }
    }
    first.context("no forward ran")
}

/// The shortest of five runs of `f`, in seconds.
fn best_of_5(f: impl Fn() -> candle_core::Result<Tensor>) -> Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t0 = Instant::now();
        f()?;
        best = best.min(t0.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// `peer gelu N`: candle's `gelu_erf` against `models::gelu::gelu_erf` on N values in [-8, 8]
/// (one tensor, best of 5 each, both multi-threaded as in the model).
fn gelu(args: &[String]) -> Result<()> {
    let [n] = args else { bail!("usage: peer gelu N") };
    let n: usize = parse(n, "N")?;
    let xs = Tensor::rand(-8f32, 8f32, n, &Device::Cpu)?;
    let candle = best_of_5(|| xs.gelu_erf())?;
    let ours = best_of_5(|| models::gelu::gelu_erf(&xs))?;
    let d = (xs.gelu_erf()? - models::gelu::gelu_erf(&xs)?)?.abs()?.max(0)?.to_scalar::<f32>()?;
    println!(
        "gelu_erf on {n} f32: candle {:.2} ns/elem, models::gelu {:.2} ns/elem ({:.2}x), max |diff| {d:e}",
        candle * 1e9 / n as f64,
        ours * 1e9 / n as f64,
        candle / ours
    );
    Ok(())
}

/// `peer attention N HEADS D`: the fused attention on (2, N, HEADS·D) self-attention inputs,
/// best of 5 (the UNet's 64×64 latents: 4096 8 40).
fn attention(args: &[String]) -> Result<()> {
    let [n, heads, d] = args else { bail!("usage: peer attention TOKENS HEADS HEAD_DIM") };
    let (n, heads, d): (usize, usize, usize) =
        (parse(n, "TOKENS")?, parse(heads, "HEADS")?, parse(d, "HEAD_DIM")?);
    let x = || Tensor::rand(-1f32, 1f32, (2, n, heads * d), &Device::Cpu);
    let (q, k, v) = (x()?, x()?, x()?);
    let best =
        best_of_5(|| models::attention::attention(&q, &k, &v, heads, 1.0 / (d as f32).sqrt()))?;
    println!("attention (2, {n}, {heads}x{d}): {:.1} ms", best * 1e3);
    Ok(())
}

/// `peer matmul M K N`: candle's f32 matmul (the gemm crate) of (M×K)·(N×K)ᵀ, as in a Linear
/// layer, best of 5.
fn matmul(args: &[String]) -> Result<()> {
    let [m, k, n] = args else { bail!("usage: peer matmul M K N") };
    let (m, k, n): (usize, usize, usize) = (parse(m, "M")?, parse(k, "K")?, parse(n, "N")?);
    let a = Tensor::rand(-1f32, 1f32, (m, k), &Device::Cpu)?;
    // As a Linear layer reads its (N, K) weight: transposed.
    let b = Tensor::rand(-1f32, 1f32, (n, k), &Device::Cpu)?.t()?;
    let best = best_of_5(|| a.matmul(&b))?;
    let gflops = 2.0 * (m * k * n) as f64 / best / 1e9;
    println!("matmul {m}x{k}x{n}: {:.1} ms, {gflops:.0} GFLOP/s", best * 1e3);
    Ok(())
}

/// `peer conv CIN COUT SIZE`: a 3×3 padded convolution with bias (`models::conv::Conv2d`) of a
/// (2, CIN, SIZE, SIZE) input, best of 5 (the UNet's first level at 64×64 latents: 320 320 64).
fn conv(args: &[String]) -> Result<()> {
    let [cin, cout, size] = args else { bail!("usage: peer conv CIN COUT SIZE") };
    let (cin, cout, size): (usize, usize, usize) =
        (parse(cin, "CIN")?, parse(cout, "COUT")?, parse(size, "SIZE")?);
    let dev = Device::Cpu;
    let weight = Tensor::rand(-0.1f32, 0.1f32, (cout, cin, 3, 3), &dev)?;
    let conv =
        models::conv::Conv2d::new(weight, Some(Tensor::zeros(cout, DType::F32, &dev)?), 1, 1)?;
    let xs = Tensor::rand(-1f32, 1f32, (2, cin, size, size), &dev)?;
    let best = best_of_5(|| candle_core::Module::forward(&conv, &xs))?;
    let gflops = 2.0 * (2 * cout * size * size * cin * 9) as f64 / best / 1e9;
    println!(
        "conv 3x3 (2, {cin}, {size}, {size}) -> {cout}: {:.1} ms, {gflops:.0} GFLOP/s",
        best * 1e3
    );
    Ok(())
}

/// `peer gemv ROWS IN OUT`: `models::emu::gemv` of ROWS rows over 48 distinct (OUT, IN) weight
/// matrices in turn (more than the last-level cache when large, as a decoding step streams its
/// layers), on rayon's workers as the decoder runs it; best of 5 passes, weight GB/s and GFLOP/s.
fn gemv(args: &[String]) -> Result<()> {
    let (dims, bf16) = match args {
        [d @ .., flag] if flag == "bf16" => (d, true),
        d => (d, false),
    };
    let [rows, inp, out] = dims else { bail!("usage: peer gemv ROWS IN OUT [bf16]") };
    let (rows, inp, out): (usize, usize, usize) =
        (parse(rows, "ROWS")?, parse(inp, "IN")?, parse(out, "OUT")?);
    const MATS: usize = 48;
    let mut rng = models::rng::SplitMix64::new(21);
    let mut data = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform() as f32 - 0.5).collect() };
    let x = data(rows * inp);
    let ws: Vec<Vec<f32>> = (0..MATS).map(|_| data(out * inp)).collect();
    // With `bf16`: the weights' bf16 copies (values truncated to bf16, as a bf16 checkpoint).
    let packed: Vec<Vec<u16>> = if bf16 {
        ws.iter().map(|w| w.iter().map(|v| (v.to_bits() >> 16) as u16).collect()).collect()
    } else {
        Vec::new()
    };
    let pass = || {
        models::pool::on_workers(|| {
            if bf16 {
                packed
                    .iter()
                    .map(|w| {
                        let w = models::emu::gemv::Weights::Bf16(w);
                        models::emu::gemv::gemv_many(&x, rows, &[(w, out)], inp)[0][0]
                    })
                    .sum::<f32>()
            } else {
                ws.iter().map(|w| models::emu::gemv::gemv(&x, rows, w, out, inp)[0]).sum::<f32>()
            }
        })
    };
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t0 = Instant::now();
        std::hint::black_box(pass());
        best = best.min(t0.elapsed().as_secs_f64());
    }
    let bytes = (MATS * out * inp * if bf16 { 2 } else { 4 }) as f64;
    let flops = 2.0 * (MATS * rows * out * inp) as f64;
    println!(
        "gemv {rows} rows x ({out}x{inp}) x {MATS} {} matrices ({:.0} MB): {:.1} ms, {:.1} GB/s of weights, {:.0} GFLOP/s",
        if bf16 { "bf16" } else { "f32" },
        bytes / 1e6,
        best * 1e3,
        bytes / best / 1e9,
        flops / best / 1e9
    );
    Ok(())
}

fn main() -> Result<()> {
    models::alloc::retain_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; without a subcommand there is nothing to do.
    match args.first().map(String::as_str) {
        Some("vision") => vision(&args[1..]),
        Some("unet") => unet(&args[1..]),
        Some("gelu") => gelu(&args[1..]),
        Some("attention") => attention(&args[1..]),
        Some("matmul") => matmul(&args[1..]),
        Some("conv") => conv(&args[1..]),
        Some("gemv") => gemv(&args[1..]),
        _ => {
            eprintln!("peer: run through benches/peers/vision.py or benches/peers/unet.py");
            Ok(())
        }
    }
}
