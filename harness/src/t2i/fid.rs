//! FID statistics of image files with pytorch-fid's Inception (pool3, 2048-d): decode, the
//! network's own preprocessing, batched forward passes, float64 mean and covariance.
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use models::inception::{self, FidInception};
use rayon::prelude::*;
use tasks::metrics::{fid, npz};

/// pytorch-fid's `IMAGE_EXTENSIONS`.
const EXTENSIONS: &[&str] = &["bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp"];

/// Image files directly in `dir` with pytorch-fid's extensions, sorted by name.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read directory", dir.display()))?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Loads the Inception weights: `--inception`, else `$EMU_EVAL_INCEPTION`.
pub fn load_inception(path: Option<&Path>, device: &Device) -> Result<FidInception> {
    let path = match path {
        Some(p) => p.to_owned(),
        None => match std::env::var_os("EMU_EVAL_INCEPTION") {
            Some(p) => PathBuf::from(p),
            None => bail!("--inception: not given and EMU_EVAL_INCEPTION is not set (pytorch-fid's pt_inception-2015-12-05-6726825d.pth or a safetensors copy)"),
        },
    };
    if path.extension().is_some_and(|e| e != "safetensors") {
        // The bounded reader vets the pickle program and every storage before candle reads it.
        models::pickle::PthFile::open(&path, models::pickle::Limits::DEFAULT)?;
    }
    Ok(FidInception::load(&path, device)?)
}

/// Progress on stderr: a rewritten line on a terminal, otherwise a line every ~10%.
pub struct Progress {
    label: &'static str,
    total: usize,
    start: Instant,
    tty: bool,
    last_decile: usize,
}

impl Progress {
    pub fn new(label: &'static str, total: usize) -> Self {
        Self {
            label,
            total,
            start: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            last_decile: 0,
        }
    }

    pub fn update(&mut self, done: usize) {
        if !crate::log::notes_shown() {
            return;
        }
        let secs = self.start.elapsed().as_secs_f64();
        let rate = done as f64 / secs.max(1e-9);
        let line = format!("{}: {done}/{} ({rate:.2}/s, {secs:.0} s)", self.label, self.total);
        if self.tty {
            eprint!("\r{line}");
            if done == self.total {
                eprintln!();
            }
        } else {
            let decile = done * 10 / self.total.max(1);
            if decile > self.last_decile || done == self.total {
                self.last_decile = decile;
                eprintln!("{line}");
            }
        }
    }
}

/// pool3 features (n x 2048, row-major, f64) of image files, `batch` images per forward pass.
pub fn features(
    net: &FidInception,
    paths: &[PathBuf],
    batch: usize,
    device: &Device,
    show_progress: bool,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(paths.len() * 2048);
    let mut progress = show_progress.then(|| Progress::new("fid-stats", paths.len()));
    for chunk in paths.chunks(batch.max(1)) {
        let inputs = chunk
            .par_iter()
            .map(|p| {
                let img = tasks::media::image::decode_file(p)?;
                Ok(inception::preprocess(&img.data, img.width, img.height))
            })
            .collect::<Result<Vec<_>, tasks::media::MediaError>>()?;
        let x = inception::batch_tensor(&inputs, device)?;
        let f = net.pool3(&x)?.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        out.extend(f);
        if let Some(p) = progress.as_mut() {
            p.update(out.len() / 2048);
        }
    }
    Ok(out)
}

/// `(mu, sigma)` of image files (pytorch-fid `calculate_activation_statistics`).
pub fn image_stats(
    net: &FidInception,
    paths: &[PathBuf],
    batch: usize,
    device: &Device,
    show_progress: bool,
) -> Result<(Vec<f64>, Vec<f64>)> {
    if paths.len() < 2 {
        bail!("{} image(s); the covariance needs at least 2", paths.len());
    }
    let feats = features(net, paths, batch, device, show_progress)?;
    Ok(fid::stats(paths.len(), 2048, &feats))
}

/// Statistics of `paths` cached in `cache` (`.npz`): read when present, else computed and
/// written (under a temporary name, then renamed, so that an interrupted write is never read).
///
/// A file this function wrote has the sha256 of its bytes beside it (`.npz.sha256`): when the
/// two disagree (the file was truncated or replaced) it is rebuilt, never used. A file without
/// one is a user's (`--reference-stats` from pytorch-fid): read as given.
pub fn cached_stats(
    net: &FidInception,
    paths: &[PathBuf],
    cache: &Path,
    batch: usize,
    device: &Device,
) -> Result<(Vec<f64>, Vec<f64>)> {
    if let Some(stats) = read_verified(cache, true)? {
        return Ok(stats);
    }
    // Runs sharing the cache (array tasks) compute it once: the others wait, then read it.
    let _lock = crate::runner::lock::wait_for(&cache.with_extension("npz.lock"))?;
    if let Some(stats) = read_verified(cache, false)? {
        return Ok(stats);
    }
    let (mu, sigma) = image_stats(net, paths, batch, device, true)?;
    write_stats(cache, &mu, &sigma, true)?;
    Ok((mu, sigma))
}

/// The statistics in `cache` when they can be used: present, and equal to their checksum when
/// one was written beside them (None: absent, or truncated/replaced, with a warning when `warn`).
fn read_verified(cache: &Path, warn: bool) -> Result<Option<(Vec<f64>, Vec<f64>)>> {
    if !cache.is_file() {
        return Ok(None);
    }
    let sidecar = checksum_path(cache);
    if !sidecar.exists() {
        let (mu, sigma, _) = npz::read_stats(cache)?;
        return Ok(Some((mu, sigma)));
    }
    let recorded = std::fs::read_to_string(&sidecar).unwrap_or_default();
    if recorded.trim() == crate::cache::hash_file(cache)? {
        if let Ok((mu, sigma, _)) = npz::read_stats(cache) {
            return Ok(Some((mu, sigma)));
        }
    }
    if warn {
        crate::log::warn(format!(
            "{}: does not match its checksum (truncated or replaced); rebuilding it",
            cache.display()
        ));
    }
    Ok(None)
}

/// `PATH.sha256` beside a statistics file.
fn checksum_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// [`npz::write_stats`] to a temporary name beside `path`, then a rename.
pub fn write_stats_atomic(path: &Path, mu: &[f64], sigma: &[f64]) -> Result<()> {
    write_stats(path, mu, sigma, false)
}

/// [`write_stats_atomic`], with the checksum file of [`cached_stats`] when `checksum`.
fn write_stats(path: &Path, mu: &[f64], sigma: &[f64], checksum: bool) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    let tmp = path.with_extension("npz.partial");
    npz::write_stats(&tmp, mu, sigma)?;
    if checksum {
        // Written first: a crash before the rename leaves an old file that fails it.
        let sum = checksum_path(path);
        std::fs::write(&sum, format!("{}\n", crate::cache::hash_file(&tmp)?))
            .with_context(|| format!("{}: cannot write", sum.display()))?;
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("{}: cannot rename into place", path.display()))
}
