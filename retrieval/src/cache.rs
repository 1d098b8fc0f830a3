//! The on-disk feature cache: one safetensors file per [`CacheKey`] (weights hash, task, split,
//! pool seed, recipe) holding one L2-normalised feature row per distinct image/video, with the
//! sample ids, media keys, key fields and a checksum in the header metadata. A JSON sidecar
//! repeats the key and the sample ids for audit.
//!
//! Nothing read back is trusted: a file whose header, key, sample list, shape, checksum or values
//! do not check out is rebuilt. A build writes chunked part files first and assembles them at the
//! end, so an interrupted build resumes from the parts that check out. Every write goes to a
//! temporary file that is renamed into place.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::fallback::fnv1a;
use crate::topk::Features;

/// Format tag stored in every cache file.
pub const FORMAT: &str = "emu-eval/rices-features/v1";

/// What the cached features depend on; any change selects another file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// Hash of the model weights that compute the features.
    pub weights: String,
    pub task: String,
    pub split: String,
    /// Seed of the pool subsample; `None` for a whole split (query features).
    pub pool_seed: Option<u64>,
    /// Feature recipe: pooled vector, frames per video, image size.
    pub recipe: String,
}

impl CacheKey {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let seed = self.pool_seed.map_or_else(|| "all".to_owned(), |s| s.to_string());
        vec![
            ("weights", self.weights.clone()),
            ("task", self.task.clone()),
            ("split", self.split.clone()),
            ("pool_seed", seed),
            ("recipe", self.recipe.clone()),
        ]
    }

    /// 16 hex digits identifying the key.
    pub fn digest(&self) -> String {
        let joined: Vec<String> = self.fields().iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{:016x}", fnv1a(&joined.join("\n")))
    }

    /// `<task>.<split>.<pool-seed N | all>.<digest>`.
    pub fn stem(&self) -> String {
        let role = self.pool_seed.map_or_else(|| "all".to_owned(), |s| format!("pool-seed{s}"));
        format!("{}.{}.{role}.{}", self.task, self.split, self.digest())
    }
}

/// Samples and the media they show: feature rows are per distinct media key, in first-use order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub ids: Vec<String>,
    pub media: Vec<String>,
    /// Per sample: its row in `media`.
    pub sample_media: Vec<usize>,
}

impl Plan {
    /// From `(sample id, media key)` pairs in row order.
    pub fn new<I: IntoIterator<Item = (String, String)>>(samples: I) -> Self {
        let mut rows: HashMap<String, usize> = HashMap::new();
        let (mut ids, mut media, mut sample_media) = (Vec::new(), Vec::new(), Vec::new());
        for (id, key) in samples {
            let next = media.len();
            let row = *rows.entry(key.clone()).or_insert_with(|| {
                media.push(key);
                next
            });
            ids.push(id);
            sample_media.push(row);
        }
        Self { ids, media, sample_media }
    }
}

/// Cached features of a plan: `features` has one row per `plan.media`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSet {
    pub plan: Plan,
    pub features: Features,
}

impl FeatureSet {
    /// One row per sample (samples sharing a media item share its row).
    pub fn sample_features(&self) -> Features {
        let dim = self.features.dim();
        let data = self
            .plan
            .sample_media
            .iter()
            .flat_map(|&m| self.features.row(m).iter().copied())
            .collect();
        Features::new(dim, data).expect("rows of a valid matrix")
    }
}

/// How the features were obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The cache file checked out; nothing was computed.
    Reused,
    /// Built: `computed` media items were computed, `resumed` read from part files of an earlier
    /// interrupted build; `reason` says why the cache file was not used.
    Built { computed: usize, resumed: usize, reason: String },
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{0}: {1}")]
    Io(String, String),
    #[error("{0}")]
    Compute(BoxError),
    #[error("feature cache: {0}")]
    Invalid(String),
    /// Why a cached file cannot be used (it is then rebuilt).
    #[error("{0}")]
    Unusable(String),
}

impl From<String> for CacheError {
    fn from(s: String) -> Self {
        CacheError::Unusable(s)
    }
}

impl From<&str> for CacheError {
    fn from(s: &str) -> Self {
        CacheError::Unusable(s.to_owned())
    }
}

/// Computes L2-normalised features of the media rows given, row-major.
pub type Compute<'a> = dyn FnMut(&[usize]) -> Result<Vec<f32>, BoxError> + 'a;

/// A cache directory.
#[derive(Debug, Clone)]
pub struct FeatureCache {
    dir: PathBuf,
}

impl FeatureCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The features file of `key`.
    pub fn path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.safetensors", key.stem()))
    }

    /// The audit sidecar of `key` (key fields, sample ids, media keys).
    pub fn sidecar(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.json", key.stem()))
    }

    fn part(&self, key: &CacheKey, chunk: usize) -> PathBuf {
        self.dir.join(format!("{}.part{chunk:05}.safetensors", key.stem()))
    }

    /// The cached features of `key` for exactly `plan`, or why they cannot be used.
    pub fn load(&self, key: &CacheKey, plan: &Plan) -> Result<FeatureSet, CacheError> {
        let path = self.path(key);
        let bytes =
            std::fs::read(&path).map_err(|e| format!("{}: {}", path.display(), short_io(&e)))?;
        let mut want = header(key, "all");
        want.push(("ids", json(&plan.ids)));
        want.push(("media", json(&plan.media)));
        want.push(("sample_media", json(&plan.sample_media)));
        let features = read_checked(&bytes, &want, plan.media.len())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(FeatureSet { plan: plan.clone(), features })
    }

    /// The cached features of `plan`, computing (in chunks of `chunk` media items, resuming from
    /// valid part files) whatever the cache cannot provide. `progress(done, total)` counts media.
    pub fn get_or_build(
        &self,
        key: &CacheKey,
        plan: &Plan,
        chunk: usize,
        compute: &mut Compute<'_>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(FeatureSet, Outcome), CacheError> {
        let reason = match self.load(key, plan) {
            Ok(set) => {
                progress(plan.media.len(), plan.media.len());
                return Ok((set, Outcome::Reused));
            }
            Err(reason) => reason,
        };
        if plan.media.is_empty() {
            return Err(CacheError::Invalid(format!(
                "{} {}: no samples to compute features for",
                key.task, key.split
            )));
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, &e))?;
        let chunk = chunk.max(1);
        let n = plan.media.len();
        let (mut data, mut dim) = (Vec::new(), None);
        let (mut computed, mut resumed) = (0, 0);
        progress(0, n);
        for (c, start) in (0..n).step_by(chunk).enumerate() {
            let rows: Vec<usize> = (start..(start + chunk).min(n)).collect();
            let mut want = header(key, &c.to_string());
            want.push(("media", json(&plan.media[start..start + rows.len()])));
            let part = self.part(key, c);
            let cached =
                std::fs::read(&part).ok().and_then(|b| read_checked(&b, &want, rows.len()).ok());
            let feats = match cached.filter(|f| dim.is_none_or(|d| d == f.dim())) {
                Some(f) => {
                    resumed += rows.len();
                    f
                }
                None => {
                    let values = compute(&rows).map_err(CacheError::Compute)?;
                    let f = matrix(values, rows.len(), dim)?;
                    write_atomic(&part, &serialize(&f, &want)?)?;
                    computed += rows.len();
                    f
                }
            };
            dim = Some(feats.dim());
            data.extend_from_slice(feats.as_slice());
            progress(start + rows.len(), n);
        }
        let features = matrix(data, n, dim)?;
        let mut meta = header(key, "all");
        meta.push(("ids", json(&plan.ids)));
        meta.push(("media", json(&plan.media)));
        meta.push(("sample_media", json(&plan.sample_media)));
        write_atomic(&self.path(key), &serialize(&features, &meta)?)?;
        write_atomic(&self.sidecar(key), &sidecar_json(key, plan))?;
        for c in 0..n.div_ceil(chunk) {
            let _ = std::fs::remove_file(self.part(key, c));
        }
        Ok((
            FeatureSet { plan: plan.clone(), features },
            Outcome::Built { computed, resumed, reason: reason.to_string() },
        ))
    }
}

/// Metadata every file carries: format, key fields, key digest and which chunk (`all` = final).
fn header(key: &CacheKey, chunk: &str) -> Vec<(&'static str, String)> {
    let mut h =
        vec![("format", FORMAT.to_owned()), ("key", key.digest()), ("chunk", chunk.to_owned())];
    h.extend(key.fields());
    h
}

fn json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serialises")
}

fn checksum(bytes: &[u8]) -> String {
    // FNV-1a over the raw little-endian f32 bytes.
    let h = bytes
        .iter()
        .fold(0xCBF2_9CE4_8422_2325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x0100_0000_01B3));
    format!("{h:016x}")
}

fn matrix(values: Vec<f32>, rows: usize, dim: Option<usize>) -> Result<Features, CacheError> {
    let d = values.len().checked_div(rows).unwrap_or(0);
    if d == 0 || d * rows != values.len() || dim.is_some_and(|x| x != d) {
        return Err(CacheError::Invalid(format!(
            "{} values computed for {rows} rows (dimension {dim:?})",
            values.len()
        )));
    }
    Features::new(d, values).map_err(|e| CacheError::Invalid(e.to_string()))
}

fn serialize(f: &Features, meta: &[(&str, String)]) -> Result<Vec<u8>, CacheError> {
    let bytes: Vec<u8> = f.as_slice().iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut info: HashMap<String, String> =
        meta.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    info.insert("checksum".into(), checksum(&bytes));
    let view = TensorView::new(Dtype::F32, vec![f.rows(), f.dim()], &bytes)
        .map_err(|e| CacheError::Invalid(e.to_string()))?;
    safetensors::serialize([("features", view)], Some(info))
        .map_err(|e| CacheError::Invalid(e.to_string()))
}

/// Parses a cache file and checks metadata `want`, the row count, the checksum and the values.
fn read_checked(
    bytes: &[u8],
    want: &[(&str, String)],
    rows: usize,
) -> Result<Features, CacheError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("unreadable ({e})"))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| format!("unreadable ({e})"))?;
    let meta = header.metadata().clone().unwrap_or_default();
    for (k, v) in want {
        match meta.get(*k) {
            Some(got) if got == v => {}
            Some(_) => return Err(format!("`{k}` differs from the request (stale cache)").into()),
            None => return Err(format!("metadata field `{k}` missing").into()),
        }
    }
    let t = st.tensor("features").map_err(|e| format!("no `features` tensor ({e})"))?;
    let shape = t.shape();
    if t.dtype() != Dtype::F32 || shape.len() != 2 || shape[0] != rows || shape[1] == 0 {
        return Err(
            format!("`features` is {:?} {shape:?}, expected F32 [{rows}, d]", t.dtype()).into()
        );
    }
    if meta.get("checksum").map(String::as_str) != Some(checksum(t.data()).as_str()) {
        return Err("checksum mismatch (corrupt file)".into());
    }
    let values =
        t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Features::new(shape[1], values).map_err(|e| CacheError::Unusable(e.to_string()))
}

fn sidecar_json(key: &CacheKey, plan: &Plan) -> Vec<u8> {
    let mut obj = serde_json::Map::new();
    obj.insert("format".into(), FORMAT.into());
    for (k, v) in key.fields() {
        obj.insert(k.into(), v.into());
    }
    obj.insert("ids".into(), plan.ids.clone().into());
    obj.insert("media".into(), plan.media.clone().into());
    let mut out =
        serde_json::to_vec_pretty(&serde_json::Value::Object(obj)).expect("plain data serialises");
    out.push(b'\n');
    out
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| io(&tmp, &e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, &e))
}

fn io(path: &Path, e: &std::io::Error) -> CacheError {
    CacheError::Io(path.display().to_string(), short_io(e))
}

fn short_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "missing".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u64) -> CacheKey {
        CacheKey {
            weights: "w1".into(),
            task: "t".into(),
            split: "train".into(),
            pool_seed: Some(seed),
            recipe: "r".into(),
        }
    }

    fn plan() -> Plan {
        Plan::new((0..10).map(|i| (format!("s{i}"), format!("m{}", i / 2))))
    }

    /// Media row i → [i, 1] (counted).
    fn run(
        cache: &FeatureCache,
        k: &CacheKey,
        count: &mut usize,
        fail_after: Option<usize>,
    ) -> Result<(FeatureSet, Outcome), CacheError> {
        let mut compute = |rows: &[usize]| -> Result<Vec<f32>, BoxError> {
            if fail_after.is_some_and(|n| *count >= n) {
                return Err("interrupted".into());
            }
            *count += rows.len();
            Ok(rows.iter().flat_map(|&r| [r as f32, 1.0]).collect())
        };
        cache.get_or_build(k, &plan(), 2, &mut compute, &mut |_, _| {})
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("retrieval-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn plan_dedups_media() {
        let p = plan();
        assert_eq!(p.media, ["m0", "m1", "m2", "m3", "m4"]);
        assert_eq!(p.sample_media, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    }

    #[test]
    fn builds_reuses_and_keys() {
        let dir = tmpdir("keys");
        let cache = FeatureCache::new(&dir);
        let mut n = 0;
        let (set, out) = run(&cache, &key(1), &mut n, None).unwrap();
        assert_eq!(n, 5);
        assert!(matches!(out, Outcome::Built { computed: 5, resumed: 0, .. }));
        assert_eq!(set.features.row(3), &[3.0, 1.0]);
        assert_eq!(set.sample_features().row(6), &[3.0, 1.0]);
        let (again, out) = run(&cache, &key(1), &mut n, None).unwrap();
        assert_eq!((n, out), (5, Outcome::Reused));
        assert_eq!(again, set);
        // Another seed, weights or recipe: another file, computed again.
        run(&cache, &key(2), &mut n, None).unwrap();
        assert_eq!(n, 10);
        let mut k = key(1);
        k.weights = "w2".into();
        run(&cache, &k, &mut n, None).unwrap();
        assert_eq!(n, 15);
        let sidecar: serde_json::Value =
            serde_json::from_slice(&std::fs::read(cache.sidecar(&key(1))).unwrap()).unwrap();
        assert_eq!(sidecar["ids"][6], "s6");
        assert_eq!(sidecar["pool_seed"], "1");
        // A changed sample list under the same key is stale.
        let other = Plan::new([("x".to_owned(), "m0".to_owned())]);
        assert!(cache.load(&key(1), &other).unwrap_err().to_string().contains("`ids` differs"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn corrupt_or_truncated_files_are_rebuilt() {
        let dir = tmpdir("corrupt");
        let cache = FeatureCache::new(&dir);
        let mut n = 0;
        let (set, _) = run(&cache, &key(1), &mut n, None).unwrap();
        let path = cache.path(&key(1));
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x40; // flip a bit inside the feature data
        std::fs::write(&path, &bytes).unwrap();
        let (rebuilt, out) = run(&cache, &key(1), &mut n, None).unwrap();
        assert!(
            matches!(&out, Outcome::Built { computed: 5, reason, .. } if reason.contains("checksum")),
            "{out:?}"
        );
        assert_eq!(rebuilt, set);
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let (_, out) = run(&cache, &key(1), &mut n, None).unwrap();
        assert!(
            matches!(&out, Outcome::Built { reason, .. } if reason.contains("unreadable")),
            "{out:?}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn interrupted_build_resumes_from_valid_parts() {
        let dir = tmpdir("resume");
        let cache = FeatureCache::new(&dir);
        let mut n = 0;
        // Fails on the third chunk (of 2 + 2 + 1 media): two parts exist.
        assert!(matches!(run(&cache, &key(1), &mut n, Some(4)), Err(CacheError::Compute(_))));
        assert_eq!(n, 4);
        assert!(!cache.path(&key(1)).exists());
        // Damage the second part: it is recomputed, the first is reused.
        let part = cache.part(&key(1), 1);
        let len = std::fs::metadata(&part).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&part).unwrap().set_len(len - 1).unwrap();
        let mut m = 0;
        let (set, out) = run(&cache, &key(1), &mut m, None).unwrap();
        assert!(matches!(out, Outcome::Built { computed: 3, resumed: 2, .. }), "{out:?}");
        assert_eq!(m, 3);
        assert_eq!(set.features.row(2), &[2.0, 1.0]);
        assert!(!part.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
