//! The run folder, the contract between `run`, resume, `merge`, `score`, `report` and `compare`:
//! the typed schema of `run.json`, `metrics.json` and a `predictions.jsonl` line, defined once and
//! used by every writer and reader. A reader meets another schema version with a one-line error.
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::input::{read_text, InputError};

/// Version of the run-folder schema this build writes and reads. Version policy: any change to
/// what a file means, or a field that becomes required, bumps it; a reader accepts exactly its
/// own version and names the other one in a one-line error (folders of another version are
/// read by the emu-eval that wrote them, or run again).
/// 2: `run.json` and `metrics.json`'s `config` carry the data provenance (`data`) and the
/// scoring variant; lines carry their ground truth.
pub const SCHEMA: u32 = 2;

pub const RUN_JSON: &str = "run.json";
pub const PREDICTIONS: &str = "predictions.jsonl";
pub const METRICS: &str = "metrics.json";

/// Emu (pretrained) or Emu-I (instruction tuned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Family {
    /// Pretrained Emu: plain text, media before the text (paper Table 8).
    #[serde(rename = "emu")]
    Emu,
    /// Instruction-tuned Emu-I: system message and `[USER]`/`[ASSISTANT]` turns (released code).
    #[serde(rename = "emu-i")]
    EmuI,
}

impl Family {
    /// The id in run files, `templates.json` and on the command line: `emu`, `emu-i`.
    pub fn key(self) -> &'static str {
        match self {
            Family::Emu => "emu",
            Family::EmuI => "emu-i",
        }
    }
    /// The paper's name: `Emu`, `Emu-I`.
    pub fn paper_name(self) -> &'static str {
        match self {
            Family::Emu => "Emu",
            Family::EmuI => "Emu-I",
        }
    }
    pub fn parse(s: &str) -> Option<Family> {
        match s {
            "emu" => Some(Family::Emu),
            "emu-i" => Some(Family::EmuI),
            _ => None,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// `--shard I/N`: shard `index` of `count`, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// A `--shard` value that is not `I/N` with 1 ≤ I ≤ N.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--shard: {0:?}: {1}")]
pub struct ShardError(pub String, pub &'static str);

impl Shard {
    /// `I/N` with 1 ≤ I ≤ N.
    pub fn parse(s: &str) -> Result<Shard, ShardError> {
        let err = |m| ShardError(s.to_owned(), m);
        let (i, n) = s.split_once('/').ok_or_else(|| err("expected I/N"))?;
        let index: usize = i.trim().parse().map_err(|_| err("I is not a number"))?;
        let count: usize = n.trim().parse().map_err(|_| err("N is not a number"))?;
        if count == 0 || index == 0 || index > count {
            return Err(err("need 1 <= I <= N"));
        }
        Ok(Shard { index, count })
    }

    /// Whether position `pos` of the canonical order belongs to this shard (striding).
    pub fn takes(&self, pos: usize) -> bool {
        pos % self.count == self.index - 1
    }
}

/// What else decides a text-to-image run's images and FID (coco_t2i only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct T2iConfig {
    /// Visual decoder folder, or `builtin-tiny`.
    pub decoder: String,
    pub decoder_hash: String,
    /// Inception weights file, or `builtin-tiny`.
    pub inception: String,
    pub inception_hash: String,
    /// Size of the seeded caption sample.
    pub prompts: usize,
    pub steps: usize,
    pub guidance: f64,
    pub image_size: usize,
}

/// Which data a run scored: where it was, whether it is the built-in sample data, and what the
/// files held (a moved data root is recognised by the digests; a changed file is not the same
/// data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataProvenance {
    /// The absolute data root at the time of the run.
    pub root: String,
    /// emu-eval's built-in sample data: never comparable with published numbers.
    pub builtin: bool,
    /// `sha256:<hex>` of each of the task's annotation/question/caption files found, by path
    /// relative to the data root.
    pub files: BTreeMap<String, String>,
    /// Media files of the evaluated samples, and their total size.
    pub media_files: u64,
    pub media_bytes: u64,
    /// `sha256:<hex>` over every medium's path (relative to the root) and sampled content (size,
    /// first and last 64 KiB): a medium replaced or re-encoded changes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_digest: Option<String>,
}

impl DataProvenance {
    /// The first difference in content (the root's location aside), as `what: a vs b`.
    pub fn content_difference(&self, other: &DataProvenance) -> Option<String> {
        let keys =
            self.files.keys().chain(other.files.keys().filter(|k| !self.files.contains_key(*k)));
        for k in keys {
            let (a, b) = (self.files.get(k), other.files.get(k));
            if a != b {
                let show = |d: Option<&String>| {
                    d.map_or("absent".to_owned(), |d| d.chars().take(19).collect())
                };
                return Some(format!("{k}: {} vs {}", show(a), show(b)));
            }
        }
        if (self.media_files, self.media_bytes) != (other.media_files, other.media_bytes) {
            return Some(format!(
                "media: {} files / {} bytes vs {} files / {} bytes",
                self.media_files, self.media_bytes, other.media_files, other.media_bytes
            ));
        }
        if let (Some(a), Some(b)) = (&self.media_digest, &other.media_digest) {
            if a != b {
                let short = |d: &str| d.chars().take(19).collect::<String>();
                return Some(format!(
                    "media content: {} vs {} (a file replaced or edited)",
                    short(a),
                    short(b)
                ));
            }
        }
        (self.builtin != other.builtin)
            .then(|| format!("built-in sample data: {} vs {}", self.builtin, other.builtin))
    }
}

/// The name `run.json` records for the built-in tiny random model.
pub const BUILTIN_MODEL: &str = "builtin-tiny";

/// The configuration of a run: `run.json` (with `schema`) and `metrics.json`'s `config` (with
/// `device`). A rerun into the same folder must match it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub task: String,
    pub split: String,
    pub model: String,
    pub weights_hash: String,
    pub model_family: Family,
    pub dtype: String,
    pub shots: usize,
    pub cot: bool,
    pub text_examples: bool,
    pub support_method: String,
    pub seed: u64,
    pub limit: Option<usize>,
    /// `--limit` given as a fraction of the split (`limit` holds the count it resolved to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_fraction: Option<f64>,
    pub template_version: String,
    pub shard: Option<Shard>,
    pub emu_eval_version: String,
    pub git_commit: String,
    /// Text-to-image settings (coco_t2i only), flattened into the top level.
    #[serde(flatten)]
    pub t2i: Option<T2iConfig>,
    /// The scoring variant where a task has several (VQAv2: `official` or `emu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vqa_variant: Option<String>,
    /// Decoding settings other than the paper's, by stage kind (`--max-new-tokens` …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<std::collections::BTreeMap<String, GenerationOverride>>,
    /// Which data the run scored.
    pub data: DataProvenance,
    /// The device the run used (`metrics.json` only: a resume may use another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// One stage kind's decoding settings that differ from the registry's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerationOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_new_tokens: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_beams: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length_penalty: Option<f64>,
    /// `--sample`: multinomial sampling with one beam (seeded per sample and stage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
}

impl RunConfig {
    /// The fields that must agree for two runs to measure the same thing, as (name, value) pairs.
    /// Binary version, commit, shard and device are left out: they are expected to change.
    pub fn fingerprint(&self) -> Vec<(&'static str, String)> {
        vec![
            ("split", self.split.clone()),
            ("model", self.model.clone()),
            ("weights_hash", self.weights_hash.clone()),
            ("dtype", self.dtype.clone()),
            ("support_method", self.support_method.clone()),
            ("seed", self.seed.to_string()),
            ("limit", self.limit.map_or("none".to_owned(), |l| l.to_string())),
            ("template_version", self.template_version.clone()),
        ]
    }

    /// The first field (of the serialised form, `ignore` aside) whose value differs, with both
    /// values.
    pub fn first_difference(
        &self,
        other: &RunConfig,
        ignore: &[&str],
    ) -> Option<(String, Value, Value)> {
        let (a, b) = (serde_json::to_value(self).ok()?, serde_json::to_value(other).ok()?);
        let (a, b) = (a.as_object()?, b.as_object()?);
        let keys = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
        keys.filter(|k| !ignore.contains(&k.as_str())).find(|k| a.get(*k) != b.get(*k)).map(|k| {
            (
                k.clone(),
                a.get(k).cloned().unwrap_or(Value::Null),
                b.get(k).cloned().unwrap_or(Value::Null),
            )
        })
    }

    /// Whether the run used the built-in random model or the built-in sample data: its numbers
    /// say nothing about Emu.
    pub fn is_builtin(&self) -> bool {
        self.model == BUILTIN_MODEL || self.data.builtin
    }

    /// Short model name: the last path component of `model`.
    pub fn model_name(&self) -> &str {
        self.model.trim_end_matches('/').rsplit('/').next().unwrap_or(&self.model)
    }
}

/// `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunJson {
    pub schema: u32,
    #[serde(flatten)]
    pub config: RunConfig,
    /// The command line that wrote the file, after `--config` (not part of the fingerprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Vec<String>>,
    /// The batch of each stage kind and how `--batch-size auto` chose it (not part of the
    /// fingerprint: predictions do not depend on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Value>,
    /// Worker threads of the model's CPU kernels (`--threads`; not part of the fingerprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
}

impl RunJson {
    pub fn new(config: RunConfig) -> Self {
        RunJson { schema: SCHEMA, config, arguments: None, batch: None, threads: None }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub samples: u64,
    pub scored: u64,
    pub failed: u64,
}

/// The headline metric on the paper's scale; `value` is null when the run could not be scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    pub name: String,
    pub value: Option<f64>,
}

/// Where the time went. A run writes the wall/model times of its last invocation; a merge writes
/// `merged_shards` instead; text-to-image adds its image counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_per_second: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_this_invocation: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_skipped: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_found_without_line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_shards: Option<usize>,
}

/// `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub task: String,
    pub split: String,
    pub counts: Counts,
    /// Understanding tasks: failed samples are in the score as wrong answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_counted_as_wrong: Option<bool>,
    /// Text-to-image: failed images are left out of the FID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_left_out: Option<bool>,
    /// Null when the run could not be scored.
    pub headline: Option<Headline>,
    /// What `emu-eval score` prints under `metric` (or `{"unscored": reason}`).
    pub metric: Value,
    /// Text-to-image: the generated and reference statistics files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid_statistics: Option<Value>,
    pub result_file: String,
    pub config: RunConfig,
    pub timing: Timing,
}

/// Few-shot support examples of a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Support {
    pub method: String,
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarities: Option<Vec<f64>>,
}

/// One model call of a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub stage: String,
    pub kind: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub images: Vec<String>,
    /// Per image: `[i, k]` = frame i of k sampled from a video, or null for a still image.
    #[serde(default)]
    pub frames: Vec<Option<[usize; 2]>>,
    #[serde(default)]
    pub output: Value,
    /// Why the stage failed (the sample's error), for the stage a failed sample stopped in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One line of `predictions.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support: Option<Support>,
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// Post-processed answer (text, VisDial ranks), the image path (coco_t2i), or null when the
    /// sample failed.
    pub prediction: Value,
    /// On the headline scale; null for corpus-level metrics (CIDEr, FID) and failed samples.
    pub score: Option<f64>,
    pub error: Option<String>,
    #[serde(default)]
    pub time_seconds: f64,
    /// Text-to-image: the caption and the generated PNG (relative to the run folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Gated tasks (VizWiz): the gate's probability that the question is answerable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answerable: Option<f64>,
    /// What the sample is scored against (answers, references, the gold option); absent for
    /// splits without answers and for text-to-image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ground_truth: Option<Value>,
}

/// Parses a JSON document into `T`; the error names the file and the field path.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, InputError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let msg = e.inner().to_string();
        if field == "." {
            InputError::file(path, msg)
        } else {
            InputError::field(path, field, msg)
        }
    })
}

/// Checks a document's `schema` before it is parsed as a whole, so that another version gives
/// one line naming the version rather than a missing field.
fn check_schema(path: &Path, text: &str) -> Result<(), InputError> {
    #[derive(Deserialize)]
    struct Probe {
        schema: Option<Value>,
    }
    let probe: Probe = parse(path, text)?;
    match probe.schema {
        Some(Value::Number(n)) if n.as_u64() == Some(SCHEMA as u64) => Ok(()),
        Some(v) => Err(InputError::field(
            path,
            "schema",
            format!("{v} is not supported by this emu-eval (it reads schema {SCHEMA}); use the emu-eval that wrote the folder"),
        )),
        None => Err(InputError::field(path, "schema", "missing (not an emu-eval run.json)")),
    }
}

/// Reads `run.json` of `dir`, if present.
pub fn read_run_json(dir: &Path) -> Result<Option<RunJson>, InputError> {
    let path = dir.join(RUN_JSON);
    if !path.exists() {
        return Ok(None);
    }
    let text = read_text(&path)?;
    check_schema(&path, &text)?;
    parse(&path, &text).map(Some)
}

/// Reads `metrics.json` of `dir`.
pub fn read_metrics(dir: &Path) -> Result<Metrics, InputError> {
    let path = dir.join(METRICS);
    parse(&path, &read_text(&path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_parsing_and_striding() {
        let s = Shard::parse("2/3").unwrap();
        assert!(!s.takes(0) && s.takes(1) && !s.takes(2) && s.takes(4));
        for bad in ["0/2", "3/2", "1/0", "x/2", "2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Shard::parse("3/2").unwrap_err().to_string(),
            "--shard: \"3/2\": need 1 <= I <= N"
        );
    }

    #[test]
    fn families_round_trip() {
        for f in [Family::Emu, Family::EmuI] {
            assert_eq!(Family::parse(f.key()), Some(f));
            assert_eq!(serde_json::to_value(f).unwrap(), Value::String(f.key().into()));
        }
    }

    #[test]
    fn another_schema_version_is_one_line_naming_it() {
        let dir = std::env::temp_dir().join(format!("emu-eval-schema-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(RUN_JSON), r#"{"schema": 7, "task": "vqav2"}"#).unwrap();
        let e = read_run_json(&dir).unwrap_err().to_string();
        assert!(e.ends_with("run.json: schema: 7 is not supported by this emu-eval (it reads schema 2); use the emu-eval that wrote the folder"), "{e}");
        std::fs::write(dir.join(RUN_JSON), r#"{"task": "vqav2"}"#).unwrap();
        assert!(read_run_json(&dir).unwrap_err().to_string().contains("schema: missing"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn first_difference_sees_fields_on_either_side() {
        let text = r#"{"task":"vqav2","split":"val","model":"m","weights_hash":"h","model_family":"emu","dtype":"f32","shots":0,"cot":false,"text_examples":false,"support_method":"none","seed":0,"limit":null,"template_version":"t","shard":null,"emu_eval_version":"0.1.0","git_commit":"x","data":{"root":"/d","builtin":false,"files":{"vqav2/q.json":"sha256:ab"},"media_files":3,"media_bytes":9}}"#;
        let a: RunConfig = serde_json::from_str(text).unwrap();
        let mut b = a.clone();
        assert_eq!(a.first_difference(&b, &[]), None);
        b.device = Some("cpu".into());
        assert_eq!(a.first_difference(&b, &[]).map(|d| d.0), Some("device".into()));
        assert_eq!(a.first_difference(&b, &["device"]), None);
        b.seed = 3;
        assert_eq!(a.first_difference(&b, &["device"]).map(|d| d.0), Some("seed".into()));
    }

    #[test]
    fn data_content_ignores_the_root_and_names_a_changed_file() {
        let a = DataProvenance {
            root: "/a".into(),
            builtin: false,
            files: [("t/q.json".to_owned(), "sha256:aaaa".to_owned())].into(),
            media_files: 2,
            media_bytes: 10,
            media_digest: Some("sha256:1111".into()),
        };
        let moved = DataProvenance { root: "/b".into(), ..a.clone() };
        assert_eq!(a.content_difference(&moved), None);
        let mut changed = moved.clone();
        changed.files.insert("t/q.json".into(), "sha256:bbbb".into());
        assert_eq!(a.content_difference(&changed).unwrap(), "t/q.json: sha256:aaaa vs sha256:bbbb");
        let fewer = DataProvenance { media_files: 1, ..a.clone() };
        assert!(a.content_difference(&fewer).unwrap().starts_with("media: 2 files"));
        let edited = DataProvenance { media_digest: Some("sha256:2222".into()), ..a.clone() };
        assert!(a.content_difference(&edited).unwrap().starts_with("media content:"));
        // A folder written before the digest existed is compared without it.
        let older = DataProvenance { media_digest: None, ..edited };
        assert_eq!(a.content_difference(&older), None);
    }
}
