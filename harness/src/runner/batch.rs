//! `--batch-size N | auto`. `auto` chooses, once per run and per stage kind, the largest batch
//! whose estimated working memory fits: on CPU a RAM budget (half of `MemAvailable` after the
//! model is loaded, or `EMU_EVAL_MEMORY_BUDGET`), on CUDA a probe that allocates the estimate on
//! the device and halves the batch on failure (out of memory). Predictions do not depend on the
//! batch (left padding is masked; sampling is seeded per sample), so `auto` changes speed only.
use std::collections::BTreeMap;

use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use models::emu::EmuConfig;
use tasks::registry::{Generation, Inference, Task};

/// Largest batch `auto` chooses (beyond it a batch is no faster on any device we measured).
pub const MAX_AUTO: usize = 64;
/// Environment variable: the CPU memory budget of `auto` in bytes (`K`, `M`, `G` suffixes).
pub const BUDGET_ENV: &str = "EMU_EVAL_MEMORY_BUDGET";
/// Estimated bytes are multiplied by this before they are compared with the budget.
const SAFETY: f64 = 1.5;
/// Text tokens allowed per example of a prompt (question, answer and template words).
const TEXT_TOKENS_PER_EXAMPLE: usize = 64;

/// `--batch-size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    Fixed(usize),
    Auto,
}

impl BatchSize {
    /// `N` (≥ 1) or `auto`.
    pub fn parse(s: &str) -> Result<BatchSize, String> {
        match s {
            "auto" => Ok(BatchSize::Auto),
            _ => match s.parse::<usize>() {
                Ok(0) => Err("must be at least 1 (or auto)".into()),
                Ok(n) => Ok(BatchSize::Fixed(n)),
                Err(_) => Err(format!("{s}: not a whole number or `auto`")),
            },
        }
    }
}

impl std::fmt::Display for BatchSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchSize::Fixed(n) => write!(f, "{n}"),
            BatchSize::Auto => f.write_str("auto"),
        }
    }
}

impl Serialize for BatchSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BatchSize::Fixed(n) => s.serialize_u64(*n as u64),
            BatchSize::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for BatchSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => BatchSize::parse(&s).map_err(serde::de::Error::custom),
            serde_json::Value::Number(n) => n
                .as_u64()
                .filter(|&n| n >= 1)
                .map(|n| BatchSize::Fixed(n as usize))
                .ok_or_else(|| serde::de::Error::custom("batch_size: a whole number ≥ 1")),
            other => Err(serde::de::Error::custom(format!("batch_size: {other} is not N or auto"))),
        }
    }
}

/// The batches of a run by stage kind (`caption`, `answer`, `answerability`, `rank`, `image`),
/// and how they were chosen; `run.json` records it under `batch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchChoice {
    pub requested: BatchSize,
    pub by_stage: BTreeMap<String, usize>,
    /// `auto`: what bounded it (`cpu ram budget 11.2 GB`, `cuda probe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// `auto`: estimated working memory of one batch row per stage kind, in bytes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub row_bytes: BTreeMap<String, u64>,
}

impl BatchChoice {
    /// Batch of a stage kind (`fixed` size, or 1 for a kind `auto` did not size).
    pub fn of(&self, kind: &str) -> usize {
        match self.requested {
            BatchSize::Fixed(n) => n,
            BatchSize::Auto => self.by_stage.get(kind).copied().unwrap_or(1),
        }
    }

    /// Samples prepared together: the largest stage batch.
    pub fn chunk(&self) -> usize {
        match self.requested {
            BatchSize::Fixed(n) => n,
            BatchSize::Auto => self.by_stage.values().copied().max().unwrap_or(1),
        }
    }
}

/// The stage kinds of a task with their decoding settings (`None`: ranking or images).
fn stage_kinds(task: &Task, cot: bool, overrides: &super::generation::Overrides) -> Vec<Kind> {
    use super::generation::kind_name;
    use super::stages::{stage_exec, StageExec};
    use prompts::StageKind;
    let text: &[StageKind] = match task.inference {
        Inference::TextToImage => return vec![Kind::Image],
        Inference::AnswerabilityGate { .. } => &[StageKind::Answerability, StageKind::Answer],
        Inference::Generate { .. } | Inference::RankOptions { .. } => &[StageKind::Answer],
    };
    let cot = cot.then_some(StageKind::Caption);
    cot.iter()
        .chain(text)
        .map(|&kind| match stage_exec(task, kind, overrides) {
            StageExec::Generate { settings, .. } => {
                Kind::Generate { name: kind_name(kind), settings }
            }
            StageExec::Rank { .. } => Kind::Rank,
        })
        .collect()
}

enum Kind {
    Generate {
        name: &'static str,
        settings: Generation,
    },
    /// VisDial ranking: one sample at a time (its batch is the candidates).
    Rank,
    /// FID Inception features of generated and reference images.
    Image,
}

/// Estimated working memory of one generation row: the KV cache of every beam over prompt and
/// new tokens, one layer's prefill activations and attention scores, the logits, and the
/// vision tower's activations for the prompt's images.
pub fn generation_row_bytes(cfg: &EmuConfig, dtype: DType, images: usize, g: &Generation) -> u64 {
    let l = &cfg.llama;
    let v = &cfg.vision;
    let el = dtype.size_in_bytes() as u64;
    let prompt = (images * (cfg.n_causal + 2) + images.max(1) * TEXT_TOKENS_PER_EXAMPLE) as u64;
    let positions = prompt + g.max_new_tokens as u64;
    let beams = g.num_beams.max(1) as u64;
    let kv = 2 * l.num_hidden_layers as u64 * l.hidden_size as u64 * positions * beams * el;
    let prefill = prompt * (4 * l.hidden_size + 3 * l.intermediate_size) as u64 * 4
        + l.num_attention_heads as u64 * prompt * prompt * 4;
    let logits = 2 * beams * l.vocab_size as u64 * 4;
    let patches = v.num_tokens() as u64;
    let vision = images as u64
        * (patches * (6 * v.width + v.mlp_hidden()) as u64 * 4
            + v.num_heads() as u64 * patches * patches * 4);
    kv + prefill + logits + vision
}

/// Inception-v3 activations of one 299×299 image (the largest maps kept by a forward), in bytes.
const IMAGE_ROW_BYTES: u64 = 64 << 20;

/// The batch of every stage kind of a run.
pub fn choose(
    requested: BatchSize,
    task: &Task,
    emu: &models::emu::Emu,
    images_per_prompt: usize,
    cot: bool,
    overrides: &super::generation::Overrides,
) -> Result<BatchChoice> {
    let (cfg, dtype, device) = (&emu.cfg, emu.dtype(), emu.device());
    let kinds = stage_kinds(task, cot, overrides);
    let name = |k: &Kind| match k {
        Kind::Generate { name, .. } => *name,
        Kind::Rank => "rank",
        Kind::Image => "image",
    };
    if let BatchSize::Fixed(n) = requested {
        let by_stage = kinds.iter().map(|k| (name(k).to_owned(), n)).collect();
        return Ok(BatchChoice { requested, by_stage, method: None, row_bytes: BTreeMap::new() });
    }
    let row_bytes: BTreeMap<String, u64> = kinds
        .iter()
        .filter_map(|k| match k {
            Kind::Generate { name, settings } => Some((
                (*name).to_owned(),
                generation_row_bytes(cfg, dtype, images_per_prompt, settings),
            )),
            Kind::Image => Some(("image".to_owned(), IMAGE_ROW_BYTES)),
            Kind::Rank => None,
        })
        .collect();
    let (method, fits): (String, Box<dyn Fn(u64) -> bool>) = match device {
        Device::Cpu => {
            let budget = cpu_budget()?;
            (format!("cpu ram budget {}", human(budget)), Box::new(move |b| b <= budget))
        }
        _ => {
            let device = device.clone();
            ("cuda probe".to_owned(), Box::new(move |b| probe_allocation(&device, b)))
        }
    };
    let mut by_stage = BTreeMap::new();
    for k in &kinds {
        let n = match row_bytes.get(name(k)) {
            Some(&row) => largest_fitting(MAX_AUTO, |n| fits(scaled(row, n))),
            None => 1,
        };
        by_stage.insert(name(k).to_owned(), n);
    }
    Ok(BatchChoice { requested, by_stage, method: Some(method), row_bytes })
}

fn scaled(row: u64, n: usize) -> u64 {
    (row as f64 * n as f64 * SAFETY) as u64
}

/// The largest `n ≤ max` (halving from `max`) for which `fits(n)`; 1 when none does.
pub fn largest_fitting(max: usize, fits: impl Fn(usize) -> bool) -> usize {
    let mut n = max.max(1);
    while n > 1 && !fits(n) {
        n /= 2;
    }
    n
}

/// Allocates `bytes` on `device` and frees them: false when the device refuses (out of memory).
fn probe_allocation(device: &Device, bytes: u64) -> bool {
    Tensor::zeros((bytes as usize,), DType::U8, device).is_ok()
}

/// `EMU_EVAL_MEMORY_BUDGET`, else half of `MemAvailable` (Linux), else 4 GiB.
fn cpu_budget() -> Result<u64> {
    if let Ok(v) = std::env::var(BUDGET_ENV) {
        return match parse_bytes(&v) {
            Some(b) if b > 0 => Ok(b),
            _ => bail!("{BUDGET_ENV}={v}: not a size (bytes, or a number with K, M or G)"),
        };
    }
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| mem_available(&s));
    Ok(available.map_or(4 << 30, |b| b / 2))
}

/// `MemAvailable:` of /proc/meminfo in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `123`, `512K`, `64M`, `8G` (powers of 1024; `B`/`iB` suffixes accepted).
fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim().trim_end_matches("iB").trim_end_matches('B');
    let (num, mult) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1u64 << 10),
        'M' | 'm' => (&s[..s.len() - 1], 1 << 20),
        'G' | 'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let x: f64 = num.trim().parse().ok()?;
    (x.is_finite() && x >= 0.0).then_some((x * mult as f64) as u64)
}

fn human(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_size_parses_count_or_auto_and_round_trips() {
        assert_eq!(BatchSize::parse("auto"), Ok(BatchSize::Auto));
        assert_eq!(BatchSize::parse("8"), Ok(BatchSize::Fixed(8)));
        assert!(BatchSize::parse("0").is_err());
        assert!(BatchSize::parse("many").is_err());
        for b in [BatchSize::Auto, BatchSize::Fixed(3)] {
            let v = serde_json::to_value(b).unwrap();
            assert_eq!(serde_json::from_value::<BatchSize>(v).unwrap(), b);
        }
        assert!(serde_json::from_value::<BatchSize>(serde_json::json!(0)).is_err());
    }

    #[test]
    fn largest_fitting_halves_until_it_fits() {
        assert_eq!(largest_fitting(64, |n| n <= 20), 16);
        assert_eq!(largest_fitting(64, |_| true), 64);
        assert_eq!(largest_fitting(64, |_| false), 1);
    }

    #[test]
    fn sizes_and_meminfo_parse() {
        assert_eq!(parse_bytes("8G"), Some(8 << 30));
        assert_eq!(parse_bytes("512MiB"), Some(512 << 20));
        assert_eq!(parse_bytes("1000"), Some(1000));
        assert_eq!(parse_bytes("lots"), None);
        let m = "MemTotal:       24000000 kB\nMemAvailable:   12000000 kB\n";
        assert_eq!(mem_available(m), Some(12_000_000 * 1024));
    }

    /// Emu's shapes (EVA-CLIP + LLaMA-13B): a beam-5 caption row of an 8-shot prompt needs gigabytes, so a 24 GiB
    /// budget allows a handful of rows; more beams or tokens never allow more.
    #[test]
    fn row_estimate_grows_with_beams_tokens_and_images() {
        let cfg: EmuConfig = models::emu::EmuConfig::emu_14b();
        let g = tasks::registry::CAPTION;
        let one = generation_row_bytes(&cfg, DType::F16, 9, &g);
        assert!(one > (1 << 30) && one < (16u64 << 30), "{one}");
        let more_beams = Generation { num_beams: 10, ..g };
        assert!(generation_row_bytes(&cfg, DType::F16, 9, &more_beams) > one);
        let longer = Generation { max_new_tokens: 200, ..g };
        assert!(generation_row_bytes(&cfg, DType::F16, 9, &longer) > one);
        assert!(generation_row_bytes(&cfg, DType::F16, 1, &g) < one);
        let budget = 24u64 << 30;
        let n = largest_fitting(MAX_AUTO, |n| scaled(one, n) <= budget);
        assert!((1..=8).contains(&n), "{n}");
    }
}
