//! Text-to-image and FID from the command line and through the coco_t2i library entry point:
//! `generate-image` against the visual-decoder fixture, `fid-stats` and `metric fid` (.npz and
//! .npy) against the fid-inception fixture, and a resumable coco_t2i run on the fixture dataset.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor};
use tasks::metrics::{fid, npy, npz};

use crate::common::{copy_fixture, emu_eval, json_out, shared};
use crate::run::{lines, metrics, ok, read_json};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("emu-eval-t2i-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn decoder_vectors() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(
        shared().join("fixtures/visual-decoder-tiny/vectors.safetensors"),
        &Device::Cpu,
    )
    .unwrap()
}

fn fid_vectors() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(
        shared().join("fixtures/fid-inception/vectors.safetensors"),
        &Device::Cpu,
    )
    .unwrap()
}

fn read_png(path: &Path) -> (Vec<u8>, u32, u32) {
    let img = tasks::media::image::decode_file(path).unwrap();
    (img.data, img.width as u32, img.height as u32)
}

fn u8s(t: &Tensor) -> Vec<u8> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

fn generate_image(extra: &[&str], out: &Path) -> std::process::Output {
    let model = shared().join("fixtures/emu-tiny");
    let decoder = shared().join("fixtures/visual-decoder-tiny");
    let mut args = vec![
        "generate-image",
        "--model",
        s(&model),
        "--decoder",
        s(&decoder),
        "--prompt",
        "A photo of a tiger in the grass.",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    emu_eval(&args, None)
}

#[test]
fn generate_image_from_the_fixture_noise_matches_the_official_pipeline() {
    let dir = tmp("gen");
    let v = decoder_vectors();
    let init = shared().join("fixtures/visual-decoder-tiny/vectors.safetensors"); // holds `initial_latents`
    for (steps, guidance, key) in [
        ("10", "5", "run10_image_u8"),
        ("10", "7.5", "run10_g7p5_image_u8"),
        ("50", "5", "run50_image_u8"),
    ] {
        let out = dir.join(format!("{key}.png"));
        let o = generate_image(
            &["--steps", steps, "--guidance", guidance, "--init-latents", s(&init)],
            &out,
        );
        json_out(&o);
        let (ours, w, h) = read_png(&out);
        assert_eq!((w, h), (64, 64));
        let reference = u8s(&v[key]);
        // Emu's regression here is unbatched (the fixture's is a right-padded batch, 4e-7 apart):
        // pixels may differ by one level where a value sits on a rounding boundary.
        let off: Vec<usize> = (0..ours.len()).filter(|&i| ours[i] != reference[i]).collect();
        assert!(
            off.iter().all(|&i| ours[i].abs_diff(reference[i]) == 1),
            "{key}: a pixel differs by more than 1"
        );
        assert!(
            off.len() * 1000 <= ours.len(),
            "{key}: {} of {} bytes differ",
            off.len(),
            ours.len()
        );
    }
}

#[test]
fn seeded_noise_is_reproducible_and_arguments_are_checked() {
    let dir = tmp("seed");
    let (a, b, c) = (dir.join("a.png"), dir.join("b.png"), dir.join("c.png"));
    json_out(&generate_image(&["--steps", "3", "--seed", "7"], &a));
    json_out(&generate_image(&["--steps", "3", "--seed", "7"], &b));
    json_out(&generate_image(&["--steps", "3", "--seed", "8"], &c));
    assert_eq!(read_png(&a).0, read_png(&b).0, "same seed, same image");
    assert_ne!(read_png(&a).0, read_png(&c).0, "another seed, another image");
    let o = generate_image(
        &["--init-latents", s(&shared().join("fixtures/emu-tiny/vectors.safetensors"))],
        &dir.join("x.png"),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("initial_latents: no such tensor") && err.trim().lines().count() == 1,
        "{err}"
    );
}

/// Writes images (n, h, w, 3) as PNG files `0000.png`, … in `dir`.
fn write_pngs(dir: &Path, images: &Tensor) {
    let (n, h, w, _) = images.dims4().unwrap();
    for i in 0..n {
        harness::t2i::write_png(
            &dir.join(format!("{i:04}.png")),
            &u8s(&images.i(i).unwrap()),
            w,
            h,
        )
        .unwrap();
    }
}

#[test]
fn fid_stats_of_the_fixture_groups_and_fid_from_npz() {
    let dir = tmp("fidstats");
    let v = fid_vectors();
    let weights = shared().join("fixtures/fid-inception/inception_weights.safetensors");
    for g in ["groupA", "groupB"] {
        let images = dir.join(g);
        std::fs::create_dir_all(&images).unwrap();
        write_pngs(&images, &v[&format!("{g}_u8")]);
        let out = dir.join(format!("{g}.npz"));
        let o = json_out(&emu_eval(
            &[
                "fid-stats",
                "--images",
                s(&images),
                "--out",
                s(&out),
                "--inception",
                s(&weights),
                "--batch-size",
                "16",
            ],
            None,
        ));
        assert_eq!((o["images"].as_u64(), o["dims"].as_u64()), (Some(32), Some(2048)));
        let (mu, sigma, d) = npz::read_stats(&out).unwrap();
        assert_eq!(d, 2048);
        // Our features are within 1e-4 relative of pytorch-fid's; so are their means.
        for (i, (a, b)) in mu.iter().zip(f64s(&v[&format!("{g}_mu")])).enumerate() {
            assert!((a - b).abs() <= 1e-4 * b.abs() + 1e-5, "{g} mu[{i}]: {a} vs {b}");
        }
        let diag: Vec<f64> = (0..d).map(|i| sigma[i * d + i]).collect();
        for (i, (a, b)) in diag.iter().zip(f64s(&v[&format!("{g}_sigma_diag")])).enumerate() {
            assert!((a - b).abs() <= 1e-3 * b.abs() + 1e-6, "{g} sigma[{i},{i}]: {a} vs {b}");
        }
    }
    let o = json_out(&emu_eval(
        &["metric", "fid", "--a", s(&dir.join("groupA.npz")), "--b", s(&dir.join("groupB.npz"))],
        None,
    ));
    let fid = o["fid"].as_f64().unwrap();
    assert!((fid - 1404.1066533124676).abs() <= 1e-3 * 1404.1, "FID {fid}");
}

#[test]
fn statistics_and_fid_of_the_reference_activations_in_npz_and_npy() {
    let dir = tmp("fidnpz");
    let v = fid_vectors();
    let mut paths = vec![];
    for g in ["groupA", "groupB"] {
        let act = f64s(&v[&format!("{g}_pool3")]);
        let (mu, sigma) = fid::stats(32, 2048, &act);
        let rel = |what: &str, ours: &[f64], reference: Vec<f64>| {
            for (i, (a, b)) in ours.iter().zip(&reference).enumerate() {
                assert!((a - b).abs() <= 1e-12 * b.abs().max(1e-3), "{g} {what}[{i}]: {a} vs {b}");
            }
        };
        rel("mu", &mu, f64s(&v[&format!("{g}_mu")]));
        rel(
            "sigma diag",
            &(0..2048).map(|i| sigma[i * 2048 + i]).collect::<Vec<_>>(),
            f64s(&v[&format!("{g}_sigma_diag")]),
        );
        rel(
            "sigma block",
            &(0..64 * 64).map(|k| sigma[(k / 64) * 2048 + k % 64]).collect::<Vec<_>>(),
            f64s(&v[&format!("{g}_sigma_block")]),
        );
        rel("sigma rows", &sigma[2040 * 2048..], f64s(&v[&format!("{g}_sigma_rows_2040_2047")]));
        let (z, y) = (dir.join(format!("{g}.npz")), dir.join(format!("{g}.npy")));
        npz::write_stats(&z, &mu, &sigma).unwrap();
        npy::write_matrix(&y, 32, 2048, &act, npy::Dtype::F32).unwrap();
        paths.push((z, y));
    }
    let expected = 1404.1066533124676; // fid_eigen of vectors.json
    for (a, b) in
        [(&paths[0].0, &paths[1].0), (&paths[0].1, &paths[1].1), (&paths[0].0, &paths[1].1)]
    {
        let fid = json_out(&emu_eval(&["metric", "fid", "--a", s(a), "--b", s(b)], None))["fid"]
            .as_f64()
            .unwrap();
        assert!(
            (fid - expected).abs() <= 1e-6 * expected,
            "{} vs {}: {fid}",
            a.display(),
            b.display()
        );
    }
    // A broken .npz is one line naming the file and the entry.
    let bad = dir.join("bad.npz");
    std::fs::write(&bad, b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0").unwrap();
    let o = emu_eval(&["metric", "fid", "--a", s(&bad), "--b", s(&paths[1].0)], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("bad.npz") && err.contains("mu.npy") && err.trim().lines().count() == 1,
        "{err}"
    );
}

#[test]
fn fid_stats_without_weights_is_one_line() {
    let dir = tmp("noweights");
    write_pngs(&dir, &fid_vectors()["groupA_u8"].i(0..2).unwrap());
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_emu-eval"));
    let o = cmd
        .args(["fid-stats", "--images", s(&dir), "--out", s(&dir.join("x.npz"))])
        .env_remove("EMU_EVAL_INCEPTION")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("--inception") && err.trim().lines().count() == 1, "{err}");
}

/// `run --task coco_t2i` on the dataset fixture with the tiny Emu, decoder and Inception.
pub(crate) fn t2i_run(out: &Path, extra: &[&str]) -> std::process::Output {
    t2i_command(out, extra).output().unwrap()
}

fn t2i_command(out: &Path, extra: &[&str]) -> std::process::Command {
    let (data, model, decoder) = (
        shared().join("fixtures/datasets"),
        shared().join("fixtures/emu-tiny"),
        shared().join("fixtures/visual-decoder-tiny"),
    );
    let inception = shared().join("fixtures/fid-inception/inception_weights.safetensors");
    let cache = out.parent().unwrap().join("cache");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_emu-eval"));
    cmd.args([
        "run",
        "--task",
        "coco_t2i",
        "--model",
        s(&model),
        "--decoder",
        s(&decoder),
        "--inception",
        s(&inception),
    ]);
    if !extra.contains(&"--data-root") {
        cmd.args(["--data-root", s(&data)]);
    }
    if !extra.contains(&"--prompts") {
        cmd.args(["--prompts", "4"]);
    }
    cmd.args(["--steps", "4", "--seed", "1", "--output", s(out), "--cache", s(&cache)]).args(extra);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null());
    cmd
}

/// PNG name → bytes of a run folder's images.
fn pngs(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir.join("coco_t2i_images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect()
}

#[test]
fn run_coco_t2i_reports_fid_resumes_after_sigkill_and_merges_shards() {
    use std::os::unix::fs::MetadataExt;
    let root = tmp("run");
    let full = root.join("full");
    ok(&t2i_run(&full, &[]));

    // Outputs: the caption sample, one PNG and one line per caption in caption order, FID.
    let captions = read_json(&full.join("captions.json"));
    let captions = captions.as_array().unwrap();
    assert_eq!(captions.len(), 4);
    let want = lines(&full);
    assert_eq!(want.len(), 4);
    for (l, c) in want.iter().zip(captions) {
        assert_eq!(l["id"], c["id"].to_string().as_str());
        assert_eq!(l["caption"], c["caption"]);
        assert!(l["error"].is_null(), "{l}");
        let (_, w, h) = read_png(&full.join(l["image"].as_str().unwrap()));
        assert_eq!((w, h), (64, 64));
    }
    assert_eq!(pngs(&full).len(), 4);
    let run = read_json(&full.join("run.json"));
    assert_eq!(
        (
            run["task"].as_str(),
            run["steps"].as_u64(),
            run["guidance"].as_f64(),
            run["prompts"].as_u64()
        ),
        (Some("coco_t2i"), Some(4), Some(5.0), Some(4))
    );
    assert!(
        run["decoder_hash"].as_str().unwrap().starts_with("sha256:")
            && run["inception_hash"].as_str().unwrap().starts_with("sha256:")
    );
    let m = read_json(&full.join("metrics.json"));
    assert_eq!(m["counts"], serde_json::json!({"samples": 4, "scored": 4, "failed": 0}));
    assert_eq!(m["headline"]["name"], "FID");
    assert_eq!(m["result_file"], "coco_t2i_images");
    let fid = m["metric"]["fid"].as_f64().unwrap();
    assert!(fid.is_finite() && fid > 0.0 && m["headline"]["value"].as_f64() == Some(fid), "{m}");
    let distinct: std::collections::BTreeSet<&str> =
        captions.iter().map(|c| c["image"].as_str().unwrap()).collect();
    assert_eq!(m["metric"]["reference_images"], distinct.len());
    // `metric fid` on the statistics the run wrote gives the same FID.
    let reference = PathBuf::from(m["fid_statistics"]["reference"].as_str().unwrap());
    let generated = full.join(m["fid_statistics"]["generated"].as_str().unwrap());
    let again =
        json_out(&emu_eval(&["metric", "fid", "--a", s(&generated), "--b", s(&reference)], None))
            ["fid"]
            .as_f64()
            .unwrap();
    assert_eq!(again, fid);

    // SIGKILL once the first image is there; the rerun keeps the finished images untouched.
    let killed = root.join("killed");
    let mut child = t2i_command(&killed, &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    let finished = || {
        std::fs::read_dir(killed.join("coco_t2i_images"))
            .map(|d| {
                d.filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "png"))
                    .count()
            })
            .unwrap_or(0)
    };
    while finished() < 1 && t0.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before: Vec<(PathBuf, u64, i64, i64)> = std::fs::read_dir(killed.join("coco_t2i_images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .map(|p| {
            let md = std::fs::metadata(&p).unwrap();
            (p, md.ino(), md.mtime(), md.mtime_nsec())
        })
        .collect();
    assert!(!before.is_empty() && before.len() < 4, "{} images before the kill", before.len());
    let o = t2i_run(&killed, &[]);
    ok(&o);
    for (p, ino, mtime, nsec) in &before {
        let md = std::fs::metadata(p).unwrap();
        assert_eq!(
            (md.ino(), md.mtime(), md.mtime_nsec()),
            (*ino, *mtime, *nsec),
            "{} was regenerated",
            p.display()
        );
    }
    let timing = &read_json(&killed.join("metrics.json"))["timing"];
    assert_eq!(
        timing["samples_this_invocation"].as_u64(),
        Some(4 - before.len() as u64),
        "{timing}"
    );
    assert_eq!(timing["images_skipped"].as_u64(), Some(before.len() as u64), "{timing}");
    assert_eq!(lines(&killed), want);
    assert_eq!(metrics(&killed), metrics(&full));
    assert_eq!(pngs(&killed), pngs(&full));
    // A different configuration refuses to mix in.
    let o = t2i_run(&killed, &["--steps", "3"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("steps") && err.trim().lines().count() == 1, "{err}");

    // Shards 1/2 and 2/2 (no FID each), merged: the single run's files and images.
    let (a, b, merged) = (root.join("s1"), root.join("s2"), root.join("merged"));
    ok(&t2i_run(&a, &["--shard", "1/2"]));
    ok(&t2i_run(&b, &["--shard", "2/2"]));
    let ma = read_json(&a.join("metrics.json"));
    assert!(ma["metric"]["fid"].is_null() && ma["counts"]["samples"] == 2, "{ma}");
    ok(&emu_eval(
        &["merge", s(&a), s(&b), "--output", s(&merged), "--cache", s(&root.join("cache"))],
        None,
    ));
    assert_eq!(lines(&merged), want);
    assert_eq!(metrics(&merged), metrics(&full));
    assert_eq!(pngs(&merged), pngs(&full));
    let o = emu_eval(&["merge", s(&a), "--output", s(&root.join("partial"))], None);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("missing shard"));

    // `report` reads the run folder and puts it in Table 2.
    let report = root.join("report");
    let o = emu_eval(&["report", s(&full), "--out", s(&report)], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(report.join("results.md")).unwrap();
    assert!(md.contains("## Table 2") && md.contains(&format!("{fid:.2}")), "{md}");
}

#[test]
fn run_coco_t2i_out_of_the_box_uses_builtin_random_models() {
    let root = tmp("builtin");
    let out = root.join("run");
    let data = shared().join("fixtures/datasets");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_emu-eval"));
    cmd.args([
        "run",
        "--task",
        "coco_t2i",
        "--data-root",
        s(&data),
        "--steps",
        "2",
        "--prompts",
        "4",
        "--output",
        s(&out),
        "--cache",
        s(&root.join("cache")),
    ]);
    let o = cmd.env_remove("EMU_EVAL_INCEPTION").output().unwrap();
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("RANDOM visual decoder")
            && err.contains("RANDOM Inception")
            && err.contains("RANDOM model"),
        "{err}"
    );
    let m = read_json(&out.join("metrics.json"));
    assert_eq!(m["counts"]["samples"], 4);
    assert!(m["metric"]["fid"].as_f64().is_some_and(f64::is_finite), "{m}");
    assert_eq!(
        (m["config"]["decoder"].as_str(), m["config"]["inception"].as_str()),
        (Some("builtin-tiny"), Some("builtin-tiny"))
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("| coco_t2i |"));
}

#[test]
fn run_coco_t2i_records_a_failed_image_and_honours_max_failures() {
    let root = tmp("fail");
    // The fixture with one caption the regression cannot run (an image marker without an image).
    let dst = copy_fixture(&root, "coco_t2i");
    let ann = dst.join("annotations/captions_val2014.json");
    let mut j = read_json(&ann);
    j["annotations"][0]["caption"] = "a [<IMG_PLH>] cat".into();
    let bad = j["annotations"][0]["id"].to_string();
    std::fs::write(&ann, serde_json::to_string(&j).unwrap()).unwrap();
    let data = root.join("data");
    let out = root.join("run");
    let args = ["--data-root", s(&data), "--prompts", "8", "--limit", "3"];
    let o = t2i_run(&out, &args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("1 images failed, more than --max-failures 0")
            && err.trim().lines().last().is_some_and(|l| l.contains("error")),
        "{err}"
    );
    let o = t2i_run(&out, &[&args[..], &["--max-failures", "1"]].concat());
    ok(&o);
    let m = read_json(&out.join("metrics.json"));
    assert_eq!(m["counts"], serde_json::json!({"samples": 3, "scored": 2, "failed": 1}), "{m}");
    assert_eq!(
        (m["metric"]["generated_images"].as_u64(), m["failed_left_out"].as_bool()),
        (Some(2), Some(true))
    );
    assert!(m["metric"]["fid"].as_f64().is_some_and(f64::is_finite));
    let all = lines(&out);
    let failed: Vec<_> = all.iter().filter(|l| !l["error"].is_null()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["id"], bad.as_str());
    assert!(
        failed[0]["image"].is_null() && failed[0]["error"].as_str().unwrap().contains("image"),
        "{}",
        failed[0]
    );
    assert!(!out.join(format!("coco_t2i_images/{bad}.png")).exists());
}

/// A multi-task run refuses coco_t2i's unsupported flags before loading the model or running
/// the tasks before it: no run folder is written.
#[test]
fn run_refuses_few_shot_text_to_image_before_any_task() {
    let root = tmp("multi-refused");
    let out = root.join("runs");
    let data = shared().join("fixtures/datasets");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_emu-eval"))
        .args([
            "run", "--task", "vqav2", "--task", "coco_t2i", "--shots", "0", "--shots", "2",
            "--limit", "1",
        ])
        .args(["--data-root", s(&data), "--output", s(&out), "--cache", s(&root.join("cache"))])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--task coco_t2i: zero-shot text-to-image only"), "{err}");
    assert!(!err.contains("RANDOM model"), "refused after loading the model: {err}");
    assert!(!out.exists(), "a run folder was written before the refusal");
}
