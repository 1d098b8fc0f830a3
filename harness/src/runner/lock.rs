//! One writer per folder: an advisory `flock` on a lock file that also records its holder (host,
//! pid, start time). The kernel drops the lock when its holder dies, so a killed writer's lock is
//! taken over (with a note) and never blocks a requeued job. Shared caches use the blocking form:
//! one process computes, the others wait, then reuse what it wrote.
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The lock file of a run folder.
pub const RUN_LOCK: &str = ".emu-eval.lock";

/// Who holds a lock, as written in the lock file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    /// Unix seconds.
    pub started: u64,
    pub command: String,
}

impl Holder {
    fn me() -> Holder {
        Holder {
            host: hostname(),
            pid: std::process::id(),
            started: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            command: std::env::args().nth(1).unwrap_or_default(),
        }
    }

    fn describe(&self) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        format!(
            "pid {} on {} (`{}`, started {} s ago)",
            self.pid,
            self.host,
            self.command,
            now.saturating_sub(self.started)
        )
    }
}

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // An empty file means "not held": the next writer does not report a stale holder.
        let _ = self.file.set_len(0);
    }
}

impl Lock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("{}: cannot open the lock file", path.display()))
}

fn flock(file: &File, blocking: bool) -> std::io::Result<bool> {
    let op = libc::LOCK_EX | if blocking { 0 } else { libc::LOCK_NB };
    loop {
        // SAFETY: a valid open file descriptor and a plain flag argument.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.kind() {
            std::io::ErrorKind::Interrupted if blocking => continue,
            std::io::ErrorKind::WouldBlock => return Ok(false),
            _ => return Err(err),
        }
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut s).ok()?;
    serde_json::from_str(&s).ok()
}

fn claim(mut file: File, path: &Path) -> Result<Lock> {
    let text = serde_json::to_string(&Holder::me())?;
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
        .and_then(|()| file.write_all(text.as_bytes()))
        .with_context(|| format!("{}: cannot write the lock file", path.display()))?;
    Ok(Lock { file, path: path.to_owned() })
}

/// Takes the lock of folder `dir` (created if needed) or fails at once naming its holder.
pub fn acquire_folder(dir: &Path) -> Result<Lock> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let path = dir.join(RUN_LOCK);
    let mut file = open(&path)?;
    if !flock(&file, false).with_context(|| format!("{}: cannot lock", path.display()))? {
        let who = read_holder(&mut file).map_or("another process".into(), |h| h.describe());
        bail!(
            "{}: in use by {who}; one writer per folder (lock {})",
            dir.display(),
            path.display()
        );
    }
    if let Some(old) = read_holder(&mut file) {
        crate::log::note(format!(
            "{}: took over the stale lock of {} (no longer running)",
            dir.display(),
            old.describe()
        ));
    }
    claim(file, &path)
}

/// Waits for the lock file `path` (a shared cache entry): the first process computes while the
/// others wait here, then find its result.
pub fn wait_for(path: &Path) -> Result<Lock> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
    }
    let mut file = open(path)?;
    if !flock(&file, false).with_context(|| format!("{}: cannot lock", path.display()))? {
        let who = read_holder(&mut file).map_or("another process".into(), |h| h.describe());
        crate::log::note(format!("{}: waiting for {who}", path.display()));
        flock(&file, true).with_context(|| format!("{}: cannot lock", path.display()))?;
    }
    claim(file, path)
}

/// The holder of folder `dir`'s lock while it is held (None: free, or no lock file).
pub fn holder(dir: &Path) -> Option<String> {
    let path = dir.join(RUN_LOCK);
    let mut file = OpenOptions::new().read(true).write(true).open(&path).ok()?;
    match flock(&file, false) {
        Ok(false) => {
            Some(read_holder(&mut file).map_or("another process".into(), |h| h.describe()))
        }
        // Taken just to look: released when `file` closes here.
        _ => None,
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_a_released_lock_is_free() {
        let dir = std::env::temp_dir().join(format!("emu-eval-lock-{}", std::process::id()));
        let first = acquire_folder(&dir).unwrap();
        // flock locks belong to the open file description: a second open in the same process
        // conflicts as another process would.
        let e = acquire_folder(&dir).unwrap_err().to_string();
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        assert!(e.contains("one writer per folder"), "{e}");
        drop(first);
        assert_eq!(std::fs::read_to_string(dir.join(RUN_LOCK)).unwrap(), "");
        let again = acquire_folder(&dir).unwrap();
        assert!(std::fs::read_to_string(again.path()).unwrap().contains("\"pid\""));
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_shared_cache_entry_is_computed_once_while_the_others_wait() {
        let dir = std::env::temp_dir().join(format!("emu-eval-cache-lock-{}", std::process::id()));
        let entry = dir.join("features.bin");
        let lock = dir.join("features.lock");
        let computed = std::sync::atomic::AtomicUsize::new(0);
        // Each thread opens the lock file itself, as another process would.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let _held = wait_for(&lock).unwrap();
                    if !entry.is_file() {
                        computed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        std::fs::write(&entry, b"features").unwrap();
                    }
                });
            }
        });
        assert_eq!(computed.load(std::sync::atomic::Ordering::SeqCst), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
