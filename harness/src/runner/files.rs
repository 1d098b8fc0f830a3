//! The run folder: `run.json` (configuration fingerprint), `predictions.jsonl` (append-only, the
//! unit of resume) and atomic writes of the final files.
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const RUN_JSON: &str = "run.json";
pub const PREDICTIONS: &str = "predictions.jsonl";
pub const METRICS: &str = "metrics.json";

/// A shard: `index` of `count`, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// `I/N` with 1 ≤ I ≤ N.
    pub fn parse(s: &str) -> Result<Shard> {
        let (i, n) = s.split_once('/').with_context(|| format!("--shard: expected I/N, found {s:?}"))?;
        let (index, count): (usize, usize) = (i.trim().parse().with_context(|| format!("--shard: {s:?}: I is not a number"))?, n
            .trim()
            .parse()
            .with_context(|| format!("--shard: {s:?}: N is not a number"))?);
        if count == 0 || index == 0 || index > count {
            bail!("--shard: {s:?}: need 1 <= I <= N");
        }
        Ok(Shard { index, count })
    }

    /// Whether position `pos` of the canonical order belongs to this shard (striding).
    pub fn takes(&self, pos: usize) -> bool {
        pos % self.count == self.index - 1
    }
}

/// The configuration fingerprint of a run (`run.json`). A rerun into the same folder must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub schema: u32,
    pub task: String,
    pub split: String,
    pub model: String,
    pub weights_hash: String,
    pub model_family: String,
    pub dtype: String,
    pub shots: usize,
    pub cot: bool,
    pub text_examples: bool,
    pub support_method: String,
    pub seed: u64,
    pub limit: Option<usize>,
    pub template_version: String,
    pub shard: Option<Shard>,
    pub emu_eval_version: String,
    pub git_commit: String,
    /// Text-to-image settings (coco_t2i only), flattened into the top level.
    #[serde(flatten)]
    pub t2i: Option<T2iConfig>,
}

/// What else decides a text-to-image run's images and FID.
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

impl Fingerprint {
    /// The first field whose value differs, with both values.
    pub fn first_difference(&self, other: &Fingerprint, ignore: &[&str]) -> Option<(String, Value, Value)> {
        let (a, b) = (serde_json::to_value(self).ok()?, serde_json::to_value(other).ok()?);
        let (a, b) = (a.as_object()?, b.as_object()?);
        a.iter()
            .filter(|(k, _)| !ignore.contains(&k.as_str()))
            .find(|(k, v)| b.get(*k) != Some(v))
            .map(|(k, v)| (k.clone(), v.clone(), b.get(k).cloned().unwrap_or(Value::Null)))
    }
}

/// Writes `path` atomically: a temporary file beside it, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    let mut f = File::create(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot rename into place", path.display()))
}

/// Pretty JSON, atomically.
pub fn write_json(path: &Path, v: &impl Serialize) -> Result<()> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    write_atomic(path, s.as_bytes())
}

/// Reads `run.json` of a folder, if present.
pub fn read_fingerprint(dir: &Path) -> Result<Option<Fingerprint>> {
    let path = dir.join(RUN_JSON);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    let fp = serde_json::from_str(&text).with_context(|| format!("{}: not a run fingerprint", path.display()))?;
    Ok(Some(fp))
}

/// The lines of `predictions.jsonl` that are complete. A last line without its newline, or one
/// that does not parse, is a torn write: with `repair` the file is truncated to the last good line.
/// A bad line that is not the last is an error naming the line.
pub fn read_predictions(path: &Path, repair: bool) -> Result<Vec<Value>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let f = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut reader = BufReader::new(f);
    let mut lines = Vec::new();
    let (mut good_end, mut pos) = (0u64, 0u64);
    let mut buf = Vec::new();
    let mut torn = None;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).with_context(|| format!("{}: cannot read", path.display()))?;
        if n == 0 {
            break;
        }
        pos += n as u64;
        let complete = buf.last() == Some(&b'\n');
        let parsed = serde_json::from_slice::<Value>(&buf).ok().filter(Value::is_object);
        match (complete, parsed) {
            (true, Some(v)) if torn.is_none() => {
                lines.push(v);
                good_end = pos;
            }
            _ if torn.is_none() => torn = Some(lines.len() + 1),
            _ => bail!("{}: line {}: not a JSON object (only a torn last line can be repaired)", path.display(), torn.unwrap_or(0)),
        }
    }
    if torn.is_some() {
        if !repair {
            bail!("{}: line {}: torn or not a JSON object", path.display(), torn.unwrap_or(0));
        }
        let f = OpenOptions::new().write(true).open(path).with_context(|| format!("{}: cannot open for repair", path.display()))?;
        f.set_len(good_end).with_context(|| format!("{}: cannot truncate", path.display()))?;
        log::info(&format!("{}: dropped a torn last line (it is redone)", path.display()));
    }
    Ok(lines)
}

/// Appends one line per finished sample and flushes it to the OS.
pub struct PredictionWriter {
    file: File,
    path: PathBuf,
}

impl PredictionWriter {
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("{}: cannot open", path.display()))?;
        file.seek(SeekFrom::End(0))?;
        Ok(PredictionWriter { file, path: path.to_owned() })
    }

    pub fn append(&mut self, line: &Value) -> Result<()> {
        let mut s = serde_json::to_string(line)?;
        s.push('\n');
        self.file.write_all(s.as_bytes()).and_then(|()| self.file.flush()).with_context(|| format!("{}: cannot append", self.path.display()))
    }
}

/// Progress and notes go to stderr, so stdout stays parseable.
pub mod log {
    pub fn info(msg: &str) {
        eprintln!("emu-eval: {msg}");
    }
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
    }

    #[test]
    fn torn_last_line_is_truncated() {
        let dir = std::env::temp_dir().join(format!("emu-eval-torn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("p.jsonl");
        std::fs::write(&p, "{\"id\":\"1\"}\n{\"id\":\"2\"}\n{\"id\":").unwrap();
        assert!(read_predictions(&p, false).is_err());
        let lines = read_predictions(&p, true).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"id\":\"1\"}\n{\"id\":\"2\"}\n");
        std::fs::write(&p, "{\"id\":\"1\"}\nnot json\n{\"id\":\"2\"}\n").unwrap();
        assert!(read_predictions(&p, true).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
