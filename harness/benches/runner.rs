//! `emu-eval run` overhead: samples/s and the share of wall time spent outside model forwards
//! (prompt building, media decoding, batching, post-processing, writing, scoring), for batch
//! sizes 1 and 8, with the tiny model and a mid-size random model (LLaMA hidden 512, 8 layers,
//! as the decoding benchmark's). Data: the dataset fixtures (`../shared/fixtures/datasets`).
//! Run: `cargo bench -p harness --bench runner`.
use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device};
use harness::runner::{self, ModelInfo, RunOptions};
use models::emu::builtin;
use prompts::Family;

fn main() -> anyhow::Result<()> {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/datasets");
    let tmp = std::env::temp_dir().join(format!("emu-eval-runner-bench-{}", std::process::id()));
    let mut mid = builtin::tiny_config(false);
    mid.llama.hidden_size = 512;
    mid.llama.intermediate_size = 1376;
    mid.llama.num_attention_heads = 8;
    mid.llama.num_hidden_layers = 8;
    mid.causal_former.output_dim = 512;
    println!("| model | task | batch | samples | wall s | samples/s | model s | outside model |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, cfg) in [("tiny", builtin::tiny_config(false)), ("mid (512×8)", mid)] {
        let emu = builtin::random(cfg, 0, DType::F32, &Device::Cpu)?;
        let model = ModelInfo {
            name: name.into(),
            weights_hash: name.into(),
            dtype: "f32".into(),
            device: "cpu".into(),
        };
        for id in ["vqav2", "coco_caption", "msvd_qa"] {
            for batch in [1usize, 8] {
                let task = tasks::registry::get(id).expect("task");
                let out = tmp.join(format!("{name}-{id}-{batch}"));
                let opts = RunOptions {
                    task,
                    family: Family::Emu,
                    shots: 2,
                    cot: false,
                    text_examples: false,
                    data_root: data.clone(),
                    split: task.eval_split.into(),
                    limit: None,
                    batch: harness::runner::batch::BatchSize::Fixed(batch),
                    seed: 0,
                    output: out,
                    shard: None,
                    max_failures: 0,
                    overwrite: true,
                    retry_failed: false,
                    vqa_variant: tasks::metrics::vqa::Variant::Official,
                    wordnet: None,
                    support: runner::SupportKind::Random,
                    cache: None,
                    t2i: Default::default(),
                    generation: Default::default(),
                };
                let start = Instant::now();
                let s = runner::run_task(&emu, &model, &opts)?;
                let wall = start.elapsed().as_secs_f64();
                let n = s.metrics.counts.samples as f64;
                let model_s = s.metrics.timing.model_seconds.unwrap_or(0.0);
                println!(
                    "| {name} | {id} | {batch} | {n} | {wall:.3} | {:.2} | {model_s:.3} | {:.1}% |",
                    n / wall,
                    100.0 * (wall - model_s) / wall
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
