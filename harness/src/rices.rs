//! RICES for a task: the audited support pool, its cached features, query features, and the
//! selection the runner puts in few-shot prompts.
//!
//! ```text
//! pool split ─ support_pool(n, seed) ─ sorted by sample id ─ features (cache) ─ SupportPool
//! eval sample ─ features (eval-split cache, else computed) ─ search (no self, no same media)
//!             ─ k best ─ prompt order: most similar last (OpenFlamingo)
//! ```
//!
//! ```no_run
//! # fn demo(emu: &models::emu::Emu, task: &tasks::registry::Task, query: &str) -> anyhow::Result<()> {
//! use harness::rices::{self, RicesOptions, SupportIndex};
//! use harness::rices_features::{Pooling, VisionFeatures};
//! let ex = VisionFeatures { tower: emu, pooling: Pooling::Cls };
//! let weights = harness::cache::weights_hash(&emu.load_report.path)?;
//! let cache = retrieval::FeatureCache::new(harness::cache::dir(None, harness::cache::RICES)?);
//! let root = std::path::Path::new("data");
//! let index = SupportIndex::open_or_build(&ex, &weights, task, root, &cache, &RicesOptions::default(), &mut |_, _, _| {})?;
//! let sel = index.select(query, 4)?; // Selection { method: Rices, indices (prompt order), similarities }
//! let support: Vec<&tasks::datasets::Sample> = sel.indices.iter().map(|&i| &index.pool_samples()[i]).collect();
//! # Ok(()) }
//! ```
use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use retrieval::{
    Backend, CacheKey, FeatureCache, FeatureSet, Features, Neighbour, Outcome, Plan, Selection,
    SupportPool,
};
use tasks::datasets::{Media, Sample};
use tasks::registry::{MediaKind, Task};

use crate::rices_features::{media_features, FeatureExtractor};

/// Frames per support video and per query video (datasets.md §12: 2 and 8).
pub use tasks::media::video::{QUERY_FRAMES, SUPPORT_FRAMES};

/// How the pool and query features are made and searched.
#[derive(Debug, Clone)]
pub struct RicesOptions {
    /// Seed of the 5,000-sample pool subsample.
    pub pool_seed: u64,
    pub support_frames: usize,
    pub query_frames: usize,
    /// Images per extractor call.
    pub batch: usize,
    /// Media items per cache part file (the unit of resume).
    pub chunk: usize,
    pub backend: Backend,
    /// Evaluation split the queries come from (default: the task's).
    pub split: Option<String>,
}

impl Default for RicesOptions {
    fn default() -> Self {
        Self {
            pool_seed: retrieval::POOL_SEED,
            support_frames: SUPPORT_FRAMES,
            query_frames: QUERY_FRAMES,
            batch: 16,
            chunk: 256,
            backend: Backend::Exact,
            split: None,
        }
    }
}

/// Which feature set a progress report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Pool,
    Queries,
}

/// `progress(stage, media done, media total)`.
pub type Progress<'a> = dyn FnMut(Stage, usize, usize) + 'a;

/// A task's searchable support pool plus its evaluation split.
pub struct SupportIndex<'a> {
    ex: &'a dyn FeatureExtractor,
    task: Task,
    opts: RicesOptions,
    pool_samples: Vec<Sample>,
    pool: SupportPool,
    pool_outcome: Outcome,
    /// Feature dimension.
    dim: usize,
    queries: Vec<Sample>,
    query_by_id: HashMap<String, usize>,
    query_key: CacheKey,
    /// Eval-split features when the cache holds them: set and media key → row.
    query_cache: Option<(FeatureSet, HashMap<String, usize>)>,
}

/// The task's training split, or the one-line reason it has no support pool.
fn pool_split(task: &Task) -> Result<&'static str> {
    task.pool_split
        .ok_or_else(|| anyhow!("--task: {} has no training pool (zero-shot only)", task.id))
}

impl<'a> SupportIndex<'a> {
    /// Loads the pool and evaluation split of `task`, reuses or builds the pool's features in
    /// `cache`, and picks up the evaluation split's cached features when present.
    pub fn open_or_build(
        ex: &'a dyn FeatureExtractor,
        weights: &str,
        task: &Task,
        data_root: &Path,
        cache: &FeatureCache,
        opts: &RicesOptions,
        progress: &mut Progress<'_>,
    ) -> Result<Self> {
        pool_split(task)?;
        let dir = task.dir(data_root);
        let all = task.load_pool(&dir)?;
        let split = opts.split.as_deref().unwrap_or(task.eval_split);
        let queries = task.load(&dir, split)?.samples;
        Self::build(ex, weights, task, &all, queries, cache, opts, progress)
    }

    /// [`open_or_build`](Self::open_or_build) from samples already loaded: `all` the task's whole
    /// training pool, `queries` the evaluation split (`opts.split`, else the task's).
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        ex: &'a dyn FeatureExtractor,
        weights: &str,
        task: &Task,
        all: &[Sample],
        queries: Vec<Sample>,
        cache: &FeatureCache,
        opts: &RicesOptions,
        progress: &mut Progress<'_>,
    ) -> Result<Self> {
        let pool_split = pool_split(task)?;
        let mut pool_samples: Vec<Sample> = retrieval::support_pool(all.len(), opts.pool_seed)
            .into_iter()
            .map(|i| all[i].clone())
            .collect();
        pool_samples.sort_by(|a, b| a.id.cmp(&b.id));
        let pool_key =
            key(ex, weights, task, pool_split, Some(opts.pool_seed), opts.support_frames);
        let (set, pool_outcome) = features(
            ex,
            cache,
            &pool_key,
            &pool_samples,
            opts,
            opts.support_frames,
            &mut |d, t| progress(Stage::Pool, d, t),
        )?;
        let dim = set.features.dim();
        let pool = SupportPool::new(set, &opts.backend)?;

        let split = opts.split.as_deref().unwrap_or(task.eval_split);
        let query_by_id = queries.iter().enumerate().map(|(i, s)| (s.id.to_string(), i)).collect();
        let query_key = key(ex, weights, task, split, None, opts.query_frames);
        let query_cache = cache.load(&query_key, &plan(&queries)).ok().map(with_rows);
        Ok(Self {
            ex,
            task: *task,
            opts: opts.clone(),
            pool_samples,
            pool,
            pool_outcome,
            dim,
            queries,
            query_by_id,
            query_key,
            query_cache,
        })
    }

    /// Reuses or builds the evaluation split's feature cache (what `emu-eval index` does).
    pub fn build_query_cache(
        &mut self,
        cache: &FeatureCache,
        progress: &mut Progress<'_>,
    ) -> Result<Outcome> {
        let (set, outcome) = features(
            self.ex,
            cache,
            &self.query_key,
            &self.queries,
            &self.opts,
            self.opts.query_frames,
            &mut |d, t| progress(Stage::Queries, d, t),
        )?;
        self.query_cache = Some(with_rows(set));
        Ok(outcome)
    }

    pub fn task(&self) -> &Task {
        &self.task
    }
    /// Pool samples in row order (sample-id order); `Selection::indices` index this.
    pub fn pool_samples(&self) -> &[Sample] {
        &self.pool_samples
    }
    /// Evaluation samples in split order.
    pub fn queries(&self) -> &[Sample] {
        &self.queries
    }
    /// Whether the pool's features came from the cache or were (partly) computed.
    pub fn pool_outcome(&self) -> &Outcome {
        &self.pool_outcome
    }
    pub fn backend(&self) -> &Backend {
        self.pool.backend()
    }

    /// The `k` most similar pool samples of each evaluation sample id, best first.
    pub fn neighbours(&self, ids: &[&str], k: usize) -> Result<Vec<Vec<Neighbour>>> {
        let samples: Vec<&Sample> = ids
            .iter()
            .map(|id| {
                self.query_by_id.get(*id).map(|&i| &self.queries[i]).ok_or_else(|| {
                    anyhow!(
                        "--sample: no sample {id:?} in {} {}",
                        self.task.id,
                        self.query_key.split
                    )
                })
            })
            .collect::<Result<_>>()?;
        let feats = self.query_features(&samples)?;
        let keys: Vec<(String, String)> =
            samples.iter().map(|s| (s.id.to_string(), s.media.key().to_owned())).collect();
        Ok(self.pool.neighbours(&keys, &feats, k)?)
    }

    /// RICES support examples of one evaluation sample: pool rows in prompt order (most similar
    /// last), with their similarities.
    pub fn select(&self, id: &str, k: usize) -> Result<Selection> {
        let best = self.neighbours(&[id], k)?.pop().unwrap_or_default();
        Ok(retrieval::selection(&best, k, self.pool.len())?)
    }

    /// Query features: cached rows where available, the rest computed now (not cached).
    fn query_features(&self, samples: &[&Sample]) -> Result<Features> {
        let missing: Vec<&Media> =
            samples.iter().filter(|s| self.cached(s).is_none()).map(|s| &s.media).collect();
        let computed = if missing.is_empty() {
            Vec::new()
        } else {
            media_features(
                self.ex,
                &missing,
                frames_for(&self.task, self.opts.query_frames),
                self.opts.batch,
            )?
        };
        let dim = self.dim;
        let mut fresh = computed.chunks(dim);
        let mut data = Vec::with_capacity(samples.len() * dim);
        for s in samples {
            match self.cached(s) {
                Some(row) => data.extend_from_slice(row),
                None => data.extend_from_slice(
                    fresh
                        .next()
                        .ok_or_else(|| anyhow!("feature extractor returned too few rows"))?,
                ),
            }
        }
        Ok(Features::new(dim, data)?)
    }

    /// A query's row in the eval-split cache, when loaded.
    fn cached(&self, s: &Sample) -> Option<&[f32]> {
        let (set, rows) = self.query_cache.as_ref()?;
        rows.get(s.media.key()).map(|&r| set.features.row(r))
    }
}

/// Cache key of one feature set; frames count only for video tasks.
fn key(
    ex: &dyn FeatureExtractor,
    weights: &str,
    task: &Task,
    split: &str,
    pool_seed: Option<u64>,
    frames: usize,
) -> CacheKey {
    let recipe = match task.media {
        MediaKind::Image => ex.recipe(),
        MediaKind::Video => format!("{};frames={frames}", ex.recipe()),
    };
    CacheKey {
        weights: weights.to_owned(),
        task: task.id.to_owned(),
        split: split.to_owned(),
        pool_seed,
        recipe,
    }
}

fn frames_for(task: &Task, frames: usize) -> usize {
    match task.media {
        MediaKind::Image => 1,
        MediaKind::Video => frames,
    }
}

fn plan(samples: &[Sample]) -> Plan {
    Plan::new(samples.iter().map(|s| (s.id.to_string(), s.media.key().to_owned())))
}

fn with_rows(set: FeatureSet) -> (FeatureSet, HashMap<String, usize>) {
    let rows = set.plan.media.iter().enumerate().map(|(r, m)| (m.clone(), r)).collect();
    (set, rows)
}

/// Reuses or builds the features of `samples` under `key`.
fn features(
    ex: &dyn FeatureExtractor,
    cache: &FeatureCache,
    key: &CacheKey,
    samples: &[Sample],
    opts: &RicesOptions,
    frames: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(FeatureSet, Outcome)> {
    let plan = plan(samples);
    let mut first: HashMap<&str, &Media> = HashMap::new();
    for s in samples {
        first.entry(s.media.key()).or_insert(&s.media);
    }
    let media: Vec<&Media> = plan.media.iter().map(|k| first[k.as_str()]).collect();
    let mut compute =
        |rows: &[usize]| -> std::result::Result<Vec<f32>, retrieval::cache::BoxError> {
            let items: Vec<&Media> = rows.iter().map(|&r| media[r]).collect();
            Ok(media_features(ex, &items, frames, opts.batch)?)
        };
    cache
        .get_or_build(key, &plan, opts.chunk, &mut compute, progress)
        .with_context(|| format!("{} {} features", key.task, key.split))
}
