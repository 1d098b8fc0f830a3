//! Hugging Face hub ids for `--model`, `--model-i`, `--decoder` and `--inception`:
//! `ORG/NAME[/SUBFOLDER][@REVISION]` where no such local path exists. The snapshot is taken from
//! the local Hugging Face cache (`HF_HUB_CACHE`, else `$HF_HOME/hub`, else
//! `~/.cache/huggingface/hub`: `models--ORG--NAME/{refs/REV, snapshots/COMMIT/…}`) when it holds
//! every file needed, else downloaded into that cache with `hf-hub` (unless `HF_HUB_OFFLINE=1`).
//! An official `.pt` checkpoint is converted once into safetensors beside the snapshots
//! (`models--ORG--NAME/emu-eval-converted/<sha256 of the .pt>.safetensors`), so later runs
//! memory-map it.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// What a flag needs from a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// An Emu model folder: `config.json`, `tokenizer.json` and one checkpoint.
    Model,
    /// A visual decoder folder: `unet/`, `vae/`, `scheduler/` and their weights.
    Decoder,
    /// One weights file (the FID Inception network).
    WeightsFile,
}

/// `ORG/NAME[/SUBFOLDER][@REVISION]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubId {
    pub repo: String,
    pub subfolder: Option<String>,
    pub revision: String,
}

impl HubId {
    /// A hub id, or None for anything that reads as a local path (`./x`, `/x`, `~`, a path that
    /// exists, or a name without an organisation).
    pub fn parse(arg: &str) -> Option<HubId> {
        if arg.starts_with(['.', '/', '~']) || Path::new(arg).exists() {
            return None;
        }
        let (path, revision) = match arg.split_once('@') {
            Some((p, r)) if !r.is_empty() => (p, r.to_owned()),
            Some(_) => return None,
            None => (arg, "main".to_owned()),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let ok = |s: &str| {
            !s.is_empty()
                && s != ".."
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if parts.len() < 2 || !parts.iter().all(|p| ok(p)) || revision.contains("..") {
            return None;
        }
        let subfolder = (parts.len() > 2).then(|| parts[2..].join("/"));
        Some(HubId { repo: format!("{}/{}", parts[0], parts[1]), subfolder, revision })
    }

    fn folder(&self) -> String {
        format!("models--{}", self.repo.replace('/', "--"))
    }
}

impl std::fmt::Display for HubId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repo)?;
        if let Some(s) = &self.subfolder {
            write!(f, "/{s}")?;
        }
        write!(f, "@{}", self.revision)
    }
}

/// The hub cache folder (`HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`).
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("HF_HOME") {
        return PathBuf::from(p).join("hub");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
    home.join(".cache/huggingface/hub")
}

/// `HF_HUB_OFFLINE` set to a true value.
fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// The local path of a flag's value: the value itself when it is a local path, else the hub
/// snapshot folder (`Model`, `Decoder`) or the weights file (`WeightsFile`) it names.
pub fn local(arg: &Path, want: Want) -> Result<PathBuf> {
    let Some(id) = arg.to_str().and_then(HubId::parse) else { return Ok(arg.to_owned()) };
    let cache = cache_dir();
    let dir = match cached(&cache, &id, want) {
        Some(dir) => dir,
        None if offline() => bail!(
            "{id}: not a local path, and the Hugging Face cache {} has no complete snapshot of it (HF_HUB_OFFLINE is set: nothing is downloaded)",
            cache.display()
        ),
        None => download(&cache, &id, want)?,
    };
    crate::log::note(format!("{id}: {}", dir.display()));
    match want {
        Want::WeightsFile => weights_in(&dir, &id),
        _ => Ok(dir),
    }
}

/// `local` for an optional flag.
pub fn local_opt(arg: Option<&Path>, want: Want) -> Result<Option<PathBuf>> {
    arg.map(|a| local(a, want)).transpose()
}

/// The snapshot folder (with the subfolder) in the cache, when it holds what `want` needs.
fn cached(cache: &Path, id: &HubId, want: Want) -> Option<PathBuf> {
    let base = cache.join(id.folder());
    let is_commit = id.revision.len() == 40 && id.revision.chars().all(|c| c.is_ascii_hexdigit());
    let commit = if is_commit && base.join("snapshots").join(&id.revision).is_dir() {
        id.revision.clone()
    } else {
        std::fs::read_to_string(base.join("refs").join(&id.revision)).ok()?.trim().to_owned()
    };
    let mut dir = base.join("snapshots").join(commit);
    if let Some(s) = &id.subfolder {
        dir = dir.join(s);
    }
    complete(&dir, want).then_some(dir)
}

/// Whether `dir` holds the files `want` needs.
fn complete(dir: &Path, want: Want) -> bool {
    match want {
        Want::Model => {
            dir.join("config.json").is_file()
                && dir.join("tokenizer.json").is_file()
                && models::emu::load::find_weights(dir).is_ok()
        }
        Want::Decoder => ["unet/config.json", "vae/config.json", "scheduler/scheduler_config.json"]
            .iter()
            .all(|f| dir.join(f).is_file()),
        Want::WeightsFile => dir.is_file() || weight_files(dir).len() == 1,
    }
}

const WEIGHT_EXTENSIONS: [&str; 4] = ["safetensors", "pt", "pth", "bin"];

fn is_weights(name: &str) -> bool {
    WEIGHT_EXTENSIONS.iter().any(|e| name.ends_with(&format!(".{e}")))
}

fn weight_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(is_weights))
        .collect();
    v.sort();
    v
}

fn weights_in(dir: &Path, id: &HubId) -> Result<PathBuf> {
    if dir.is_file() {
        return Ok(dir.to_owned());
    }
    match weight_files(dir).as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("{id}: {} holds no weights file", dir.display()),
        many => bail!(
            "{id}: {} holds {} weights files; name one as ORG/NAME/FILE",
            dir.display(),
            many.len()
        ),
    }
}

/// The repository files `want` needs, from the repository's file list (`sub`: the subfolder).
fn needed(files: &[String], sub: &str, want: Want) -> Vec<String> {
    let inside = |f: &&String| sub.is_empty() || f.starts_with(&format!("{sub}/"));
    let rel = |f: &String| f[if sub.is_empty() { 0 } else { sub.len() + 1 }..].to_owned();
    let here: Vec<String> = files.iter().filter(inside).map(rel).collect();
    let top_weights: Vec<&String> =
        here.iter().filter(|f| !f.contains('/') && is_weights(f)).collect();
    let pick: Vec<String> = match want {
        Want::Model => {
            // find_weights' rule: model.safetensors, else safetensors, else one pickle.
            let st: Vec<&&String> =
                top_weights.iter().filter(|f| f.ends_with(".safetensors")).collect();
            let w: Vec<String> = if here.iter().any(|f| f == "model.safetensors") {
                vec!["model.safetensors".into()]
            } else if !st.is_empty() {
                st.iter().map(|f| (**f).clone()).collect()
            } else {
                top_weights.iter().map(|f| (*f).clone()).collect()
            };
            let mut v = vec!["config.json".to_owned(), "tokenizer.json".to_owned()];
            v.extend(here.iter().filter(|f| *f == "tokenizer_config.json").cloned());
            v.extend(w);
            v
        }
        Want::Decoder => here
            .iter()
            .filter(|f| {
                ["unet/", "vae/", "scheduler/"].iter().any(|d| f.starts_with(d))
                    || (!f.contains('/') && (is_weights(f) || f.ends_with(".json")))
            })
            .cloned()
            .collect(),
        Want::WeightsFile => top_weights.iter().map(|f| (*f).clone()).collect(),
    };
    pick.into_iter().map(|f| if sub.is_empty() { f } else { format!("{sub}/{f}") }).collect()
}

/// Downloads what `want` needs into the cache with hf-hub; returns the snapshot folder.
fn download(cache: &Path, id: &HubId, want: Want) -> Result<PathBuf> {
    use hf_hub::api::sync::ApiBuilder;
    let mut builder = ApiBuilder::from_cache(hf_hub::Cache::new(cache.to_owned()))
        .with_progress(crate::log::notes_shown());
    if let Ok(endpoint) = std::env::var("HF_ENDPOINT") {
        builder = builder.with_endpoint(endpoint);
    }
    let api = builder.build().with_context(|| format!("{id}: cannot start the hub client"))?;
    let repo = api.repo(hf_hub::Repo::with_revision(
        id.repo.clone(),
        hf_hub::RepoType::Model,
        id.revision.clone(),
    ));
    let info = repo.info().with_context(|| {
        format!(
            "{id}: not a local path, not in the Hugging Face cache {}, and the hub did not answer (set HF_HUB_OFFLINE=1 to use the cache only)",
            cache.display()
        )
    })?;
    let files: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
    let sub = id.subfolder.clone().unwrap_or_default();
    let want_files = needed(&files, &sub, want);
    if want_files.is_empty() {
        bail!("{id}: the repository has none of the files needed");
    }
    // hf-hub records the branch → commit reference (`refs/REV`) with each download.
    for f in &want_files {
        repo.get(f).with_context(|| format!("{id}: downloading {f}"))?;
    }
    let pinned = HubId { revision: info.sha, ..id.clone() };
    cached(cache, &pinned, want)
        .with_context(|| format!("{id}: downloaded, but the snapshot is incomplete"))
}

/// A `.safetensors` to load for `weights`: the file itself, or for a PyTorch pickle in a hub
/// snapshot its one-time conversion (keyed by the pickle's sha256; the blob name when the
/// snapshot links to a content-addressed blob).
pub fn safetensors_for(weights: &Path) -> Result<PathBuf> {
    if weights.extension().is_some_and(|e| e == "safetensors") {
        return Ok(weights.to_owned());
    }
    let real = std::fs::canonicalize(weights)
        .with_context(|| format!("{}: cannot open", weights.display()))?;
    let blob_name = real
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| n.len() == 64 && n.chars().all(|c| c.is_ascii_hexdigit()))
        .filter(|_| real.parent().and_then(Path::file_name).is_some_and(|p| p == "blobs"));
    let key = match blob_name {
        Some(n) => n.to_owned(),
        None => crate::cache::weights_hash(weights)?.trim_start_matches("sha256:").to_owned(),
    };
    let repo_base =
        repo_base(weights).unwrap_or_else(|| weights.parent().unwrap_or(Path::new(".")).to_owned());
    let out = repo_base.join("emu-eval-converted").join(format!("{key}.safetensors"));
    if out.is_file() {
        return Ok(out);
    }
    let _lock = crate::runner::lock::wait_for(&out.with_extension("lock"))?;
    if out.is_file() {
        return Ok(out); // converted by the process we waited for
    }
    crate::log::note(format!(
        "{}: converting to safetensors once ({}); later runs memory-map it",
        weights.display(),
        out.display()
    ));
    let tmp = out.with_extension(format!("tmp-{}", std::process::id()));
    crate::convert::convert(weights, &tmp, None)?;
    std::fs::rename(&tmp, &out).with_context(|| format!("{}: cannot write", out.display()))?;
    Ok(out)
}

/// Whether `path` lies in a hub cache snapshot (`…/models--ORG--NAME/snapshots/…`).
pub fn in_cache(path: &Path) -> bool {
    repo_base(path).is_some_and(|b| path.starts_with(b.join("snapshots")))
}

/// `…/models--ORG--NAME` above a snapshot file.
fn repo_base(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .find(|a| a.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("models--")))
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_parse_and_local_paths_do_not() {
        let id = HubId::parse("BAAI/Emu").unwrap();
        assert_eq!(
            (id.repo.as_str(), id.subfolder, id.revision.as_str()),
            ("BAAI/Emu", None, "main")
        );
        let id = HubId::parse("BAAI/Emu/pretrain@v1.0").unwrap();
        assert_eq!(id.subfolder.as_deref(), Some("pretrain"));
        assert_eq!(id.revision, "v1.0");
        assert_eq!(id.to_string(), "BAAI/Emu/pretrain@v1.0");
        for local in
            ["./BAAI/Emu", "/models/emu", "~/emu", "emu", "BAAI/../x", "BAAI/Emu@", "a b/c"]
        {
            assert_eq!(HubId::parse(local), None, "{local}");
        }
    }

    #[test]
    fn needed_files_follow_the_loaders() {
        let files: Vec<String> = [
            "Emu-pretrain.pt",
            "config.json",
            "tokenizer.json",
            "README.md",
            "pretrain/unet/config.json",
            "pretrain/unet/diffusion_pytorch_model.bin",
            "pretrain/vae/config.json",
            "pretrain/scheduler/scheduler_config.json",
            "pretrain/text_encoder/pytorch_model.bin",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            needed(&files, "", Want::Model),
            ["config.json", "tokenizer.json", "Emu-pretrain.pt"]
        );
        let dec = needed(&files, "pretrain", Want::Decoder);
        assert!(dec.contains(&"pretrain/unet/diffusion_pytorch_model.bin".to_owned()));
        assert!(!dec.iter().any(|f| f.contains("text_encoder")), "{dec:?}");
        let mut st = files.clone();
        st.push("model.safetensors".into());
        assert_eq!(needed(&st, "", Want::Model)[2], "model.safetensors");
    }
}
