//! Which data a run scored (`run.json`'s `data`): the absolute data root, whether it is the
//! built-in sample data, the sha256 of each of the task's annotation files, and the count and
//! size of the evaluated samples' media. Computed before the model loads; checked when a run is
//! resumed or merged, and by `compare`.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tasks::registry::Task;
use tasks::run_folder::DataProvenance;

/// The task's annotation/question/caption files (the registry's `data_files` that are files,
/// not folders), relative to the data root, that exist under `root`.
pub fn annotation_files(task: &Task, root: &Path) -> Vec<String> {
    task.data_files
        .iter()
        .map(|f| f.split(" (").next().unwrap_or(f).trim())
        .filter(|f| !f.ends_with('/'))
        .map(|f| format!("{}/{f}", task.id))
        .filter(|rel| root.join(rel).is_file())
        .collect()
}

/// The provenance of a run of `task` under `root` whose evaluated samples use `media`.
pub fn of<'a>(
    task: &Task,
    root: &Path,
    media: impl Iterator<Item = &'a Path>,
) -> Result<DataProvenance> {
    let root = std::path::absolute(root)
        .with_context(|| format!("{}: cannot resolve the data root", root.display()))?;
    let mut files = BTreeMap::new();
    for rel in annotation_files(task, &root) {
        files.insert(rel.clone(), crate::cache::weights_hash(&root.join(&rel))?);
    }
    let media: BTreeSet<PathBuf> = media.map(Path::to_path_buf).collect();
    let mut media_bytes = 0;
    for p in &media {
        // A missing medium is the runner's per-sample failure to report, not an error here.
        media_bytes += std::fs::metadata(p).map_or(0, |m| m.len());
    }
    let media_digest = Some(media_digest(&root, &media));
    Ok(DataProvenance {
        builtin: is_builtin(&root),
        root: root.display().to_string(),
        files,
        media_files: media.len() as u64,
        media_bytes,
        media_digest,
    })
}

/// Bytes read from each end of a medium for [`media_digest`].
const SAMPLE_BYTES: u64 = 64 << 10;

/// sha256 over each medium's path relative to `root`, size, and first and last
/// [`SAMPLE_BYTES`] (all of a small file): cheap for a large dataset, and a file replaced or
/// re-encoded changes it. Missing media count as empty.
pub fn media_digest(root: &Path, media: &BTreeSet<PathBuf>) -> String {
    use rayon::prelude::*;
    use sha2::{Digest, Sha256};
    let parts: Vec<Vec<u8>> = media
        .par_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap_or(p);
            let mut h = Sha256::new();
            h.update(rel.as_os_str().as_encoded_bytes());
            h.update(sampled_content(p));
            h.finalize().to_vec()
        })
        .collect();
    let mut h = Sha256::new();
    for part in parts {
        h.update(part);
    }
    format!("sha256:{}", crate::cache::hex(&h.finalize()))
}

fn sampled_content(p: &Path) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(p) else { return b"missing".to_vec() };
    let size = f.metadata().map_or(0, |m| m.len());
    let mut out = size.to_le_bytes().to_vec();
    let mut take = |f: &mut std::fs::File, from: u64, n: u64| {
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(from)).is_ok() && f.take(n).read_to_end(&mut buf).is_ok() {
            out.extend_from_slice(&buf);
        }
    };
    if size <= 2 * SAMPLE_BYTES {
        take(&mut f, 0, size);
    } else {
        take(&mut f, 0, SAMPLE_BYTES);
        take(&mut f, size - SAMPLE_BYTES, SAMPLE_BYTES);
    }
    out
}

/// Whether `root` is emu-eval's built-in sample data (it carries the generator's marker).
pub fn is_builtin(root: &Path) -> bool {
    root.join(crate::sample_data::MARKER).is_file()
}

/// Checks that `root` still holds the annotation files `recorded` names, with the same content
/// (a moved data root is accepted; an edited file is not).
pub fn verify_files(recorded: &DataProvenance, root: &Path, origin: &Path) -> Result<()> {
    for (rel, digest) in &recorded.files {
        let path = root.join(rel);
        if !path.is_file() {
            bail!(
                "{}: data.files: {rel} is not under {} (give the data root with --data-root)",
                origin.display(),
                root.display()
            );
        }
        let now = crate::cache::weights_hash(&path)?;
        if &now != digest {
            bail!(
                "{}: data.files: {} changed since the run ({} then, {} now)",
                origin.display(),
                path.display(),
                &digest[..digest.len().min(19)],
                &now[..now.len().min(19)]
            );
        }
    }
    Ok(())
}
