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
    Ok(DataProvenance {
        builtin: is_builtin(&root),
        root: root.display().to_string(),
        files,
        media_files: media.len() as u64,
        media_bytes,
    })
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
