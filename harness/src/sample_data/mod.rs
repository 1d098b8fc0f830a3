//! Built-in sample data: a small data root in the official layout of every task
//! (`shared/spec/datasets.md` §2), made by a seeded generator, so `emu-eval run` works without
//! downloads. Every image and video shows one coloured shape (six colour × shape classes) on a
//! light background; captions, questions and answers describe it, so retrieval by appearance is
//! meaningful. Media are encoded with the `ffmpeg` command-line tool; the same ffmpeg build writes
//! the same bytes every time.
//!
//! Sizes (evaluation split / RICES pool): coco_caption 10 / 16, coco_t2i 12 captions / none,
//! vqav2 10 / 18, okvqa 10 / 16, vizwiz 10 / 16, visdial 10 rounds / 12 dialogs, msvd_qa,
//! msrvtt_qa and nextqa 12 / 16; plus small val and submission-only test splits.
mod coco;
mod encode;
mod plan;
mod scene;
mod video;
mod visdial;
mod vqa;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use rayon::prelude::*;

use plan::{Container, Content, Plan};
use scene::{Clip, Scene};

/// Folder name of this generator's output; bump with any change to the content.
const NAME: &str = "sample-data-v1";
/// Written last: its presence with the current content hash marks a complete, current copy.
pub const MARKER: &str = "emu-eval-sample-data.txt";

/// Where the built-in sample data lives: `sample-data-v1` in the user cache folder
/// ([`crate::cache::base_dir`]; `std::env::temp_dir()/emu-eval` when no variable is set).
pub fn default_dir() -> PathBuf {
    dir_from(|k| std::env::var_os(k))
}

/// The data root of a command: `given` (`--data-root`), else `$EMU_EVAL_DATA`, else the built-in
/// sample data in [`default_dir`], generated on first use (with a note saying so).
pub fn data_root(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d.to_path_buf());
    }
    if let Some(d) = std::env::var_os("EMU_EVAL_DATA").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    let dir = default_dir();
    ensure(&dir)?;
    crate::log::note(format!(
        "no --data-root: using the built-in sample data in {}",
        dir.display()
    ));
    Ok(dir)
}

/// [`default_dir`] with the environment as a function (empty values count as unset).
fn dir_from(var: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    crate::cache::base_from(var).unwrap_or_else(|| std::env::temp_dir().join("emu-eval")).join(NAME)
}

/// Every file of the sample data root.
fn plan() -> Plan {
    let mut p = Plan::default();
    coco::caption(&mut p);
    coco::t2i(&mut p);
    vqa::vqav2(&mut p);
    vqa::okvqa(&mut p);
    vqa::vizwiz(&mut p);
    visdial::visdial(&mut p);
    video::all(&mut p);
    p
}

/// The marker's text: names the generator and hashes the plan and the encoder settings.
fn marker_text(plan: &Plan) -> String {
    format!(
        "emu-eval built-in sample data ({NAME})\ncontent {:016x}\nfiles {}\nDelete this folder to have it generated again.\n",
        plan.hash(&encode::settings()),
        plan.files.len()
    )
}

fn is_complete(dir: &Path, marker: &str) -> bool {
    std::fs::read_to_string(dir.join(MARKER)).is_ok_and(|m| m == marker)
}

/// Generates the sample data into `dir` unless a complete copy is already there (a marker file
/// written last, holding a version/content hash). Safe against interruption (generates into a
/// temporary sibling folder, then renames it) and against two processes at once (the rename loser
/// uses the winner's copy).
pub fn ensure(dir: &Path) -> Result<()> {
    let plan = plan();
    let marker = marker_text(&plan);
    if is_complete(dir, &marker) {
        return Ok(());
    }
    encode::check_ffmpeg()?;
    let dir = std::path::absolute(dir)
        .with_context(|| format!("{}: cannot resolve the sample data folder", dir.display()))?;
    let (parent, name) = match (dir.parent(), dir.file_name()) {
        (Some(p), Some(n)) => (p.to_owned(), n.to_string_lossy().into_owned()),
        _ => anyhow::bail!("{}: not a usable sample data folder", dir.display()),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("{}: cannot create folder", parent.display()))?;
    let sibling = |what: &str| {
        static N: AtomicUsize = AtomicUsize::new(0);
        parent.join(format!(
            ".{name}.{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    };
    let tmp = sibling("tmp");
    let written = write(&plan, &tmp, &marker);
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e.context(format!("generating the sample data in {}", tmp.display())));
    }
    // An outdated or incomplete copy is moved aside first (rename cannot replace a non-empty folder).
    if dir.exists() && !is_complete(&dir, &marker) {
        let old = sibling("old");
        if std::fs::rename(&dir, &old).is_ok() {
            let _ = std::fs::remove_dir_all(&old);
        }
    }
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            if is_complete(&dir, &marker) {
                Ok(()) // another process finished first
            } else {
                Err(e).with_context(|| {
                    format!("{}: cannot move the generated sample data into place", dir.display())
                })
            }
        }
    }
}

/// Writes every file of `plan` under `root`, the marker last.
fn write(plan: &Plan, root: &Path, marker: &str) -> Result<()> {
    std::fs::create_dir_all(root)
        .with_context(|| format!("{}: cannot create folder", root.display()))?;
    let mut jpegs: BTreeMap<(u32, u32), Vec<(PathBuf, Scene)>> = BTreeMap::new();
    let mut videos: Vec<(PathBuf, Clip, Container)> = Vec::new();
    let mut copies: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut encoded: HashMap<(Clip, Container), PathBuf> = HashMap::new();
    for f in &plan.files {
        let path = root.join(&f.path);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)
                .with_context(|| format!("{}: cannot create folder", p.display()))?;
        }
        match &f.content {
            Content::Bytes(b) => std::fs::write(&path, b)
                .with_context(|| format!("{}: cannot write", path.display()))?,
            Content::Jpeg(s) => jpegs.entry((s.width, s.height)).or_default().push((path, *s)),
            Content::Video(clip, container) => match encoded.get(&(*clip, *container)) {
                Some(first) => copies.push((first.clone(), path)),
                None => {
                    encoded.insert((*clip, *container), path.clone());
                    videos.push((path, *clip, *container));
                }
            },
        }
    }
    let jobs: Vec<Job> = jpegs
        .into_iter()
        .enumerate()
        .map(|(i, ((w, h), list))| Job::Jpegs(root.join(format!(".jpeg-{i}")), w, h, list))
        .chain(videos.into_iter().map(|(p, c, k)| Job::Video(p, c, k)))
        .collect();
    // Each job mostly waits on its ffmpeg process, so run more of them than there are cores.
    let threads = 2 * std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    pool.install(|| jobs.par_iter().map(Job::run).collect::<Result<Vec<()>>>())?;
    for (from, to) in copies {
        std::fs::copy(&from, &to).with_context(|| format!("{}: cannot write", to.display()))?;
    }
    std::fs::write(root.join(MARKER), marker)
        .with_context(|| format!("{}: cannot write", root.join(MARKER).display()))?;
    Ok(())
}

/// One ffmpeg run.
enum Job {
    Jpegs(PathBuf, u32, u32, Vec<(PathBuf, Scene)>),
    Video(PathBuf, Clip, Container),
}

impl Job {
    fn run(&self) -> Result<()> {
        match self {
            Job::Jpegs(scratch, w, h, list) => encode::jpegs(scratch, *w, *h, list),
            Job::Video(path, clip, container) => encode::video(path, clip, *container),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_dir_follows_cache_conventions() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|p| p.0 == k).map(|p| OsString::from(p.1))
        };
        assert_eq!(
            dir_from(env(&[("EMU_EVAL_CACHE", "/c"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")])),
            Path::new("/c/sample-data-v1")
        );
        assert_eq!(
            dir_from(env(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")])),
            Path::new("/x/emu-eval/sample-data-v1")
        );
        assert_eq!(
            dir_from(env(&[("XDG_CACHE_HOME", ""), ("HOME", "/h")])),
            Path::new("/h/.cache/emu-eval/sample-data-v1")
        );
        assert_eq!(dir_from(env(&[])), std::env::temp_dir().join("emu-eval/sample-data-v1"));
    }

    #[test]
    fn plan_is_deterministic_with_unique_paths_in_task_folders() {
        let (a, b) = (plan(), plan());
        assert_eq!(marker_text(&a), marker_text(&b));
        let mut paths: Vec<&str> = a.files.iter().map(|f| f.path.as_str()).collect();
        paths.sort_unstable();
        let n = paths.len();
        paths.dedup();
        assert_eq!(paths.len(), n, "duplicate paths");
        for p in paths {
            let task = p.split('/').next().unwrap_or("");
            assert!(tasks::registry::get(task).is_some(), "{p} is outside every task folder");
        }
    }
}
