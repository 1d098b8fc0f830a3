//! Writing the run folder (schema: `tasks::run_folder`): `run.json`, `predictions.jsonl`
//! (append-only, the unit of resume) and atomic writes of the final files.
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;

pub use tasks::run_folder::{RunConfig, RunJson, Shard, T2iConfig, METRICS, PREDICTIONS, RUN_JSON};

/// Writes `path` atomically: a temporary file beside it, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path
        .with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    let mut f = File::create(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("{}: cannot rename into place", path.display()))
}

/// Pretty JSON, atomically; a NaN or infinite number in `v` is an error naming the file and
/// field (serde_json would write `null`).
pub fn write_json(path: &Path, v: &impl Serialize) -> Result<()> {
    tasks::metrics::finite::check(v).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    write_atomic(path, s.as_bytes())
}

/// Reads the configuration in `run.json` of a folder, if present.
pub fn read_config(dir: &Path) -> Result<Option<RunConfig>> {
    Ok(tasks::run_folder::read_run_json(dir)?.map(|r| r.config))
}

/// Writes `run.json` for `config`, with the batch sizes of this invocation.
pub fn write_run_json(
    dir: &Path,
    config: &RunConfig,
    batch: Option<&super::batch::BatchChoice>,
) -> Result<()> {
    let mut run = RunJson::new(config.clone());
    run.arguments = crate::cli::config::arguments();
    run.batch = batch.map(serde_json::to_value).transpose()?;
    run.threads = Some(candle_core::utils::get_num_threads());
    write_json(&dir.join(RUN_JSON), &run)
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
        let n = reader
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("{}: cannot read", path.display()))?;
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
            _ => bail!(
                "{}: line {}: not a JSON object (only a torn last line can be repaired)",
                path.display(),
                torn.unwrap_or(0)
            ),
        }
    }
    if torn.is_some() {
        if !repair {
            bail!("{}: line {}: torn or not a JSON object", path.display(), torn.unwrap_or(0));
        }
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("{}: cannot open for repair", path.display()))?;
        f.set_len(good_end).with_context(|| format!("{}: cannot truncate", path.display()))?;
        crate::log::note(format!("{}: dropped a torn last line (it is redone)", path.display()));
    }
    Ok(lines)
}

/// Appends one line per finished sample and flushes it to the OS.
pub struct PredictionWriter {
    file: File,
    path: PathBuf,
    /// Length of the file after the last whole line (kept here: no `stat` per line).
    len: u64,
}

impl PredictionWriter {
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        let len = file.seek(SeekFrom::End(0))?;
        Ok(PredictionWriter { file, path: path.to_owned(), len })
    }

    /// A write that fails part-way (disk full, file size limit) is cut back to the last whole
    /// line, so the file never keeps a torn line (resume would drop one anyway).
    pub fn append(&mut self, line: &Value) -> Result<()> {
        let mut s = serde_json::to_string(line)?;
        s.push('\n');
        let written = self.file.write_all(s.as_bytes()).and_then(|()| self.file.flush());
        match written {
            Ok(()) => {
                self.len += s.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(e).with_context(|| format!("{}: cannot append", self.path.display()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
