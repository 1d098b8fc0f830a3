//! Faults during and between runs (issue 22): a file system that fills up mid-run, an output
//! folder that turns read-only, a cache file truncated between runs, a medium that changes
//! between runs. On the dataset fixtures with the tiny model.
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::common::{copy_fixture, shared};
use crate::run::{lines, metrics, ok};

const ARGS: [&str; 6] = ["--task", "okvqa", "--shots", "0", "--batch-size", "1"];

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fault-tests").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `run` on `data` into `out` (cache beside it), each written file limited to `fsize` bytes
/// (`RLIMIT_FSIZE`, with `SIGXFSZ` ignored so that a write past it fails with `EFBIG`, as on a
/// full disk) when given.
fn run(data: &Path, out: &Path, fsize: Option<u64>, extra: &[&str]) -> Output {
    let model = shared().join("fixtures/emu-tiny");
    let cache = out.parent().unwrap().join("cache");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_emu-eval"));
    cmd.arg("run").args(["--data-root", p(data), "--model", p(&model), "--output", p(out)]);
    cmd.args(["--cache", p(&cache)]).args(ARGS).args(extra);
    cmd.env("EMU_EVAL_CACHE", &cache).stdin(Stdio::null());
    if let Some(limit) = fsize {
        // SAFETY: setrlimit and signal are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let r = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.output().expect("spawn emu-eval")
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn one_line_error(o: &Output, want: &[&str]) {
    assert!(!o.status.success(), "exit 0");
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err.lines().last().unwrap_or("");
    assert!(last.starts_with("emu-eval: error: "), "{err}");
    for w in want {
        assert!(last.contains(w), "{last:?} lacks {w:?}");
    }
}

/// Every line of `predictions.jsonl` is whole and equals the uninterrupted run's line.
fn whole_lines_prefix_of(dir: &Path, want: &[Value]) -> usize {
    let text = std::fs::read_to_string(dir.join("predictions.jsonl")).unwrap_or_default();
    assert!(text.is_empty() || text.ends_with('\n'), "torn last line: {text:?}");
    let got = if text.is_empty() { vec![] } else { lines(dir) };
    assert!(got.len() < want.len(), "the limit did not interrupt the run");
    assert_eq!(got[..], want[..got.len()], "finished lines changed");
    got.len()
}

/// The final files of `dir` equal those of the uninterrupted run `full`.
fn same_final_files(dir: &Path, full: &Path) {
    assert_eq!(lines(dir), lines(full));
    assert_eq!(metrics(dir), metrics(full));
    let result = |d: &Path| std::fs::read(d.join("okvqa_answer.json")).unwrap();
    assert_eq!(result(dir), result(full));
}

#[test]
fn disk_full_mid_run_keeps_whole_lines_and_resumes_to_identical_files() {
    let root = tmp("disk_full");
    let data = shared().join("fixtures/datasets");
    let full = root.join("full");
    ok(&run(&data, &full, None, &[]));
    let want = lines(&full);
    // Room for run.json (~1.1 KB) and about three prediction lines (~600 B each).
    let cut = root.join("cut");
    let o = run(&data, &cut, Some(2048), &[]);
    one_line_error(&o, &["predictions.jsonl", "cannot append"]);
    let kept = whole_lines_prefix_of(&cut, &want);
    println!("disk full: {kept} of {} lines kept whole", want.len());
    ok(&run(&data, &cut, None, &[]));
    same_final_files(&cut, &full);
}

/// A folder made read-only for this process: `chmod` when not root; as root (which `chmod`
/// does not stop) a read-only bind mount where mounting is allowed. `None` if neither works.
struct ReadOnly(PathBuf, bool);

impl ReadOnly {
    fn make(dir: &Path) -> Option<ReadOnly> {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: a plain query.
        if unsafe { libc::geteuid() } != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).ok()?;
            return Some(ReadOnly(dir.to_owned(), false));
        }
        let mount = |args: &[&str]| {
            Command::new("mount")
                .args(args)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !mount(&["--bind", p(dir), p(dir)]) {
            return None;
        }
        let ro = ReadOnly(dir.to_owned(), true);
        mount(&["-o", "remount,bind,ro", p(dir)]).then_some(ro)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.1 {
            let _ = Command::new("umount").arg(&self.0).status();
        } else {
            let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
        }
    }
}

/// An output folder that turns read-only after a run was interrupted: the rerun stops with one
/// line naming the file and changes nothing; with write access back it completes to the files
/// of an uninterrupted run.
#[test]
fn read_only_output_folder_is_one_line_and_loses_nothing() {
    let root = tmp("read_only");
    let data = shared().join("fixtures/datasets");
    let full = root.join("full");
    ok(&run(&data, &full, None, &[]));
    let want = lines(&full);
    let out = root.join("out");
    let _ = run(&data, &out, Some(2048), &[]); // interrupted after a few lines
    let before = std::fs::read(out.join("predictions.jsonl")).unwrap();
    {
        let Some(_ro) = ReadOnly::make(&out) else {
            println!("skipped: cannot make a folder read-only here (root without mount rights)");
            return;
        };
        let o = run(&data, &out, None, &[]);
        one_line_error(&o, &[p(&out)]);
        assert_eq!(std::fs::read(out.join("predictions.jsonl")).unwrap(), before);
    }
    whole_lines_prefix_of(&out, &want);
    ok(&run(&data, &out, None, &[]));
    same_final_files(&out, &full);
}

/// RICES features and the weights-hash memo truncated between two runs: detected (checksum)
/// and rebuilt, and the second run's files equal the first's.
#[test]
fn truncated_caches_are_rebuilt_not_used() {
    let root = tmp("caches");
    let data = shared().join("fixtures/datasets");
    let out = root.join("out");
    let rices = ["--shots", "2", "--support", "rices"];
    ok(&run(&data, &out, None, &rices)); // shots 0 and 2: one folder each under `out`
    let two = out.join("okvqa-emu-2shot");
    let want = lines(&two);
    let cache = root.join("cache");
    let files: Vec<PathBuf> = walk(&cache);
    let memo = cache.join("weights-sha256.json");
    assert!(memo.is_file(), "{files:?}");
    let features: Vec<&PathBuf> =
        files.iter().filter(|f| f.extension().is_some_and(|e| e == "safetensors")).collect();
    assert!(!features.is_empty(), "no RICES feature file in {files:?}");
    let sizes: Vec<u64> = features.iter().map(|f| std::fs::metadata(f).unwrap().len()).collect();
    for f in features.iter().copied().chain([&memo]) {
        let bytes = std::fs::read(f).unwrap();
        std::fs::write(f, &bytes[..bytes.len() / 2]).unwrap();
    }
    ok(&run(&data, &out, None, &[&rices[..], &["--overwrite"]].concat()));
    assert_eq!(lines(&two), want);
    let now: Vec<u64> = features.iter().map(|f| std::fs::metadata(f).unwrap().len()).collect();
    assert_eq!(now, sizes, "feature files rebuilt whole");
    let memo_text = std::fs::read_to_string(&memo).unwrap();
    assert!(serde_json::from_str::<Value>(&memo_text).is_ok(), "memo rewritten: {memo_text}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// An interrupted okvqa run over a copy of the fixture, then `edit` applied to one of its val
/// images, then the resume: the data fingerprint (run.json's `data`) differs and the rerun refuses
/// to mix the two, one line naming `want`.
fn media_edit_is_refused(name: &str, edit: impl FnOnce(&mut Vec<u8>), want: &str) {
    let root = tmp(name);
    let data = copy_fixture(&root, "okvqa").parent().unwrap().to_owned();
    let out = root.join("out");
    let o = run(&data, &out, Some(2048), &[]); // interrupted: a resume will follow
    assert!(!o.status.success());
    let image = walk(&data.join("okvqa"))
        .into_iter()
        .find(|f| {
            f.to_string_lossy().contains("val2014") && f.extension().is_some_and(|e| e == "jpg")
        })
        .expect("a val image");
    let mut bytes = std::fs::read(&image).unwrap();
    edit(&mut bytes);
    std::fs::write(&image, &bytes).unwrap();
    let o = run(&data, &out, None, &[]);
    one_line_error(&o, &[want]);
}

/// Trailing bytes (the image still decodes, other content): the media size differs.
#[test]
fn media_changed_between_runs_is_reported_by_the_fingerprint() {
    media_edit_is_refused("media_changed", |b| b.extend_from_slice(b"changed"), "media");
}

/// A byte changed in place (same size): the media digest of the fingerprint differs.
#[test]
fn media_edited_at_the_same_size_is_reported_by_the_fingerprint() {
    let flip = |b: &mut Vec<u8>| {
        let mid = b.len() / 2;
        b[mid] ^= 0x5a;
    };
    media_edit_is_refused("media_same_size", flip, "media content");
}

/// The reference FID statistics cached by coco_t2i, truncated or replaced (by other valid
/// statistics) between two runs: they fail their checksum and are rebuilt, so the FID and the
/// file are those of the first run.
#[test]
fn truncated_or_replaced_fid_statistics_are_rebuilt() {
    use tasks::metrics::npz;
    let root = tmp("fid_stats");
    let out = root.join("t2i");
    ok(&crate::t2i::t2i_run(&out, &[]));
    let fid =
        |dir: &Path| crate::run::read_json(&dir.join("metrics.json"))["metric"]["fid"].clone();
    let want = fid(&out);
    assert!(want.as_f64().is_some_and(f64::is_finite), "{want}");
    let m = crate::run::read_json(&out.join("metrics.json"));
    let reference = PathBuf::from(m["fid_statistics"]["reference"].as_str().unwrap());
    assert!(Path::new(&format!("{}.sha256", reference.display())).is_file());
    let original = std::fs::read(&reference).unwrap();
    std::fs::write(&reference, &original[..original.len() / 2]).unwrap();
    ok(&crate::t2i::t2i_run(&out, &["--overwrite"]));
    assert_eq!(fid(&out), want);
    assert_eq!(std::fs::read(&reference).unwrap(), original, "truncated file rebuilt");
    let (mu, sigma, _) = npz::read_stats(&reference).unwrap();
    let shifted: Vec<f64> = mu.iter().map(|x| x + 1.0).collect();
    npz::write_stats(&reference, &shifted, &sigma).unwrap();
    ok(&crate::t2i::t2i_run(&out, &["--overwrite"]));
    assert_eq!(fid(&out), want);
    assert_eq!(std::fs::read(&reference).unwrap(), original, "replaced file rebuilt");
}

/// A first write that fails (here: every file limited to 0 bytes, as on a full disk) is one line
/// naming the output folder, and leaves no write probe behind.
#[test]
fn unwritable_first_write_leaves_no_probe() {
    let root = tmp("no_probe");
    let out = root.join("out");
    let o = run(&shared().join("fixtures/datasets"), &out, Some(0), &[]);
    one_line_error(&o, &["out", "cannot be written"]);
    for dir in [&root, &out] {
        let left: Vec<_> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".emu-eval-write-probe"))
            .collect();
        assert!(left.is_empty(), "{}: {left:?} left behind", dir.display());
    }
}
