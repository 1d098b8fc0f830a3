//! The user cache folder and what lives directly in it: the weights-hash memo.
//!
//! Folder: `$EMU_EVAL_CACHE`, else `$XDG_CACHE_HOME/emu-eval` (not on macOS), else
//! `~/Library/Caches/emu-eval` (macOS) or `~/.cache/emu-eval`; `None` when no variable is set.
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The cache folder of this environment (see the module docs).
pub fn base_dir() -> Option<PathBuf> {
    base_from(|k| std::env::var_os(k))
}

/// [`base_dir`] with the environment as a function (empty values count as unset).
pub(crate) fn base_from(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let var = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = var("EMU_EVAL_CACHE") {
        return Some(d);
    }
    match (var("XDG_CACHE_HOME"), var("HOME")) {
        (Some(x), _) if !cfg!(target_os = "macos") => Some(x.join("emu-eval")),
        (_, Some(h)) if cfg!(target_os = "macos") => Some(h.join("Library/Caches/emu-eval")),
        (_, Some(h)) => Some(h.join(".cache/emu-eval")),
        _ => None,
    }
}

/// Sub-folder of the RICES feature cache.
pub const RICES: &str = "rices";
/// Sub-folder of the reference FID statistics.
pub const FID: &str = "fid";

/// The cache sub-folder `name` ([`RICES`], [`FID`]): in `--cache` (`arg`) when given, else in the
/// user cache folder ([`base_dir`]).
pub fn dir(arg: Option<&Path>, name: &str) -> Result<PathBuf> {
    let base = match arg {
        Some(d) => d.to_path_buf(),
        None => base_dir()
            .context("--cache: not given, and neither $EMU_EVAL_CACHE nor $HOME is set")?,
    };
    Ok(base.join(name))
}

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// File of the weights-hash memo inside the cache folder.
const HASHES: &str = "weights-sha256.json";

/// What identifies a file's content without reading it: path, size, modification time, inode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: u64,
    inode: u64,
    sha256: String,
}

/// `sha256:<hex>` of a weights file. A multi-GB checkpoint takes minutes to hash, so the result is
/// memoised in the cache folder under the file's canonical path, keyed by size, modification time
/// and inode: any rewrite of the file hashes it again. Without a cache folder it always hashes.
pub fn weights_hash(path: &Path) -> Result<String> {
    let memo = base_dir().map(|d| d.join(HASHES));
    weights_hash_with(path, memo.as_deref())
}

/// [`weights_hash`] with an explicit memo file (`None`: no memo).
pub fn weights_hash_with(path: &Path, memo: Option<&Path>) -> Result<String> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let key =
        std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string();
    let (size, mtime_ns, inode) = (meta.len(), mtime_ns(&meta), inode(&meta));
    let mut table: BTreeMap<String, Stamp> = memo.and_then(read_memo).unwrap_or_default();
    if let Some(s) = table.get(&key) {
        if (s.size, s.mtime_ns, s.inode) == (size, mtime_ns, inode) {
            return Ok(s.sha256.clone());
        }
    }
    let sha256 = hash_file(path)?;
    if let Some(m) = memo {
        table.insert(key, Stamp { size, mtime_ns, inode, sha256: sha256.clone() });
        write_memo(m, &table); // a memo that cannot be written only costs time later
    }
    Ok(sha256)
}

/// Streams a file through SHA-256: `sha256:<hex>`.
pub fn hash_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).with_context(|| format!("{}: cannot read", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex(&h.finalize())))
}

fn mtime_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

/// The memo file: the table and the sha256 of its JSON, so that a truncated or edited memo is
/// detected and never used.
#[derive(Serialize, Deserialize)]
struct Memo {
    checksum: String,
    entries: BTreeMap<String, Stamp>,
}

fn table_checksum(table: &BTreeMap<String, Stamp>) -> String {
    use sha2::{Digest, Sha256};
    let text = serde_json::to_vec(table).unwrap_or_default();
    format!("sha256:{}", hex(&Sha256::digest(&text)))
}

/// The memo table; a missing, unreadable or corrupt memo (checksum mismatch) is an empty one,
/// so every weights file is hashed again.
fn read_memo(path: &Path) -> Option<BTreeMap<String, Stamp>> {
    let memo: Memo = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    (memo.checksum == table_checksum(&memo.entries)).then_some(memo.entries)
}

/// Writes the memo atomically (temporary file + rename), ignoring failures.
fn write_memo(path: &Path, table: &BTreeMap<String, Stamp>) {
    let memo = Memo { checksum: table_checksum(table), entries: table.clone() };
    let Ok(text) = serde_json::to_vec_pretty(&memo) else { return };
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    let ok = path.parent().is_some_and(|d| std::fs::create_dir_all(d).is_ok())
        && std::fs::write(&tmp, text).is_ok();
    if !ok || std::fs::rename(&tmp, path).is_err() {
        std::fs::remove_file(&tmp).ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |k| pairs.iter().find(|p| p.0 == k).map(|p| OsString::from(p.1))
    }

    #[test]
    fn base_dir_follows_cache_conventions() {
        assert_eq!(
            base_from(env(&[("EMU_EVAL_CACHE", "/c"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")])),
            Some("/c".into())
        );
        if !cfg!(target_os = "macos") {
            assert_eq!(
                base_from(env(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")])),
                Some("/x/emu-eval".into())
            );
            assert_eq!(
                base_from(env(&[("XDG_CACHE_HOME", ""), ("HOME", "/h")])),
                Some("/h/.cache/emu-eval".into())
            );
        }
        assert_eq!(base_from(env(&[])), None);
    }

    #[test]
    fn hash_is_memoised_and_redone_when_the_file_changes() {
        let dir = std::env::temp_dir().join(format!("emu-eval-hash-memo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (file, memo) = (dir.join("w.safetensors"), dir.join("memo.json"));
        std::fs::write(&file, b"abc").unwrap();
        let abc = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(weights_hash_with(&file, Some(&memo)).unwrap(), abc);
        assert!(std::fs::read_to_string(&memo).unwrap().contains(abc));
        // An entry edited in the text, or a truncated memo, fails the checksum: hashed again.
        let text = std::fs::read_to_string(&memo).unwrap();
        std::fs::write(&memo, text.replace(abc, "sha256:memo")).unwrap();
        assert_eq!(weights_hash_with(&file, Some(&memo)).unwrap(), abc);
        std::fs::write(&memo, &text.as_bytes()[..text.len() / 2]).unwrap();
        assert_eq!(weights_hash_with(&file, Some(&memo)).unwrap(), abc);
        // A memo entry whose stamp matches is trusted (proves the file is not read again) …
        let mut table = read_memo(&memo).unwrap();
        table.values_mut().for_each(|s| s.sha256 = "sha256:memo".into());
        write_memo(&memo, &table);
        assert_eq!(weights_hash_with(&file, Some(&memo)).unwrap(), "sha256:memo");
        // … and a rewritten file (other size) is hashed again.
        std::fs::write(&file, b"abcd").unwrap();
        let abcd = weights_hash_with(&file, Some(&memo)).unwrap();
        assert_eq!(abcd, "sha256:88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589");
        assert_eq!(weights_hash_with(&file, None).unwrap(), abcd);
        std::fs::write(&memo, b"{not json").unwrap();
        assert_eq!(
            weights_hash_with(&file, Some(&memo)).unwrap(),
            abcd,
            "a corrupt memo is ignored"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
