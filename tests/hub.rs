//! `--model ORG/NAME[@REV]` from a Hugging Face cache layout the test builds (blobs, snapshots
//! linking to them, refs/main), offline: the official `.pt` is converted once into safetensors
//! keyed by its sha256 and reused by the next run; predictions equal the `.pt` loaded directly.
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

use crate::common::shared;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hub-tests").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `hub/models--test-org--emu-tiny/` with the fixture's config, tokenizer and `.pt` as blobs.
fn hub_cache(hf_home: &Path) -> PathBuf {
    let repo = hf_home.join("hub/models--test-org--emu-tiny");
    let snap = repo.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    for f in ["config.json", "tokenizer.json", "model.pt"] {
        let src = shared().join("fixtures/emu-tiny").join(f);
        let blob = repo.join("blobs").join(sha256_hex(&src));
        std::fs::copy(&src, &blob).unwrap();
        symlink(Path::new("../../blobs").join(blob.file_name().unwrap()), snap.join(f)).unwrap();
    }
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    repo
}

fn run(root: &Path, model: &str, out: &str) -> Output {
    let data = shared().join("fixtures/datasets");
    Command::new(env!("CARGO_BIN_EXE_emu-eval"))
        .args(["run", "--task", "okvqa", "--limit", "2", "--batch-size", "1", "--model", model])
        .arg("--data-root")
        .arg(&data)
        .arg("--output")
        .arg(root.join(out))
        .env("HF_HOME", root.join("hf"))
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("HF_HUB_CACHE")
        .env("EMU_EVAL_CACHE", root.join("cache"))
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn hub_id_resolves_offline_and_converts_the_checkpoint_once() {
    let root = tmp("offline");
    let repo = hub_cache(&root.join("hf"));
    let pt_sha = sha256_hex(&shared().join("fixtures/emu-tiny/model.pt"));
    let converted = repo.join("emu-eval-converted").join(format!("{pt_sha}.safetensors"));

    let first = run(&root, "test-org/emu-tiny", "a");
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{err}");
    assert!(err.contains("converting to safetensors once"), "{err}");
    assert!(converted.is_file(), "no {}", converted.display());
    let stamp = std::fs::metadata(&converted).unwrap().modified().unwrap();

    // Second run, pinned to the commit: the conversion is reused, not redone.
    let second = run(&root, &format!("test-org/emu-tiny@{COMMIT}"), "b");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{err}");
    assert!(!err.contains("converting"), "{err}");
    assert_eq!(std::fs::metadata(&converted).unwrap().modified().unwrap(), stamp);

    // The same checkpoint loaded as a pickle from a plain folder predicts the same.
    let plain = root.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    for f in ["config.json", "tokenizer.json", "model.pt"] {
        std::fs::copy(shared().join("fixtures/emu-tiny").join(f), plain.join(f)).unwrap();
    }
    let direct = run(&root, plain.to_str().unwrap(), "c");
    assert!(direct.status.success(), "{}", String::from_utf8_lossy(&direct.stderr));
    let preds = |d: &str| crate::run::lines(&root.join(d));
    assert_eq!(preds("a").len(), 2);
    assert_eq!(preds("a"), preds("c"));
    assert_eq!(preds("b"), preds("c"));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("a/run.json")).unwrap()).unwrap();
    assert!(cfg["model"].as_str().unwrap().contains(COMMIT), "{}", cfg["model"]);

    // Not in the cache, offline: one line naming the id and HF_HUB_OFFLINE.
    let missing = run(&root, "test-org/other-model", "d");
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(err.contains("test-org/other-model@main") && err.contains("HF_HUB_OFFLINE"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}

/// Online: an id missing from the cache is downloaded from `HF_ENDPOINT` (a local stand-in for
/// the hub) into the cache as blobs + snapshot + refs; a later offline run finds it there.
#[test]
fn hub_id_downloads_into_the_cache_when_online() {
    let root = tmp("online");
    let repo_files = root.join("repo");
    std::fs::create_dir_all(&repo_files).unwrap();
    for f in ["config.json", "tokenizer.json", "model.pt"] {
        std::fs::copy(shared().join("fixtures/emu-tiny").join(f), repo_files.join(f)).unwrap();
    }
    let port_file = root.join("port");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/support/fake_hub.py");
    let mut server = Command::new("python3")
        .arg(&script)
        .args([&repo_files, Path::new("test-org/emu-tiny"), Path::new(COMMIT), &port_file])
        .spawn()
        .expect("python3");
    let port = (0..200)
        .find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            std::fs::read_to_string(&port_file).ok()
        })
        .expect("fake hub started");
    let online = |out: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_emu-eval"));
        c.args(["run", "--task", "okvqa", "--limit", "2", "--model", "test-org/emu-tiny"])
            .arg("--data-root")
            .arg(shared().join("fixtures/datasets"))
            .arg("--output")
            .arg(root.join(out))
            .env("HF_HOME", root.join("hf"))
            .env("HF_ENDPOINT", format!("http://127.0.0.1:{}", port.trim()))
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("HF_HUB_CACHE")
            .env("EMU_EVAL_CACHE", root.join("cache"))
            .stdin(Stdio::null());
        c.output().unwrap()
    };
    let o = online("a");
    let _ = server.kill();
    let _ = server.wait();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let repo = root.join("hf/hub/models--test-org--emu-tiny");
    assert_eq!(std::fs::read_to_string(repo.join("refs/main")).unwrap().trim(), COMMIT);
    let pt_sha = sha256_hex(&shared().join("fixtures/emu-tiny/model.pt"));
    assert!(repo.join("blobs").join(&pt_sha).is_file());
    assert!(repo.join("snapshots").join(COMMIT).join("model.pt").exists());
    assert!(repo.join("emu-eval-converted").join(format!("{pt_sha}.safetensors")).is_file());
    // The server is gone: offline, the cached snapshot serves the same model.
    let again = run(&root, "test-org/emu-tiny", "b");
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(crate::run::lines(&root.join("a")), crate::run::lines(&root.join("b")));
    std::fs::remove_dir_all(&root).unwrap();
}
