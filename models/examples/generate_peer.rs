//! emu-eval's side of the text-generation peer benchmark (`benches/peers/generate.py`): loads a
//! model directory, runs `models::decode::generate` on prompts given as token ids, and prints
//! one JSON line with the generated ids and the in-process time, CPU time and minor page faults
//! of the generation (tokens in → ids out: embedding, prefill and every decoding step).
//!
//! usage: generate_peer --model DIR --prompts FILE.json --beams N --batch B --max-new-tokens T
//!
//! FILE.json is a list of token-id lists (each starting with BOS); the prompts run in chunks of
//! B rows, left-padded as the official `generate` pads them. f32 on the CPU.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use models::decode::config::PAD_ID;
use models::decode::emu_lm::{left_pad, EmuSession};
use models::decode::{generate, GenerationConfig};
use models::emu::Emu;

/// The emu-eval binary's allocator (harness/src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    model: PathBuf,
    prompts: PathBuf,
    beams: usize,
    batch: usize,
    max_new_tokens: usize,
}

fn parse() -> anyhow::Result<Args> {
    let mut a = Args {
        model: PathBuf::new(),
        prompts: PathBuf::new(),
        beams: 1,
        batch: 1,
        max_new_tokens: 32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().with_context(|| format!("{flag}: {value}"));
        match flag.as_str() {
            "--model" => a.model = PathBuf::from(&value),
            "--prompts" => a.prompts = PathBuf::from(&value),
            "--beams" => a.beams = number()?,
            "--batch" => a.batch = number()?,
            "--max-new-tokens" => a.max_new_tokens = number()?,
            _ => bail!("unknown flag {flag}"),
        }
    }
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    Ok(a)
}

/// (user + system CPU seconds, minor page faults) of this process, from /proc/self/stat.
fn self_stat() -> (f64, u64) {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else { return (0.0, 0) };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Field n of stat(5) is index n − 3 here: minflt (10), utime (14), stime (15).
    let ticks = 100.0; // USER_HZ
    ((num(11) + num(12)) as f64 / ticks, num(7))
}

fn main() -> anyhow::Result<()> {
    models::alloc::retain_freed_memory();
    let args = parse()?;
    let device = Device::Cpu;
    let emu = Emu::load(&args.model, None, DType::F32, &device)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let prompts: Vec<Vec<u32>> = serde_json::from_str(
        &std::fs::read_to_string(&args.prompts)
            .with_context(|| format!("reading {}", args.prompts.display()))?,
    )
    .with_context(|| format!("parsing {}", args.prompts.display()))?;
    let cfg = GenerationConfig {
        num_beams: args.beams,
        max_new_tokens: args.max_new_tokens,
        ..GenerationConfig::default()
    };

    let (cpu0, flt0) = self_stat();
    let t0 = Instant::now();
    let run = || -> anyhow::Result<Vec<Vec<u32>>> {
        let mut ids: Vec<Vec<u32>> = Vec::new();
        for chunk in prompts.chunks(args.batch) {
            let batch = left_pad(chunk, PAD_ID);
            let width = batch.ids.first().map_or(0, Vec::len);
            let input = Tensor::from_vec(batch.ids.concat(), (chunk.len(), width), &device)?;
            let embeds = emu.embed(&input, None)?;
            let mut session = EmuSession::prefill(&emu, &embeds, batch.mask)?;
            ids.extend(generate(&mut session, &cfg, None)?.into_iter().map(|g| g.ids));
        }
        Ok(ids)
    };
    let ids = models::pool::on_workers(run)?;
    let gen_s = t0.elapsed().as_secs_f64();
    let (cpu1, flt1) = self_stat();
    let tokens: usize = ids.iter().map(Vec::len).sum();
    let out = serde_json::json!({
        "gen_s": gen_s,
        "gen_cpu_s": cpu1 - cpu0,
        "gen_minflt": flt1 - flt0,
        "tokens": tokens,
        "ids": ids,
    });
    println!("{out}");
    Ok(())
}
