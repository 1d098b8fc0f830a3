//! `emu-eval data check`: load a split and the RICES pool, decode every evaluation image/video,
//! check that pool media exist, and collect every problem (never stop at the first media error).
use std::path::Path;

use rayon::prelude::*;

use super::Media;
use crate::input::InputError;
use crate::media::{image, video, MediaError};
use crate::registry::Task;

/// What `data check` found.
#[derive(Debug, Clone)]
pub struct Report {
    pub task: &'static str,
    pub split: String,
    /// Evaluation samples (questions, captions, images or dialog rounds as the task evaluates them).
    pub samples: usize,
    /// Distinct images/videos of the evaluation samples.
    pub media: usize,
    /// Training samples available for retrieval.
    pub pool: usize,
    pub problems: Vec<InputError>,
}

fn media_problem(e: MediaError) -> InputError {
    InputError::file(e.path(), e.reason())
}

/// Decodes one image or video fully; for videos, fewer decodable frames than the container states
/// is a problem (damaged file).
pub fn check_media(m: &Media) -> Option<InputError> {
    match m {
        Media::Image { path, .. } => image::decode_file(path).err().map(media_problem),
        Media::Video { path, .. } => match video::probe(path) {
            Err(e) => Some(media_problem(e)),
            Ok(info) => match info.container_frames {
                Some(n) if (info.decoded_frames as u64) < n => Some(InputError::file(
                    path,
                    format!(
                        "only {} of the {n} frames the container states decode (damaged file?)",
                        info.decoded_frames
                    ),
                )),
                _ => None,
            },
        },
    }
}

/// Checks `split` (default: the task's evaluation split) of the task folder `dir`.
pub fn check(task: &'static Task, dir: &Path, split: Option<&str>) -> Report {
    let split = split.unwrap_or(task.eval_split).to_owned();
    let mut problems = Vec::new();
    if !dir.is_dir() {
        problems.push(InputError::file(dir, "task folder not found"));
        return Report { task: task.id, split, samples: 0, media: 0, pool: 0, problems };
    }
    let (samples, media) = match task.load(dir, &split) {
        Ok(s) => {
            problems.extend(super::validate::validate(dir, &split, &s.samples));
            let media: Vec<Media> = s.media().into_iter().cloned().collect();
            let mut errs: Vec<InputError> = media.par_iter().filter_map(check_media).collect();
            problems.append(&mut errs);
            (s.samples.len(), media.len())
        }
        Err(e) => {
            problems.push(e);
            (0, 0)
        }
    };
    let pool = match task.load_pool(dir) {
        Ok(p) => {
            let mut seen = std::collections::HashSet::new();
            for s in &p {
                let path = s.media.path();
                if seen.insert(path.to_owned()) && !path.is_file() {
                    problems.push(InputError::file(path, "not found (training pool)"));
                }
            }
            p.len()
        }
        Err(e) => {
            problems.push(e);
            0
        }
    };
    let mut seen = std::collections::HashSet::new();
    problems.retain(|p| seen.insert(p.to_string()));
    Report { task: task.id, split, samples, media, pool, problems }
}
