//! Media throughput: decode + Pillow-exact bicubic resize to 224×224 + CLIP normalisation of
//! COCO-size (640×480) JPEGs, one thread and all cores, against Pillow + NumPy doing the same in
//! the same run; and 8-frame sampling of an MP4 clip. Run: `cargo bench -p tasks --bench media`
//! (needs `pip install pillow numpy` and the `ffmpeg` command for the inputs).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rayon::prelude::*;
use tasks::media::{image, video};

const N: usize = 400;

fn python(args: &[&str]) -> Option<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/media_reference.py");
    let out = Command::new("python3").arg(script).args(args).output().ok()?;
    if !out.status.success() {
        eprintln!(
            "python3 media_reference.py {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn images_per_second(files: &[PathBuf], threads: usize) -> f64 {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
    let t = Instant::now();
    let checksum: f64 = pool.install(|| {
        files
            .par_iter()
            .map(|f| {
                image::preprocess_file(f)
                    .expect("decode")
                    .data
                    .iter()
                    .map(|&x| x as f64)
                    .sum::<f64>()
            })
            .sum()
    });
    let s = t.elapsed().as_secs_f64();
    assert!(checksum.is_finite());
    files.len() as f64 / s
}

fn jpegs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("bench dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    files.sort();
    files
}

/// Best of three runs on 1 thread and on all cores, then Pillow + NumPy over the same files.
fn compare(label: &str, dir: &Path) {
    let files = jpegs(dir);
    let cores = rayon::current_num_threads();
    println!("{label}: {} JPEGs -> 224x224 CHW f32, {cores} cores", files.len());
    images_per_second(&files[..files.len().min(20)], 1); // warm the page cache
    let rust1 = (0..3).map(|_| images_per_second(&files, 1)).fold(0.0, f64::max);
    let rust_all = (0..3).map(|_| images_per_second(&files, cores)).fold(0.0, f64::max);
    println!("  rust: {rust1:.1} img/s on 1 thread, {rust_all:.1} img/s on {cores} threads");
    let reference = |procs: usize| -> Option<serde_json::Value> {
        let line = python(&["time", dir.to_str()?, &procs.to_string()])?;
        serde_json::from_str(&line).ok()
    };
    let rate = |v: &Option<serde_json::Value>, key: &str| v.as_ref().and_then(|v| v[key].as_f64());
    let (one, all) = (reference(1), reference(cores));
    match (rate(&one, "images_per_second"), rate(&all, "images_per_second")) {
        (Some(p1), Some(pall)) => println!(
            "  pillow+numpy: {p1:.1} img/s in 1 process, {pall:.1} img/s in {cores} processes; ratio per core {:.2}x, all cores {:.2}x",
            rust1 / p1,
            rust_all / pall
        ),
        _ => println!("  pillow+numpy reference not run"),
    }
    if let Some(p) = rate(&one, "pillow_only_images_per_second") {
        println!("  pillow decode+resize alone (no NumPy): {p:.1} img/s in 1 process; ratio per core {:.2}x", rust1 / p);
    }
}

fn main() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("media-bench");
    if !dir.join("clip.mp4").exists() {
        python(&["make", dir.to_str().expect("utf-8 path"), &N.to_string()]).expect("make inputs");
    }
    compare("synthetic photo-like 640x480 q90", &dir);

    // The real photos of the fixtures (598x500 and 800x500, 4:2:0), 100 links to each.
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/emu-tiny");
    let photos = Path::new(env!("CARGO_TARGET_TMPDIR")).join("media-bench-photos");
    if shared.join("tiger.jpg").exists() {
        std::fs::create_dir_all(&photos).expect("photo dir");
        for i in 0..200 {
            let link = photos.join(format!("photo_{i:03}.jpg"));
            if !link.exists() {
                let src = shared.join(if i % 2 == 0 { "cat.jpg" } else { "tiger.jpg" });
                std::os::unix::fs::symlink(src.canonicalize().expect("fixture photo"), &link)
                    .expect("link");
            }
        }
        compare("fixture photos cat.jpg + tiger.jpg", &photos);
    }

    let clip = dir.join("clip.mp4");
    let info = video::probe(&clip).expect("probe clip");
    let runs = 5;
    let t = Instant::now();
    for _ in 0..runs {
        let px = video::preprocess_video(&clip, 8).expect("frames");
        assert_eq!(px.len(), 8);
    }
    let s = t.elapsed().as_secs_f64() / runs as f64;
    println!(
        "video: 8-frame sampling of a {}-frame {}x{} H.264 clip: {s:.3} s per clip ({:.1} sampled frames/s, {:.0} decoded frames/s over two passes)",
        info.decoded_frames,
        info.width,
        info.height,
        8.0 / s,
        2.0 * info.decoded_frames as f64 / s
    );
}
