//! `emu-eval index`: build or refresh the RICES feature cache of a task (support pool and
//! evaluation split), with a progress bar on stderr and a JSON summary on stdout.
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use retrieval::{Backend, FeatureCache, Outcome};
use serde_json::{json, Value};

use models::emu::Emu;

use crate::cli::flags::{CompactFlag, DataFlags, ModelFlags, RuntimeFlags, TaskFlag};
use crate::rices::{self, RicesOptions, Stage, SupportIndex};
use crate::rices_features::{FeatureExtractor, Pooling, VisionFeatures};

/// Task, data, model, cache and feature recipe shared by `index` and `neighbours`.
#[derive(clap::Args, Debug, Clone)]
pub struct RicesArgs {
    #[command(flatten)]
    pub task: TaskFlag,
    #[command(flatten)]
    pub data: DataFlags,
    #[command(flatten)]
    pub model: ModelFlags,
    #[command(flatten)]
    pub runtime: RuntimeFlags,
    /// Cache directory (default: $EMU_EVAL_CACHE, else the platform cache directory).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Seed of the 5,000-sample support pool (and of the built-in model's weights), as `run --seed`.
    #[arg(long, default_value_t = retrieval::POOL_SEED)]
    pub seed: u64,
    /// Pooled vector of the vision tower's `ln_visual` output.
    #[arg(long, value_enum, default_value_t = Pooling::Cls)]
    pub pooling: Pooling,
    /// Frames per support video.
    #[arg(long, default_value_t = rices::SUPPORT_FRAMES)]
    pub support_frames: usize,
    /// Frames per query video.
    #[arg(long, default_value_t = rices::QUERY_FRAMES)]
    pub query_frames: usize,
    /// Images per vision-tower batch.
    #[arg(long, alias = "batch", default_value_t = 16)]
    pub batch_size: usize,
    /// Search backend: exact (matmul) or faiss (needs the `faiss` build feature).
    #[arg(long)]
    pub backend: Option<String>,
    /// faiss index-factory string (implies --backend faiss), e.g. `Flat`, `IVF256,Flat`, `HNSW32`.
    #[arg(long)]
    pub index_factory: Option<String>,
}

impl RicesArgs {
    pub fn options(&self) -> Result<RicesOptions> {
        if self.support_frames == 0 || self.query_frames == 0 || self.batch_size == 0 {
            bail!("--support-frames, --query-frames and --batch-size must be at least 1");
        }
        let backend = Backend::from_args(self.backend.as_deref(), self.index_factory.as_deref())
            .map_err(|e| anyhow!("{e}"))?;
        Ok(RicesOptions {
            pool_seed: self.seed,
            support_frames: self.support_frames,
            query_frames: self.query_frames,
            batch: self.batch_size,
            backend,
            ..Default::default()
        })
    }

    pub fn task(&self) -> Result<&'static tasks::registry::Task> {
        Ok(self.task.get())
    }

    pub fn data_root(&self) -> Result<PathBuf> {
        self.data.resolve()
    }

    /// The model and its weights hash: `--model`, else the built-in tiny model (as `run`).
    pub fn model(&self) -> Result<(Emu, String)> {
        let (emu, info) = self.model.source(self.seed)?.load(
            false,
            self.runtime.dtype()?,
            &self.runtime.device()?,
        )?;
        Ok((emu, info.weights_hash))
    }

    pub fn cache(&self) -> Result<FeatureCache> {
        Ok(FeatureCache::new(crate::cache::dir(self.cache.as_deref(), crate::cache::RICES)?))
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub rices: RicesArgs,
    #[command(flatten)]
    pub format: CompactFlag,
}

pub fn run(args: Args) -> Result<()> {
    let a = &args.rices;
    let (task, root, opts, cache) = (a.task()?, a.data_root()?, a.options()?, a.cache()?);
    let (emu, weights) = a.model()?;
    let ex = VisionFeatures { tower: &emu, pooling: a.pooling };
    let bar = Bar::new();
    let mut progress = |stage: Stage, done: usize, total: usize| bar.update(stage, done, total);
    let mut index =
        SupportIndex::open_or_build(&ex, &weights, task, &root, &cache, &opts, &mut progress)?;
    let queries = index.build_query_cache(&cache, &mut progress)?;
    bar.finish();
    let out = json!({
        "task": task.id,
        "cache": cache.dir(),
        "weights": weights,
        "recipe": ex.recipe(),
        "pool": {
            "split": task.pool_split,
            "seed": opts.pool_seed,
            "samples": index.pool_samples().len(),
            "outcome": outcome(index.pool_outcome()),
        },
        "queries": {
            "split": opts.split.as_deref().unwrap_or(task.eval_split),
            "samples": index.queries().len(),
            "outcome": outcome(&queries),
        },
    });
    let text = if args.format.compact {
        serde_json::to_string(&out)?
    } else {
        serde_json::to_string_pretty(&out)?
    };
    println!("{text}");
    Ok(())
}

/// `{"status": "reused"}` or `{"status": "built", "computed", "resumed", "reason"}`.
pub fn outcome(o: &Outcome) -> Value {
    match o {
        Outcome::Reused => json!({"status": "reused", "computed": 0, "resumed": 0}),
        Outcome::Built { computed, resumed, reason } => {
            json!({"status": "built", "computed": computed, "resumed": resumed, "reason": reason})
        }
    }
}

/// A progress bar per feature set on stderr (drawn only on a terminal).
struct Bar {
    bar: indicatif::ProgressBar,
}

impl Bar {
    fn new() -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(0),
            indicatif::ProgressDrawTarget::stderr(),
        );
        let style = indicatif::ProgressStyle::with_template(
            "{prefix:>8} [{bar:30}] {pos}/{len} media {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        Self { bar }
    }

    fn update(&self, stage: Stage, done: usize, total: usize) {
        let prefix = match stage {
            Stage::Pool => "pool",
            Stage::Queries => "queries",
        };
        if self.bar.prefix() != prefix {
            self.bar.reset();
            self.bar.set_prefix(prefix);
        }
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
