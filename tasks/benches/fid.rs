//! FID benchmark: statistics + Fréchet distance of two random N x D feature matrices
//! (default 10,000 x 2048, the size of a 10k-image pool3 run), against pytorch-fid's
//! numpy/scipy computation (`fid_reference.py`) on the same `.npy` files in the same run.
//!
//! `cargo bench -p tasks --bench fid` (env: FID_BENCH_N, FID_BENCH_D, FID_BENCH_RUNS,
//! FID_BENCH_SKIP_REFERENCE=1, FID_BENCH_PYTHON).
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use tasks::metrics::{fid, npy};

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// splitmix64 uniform in (0, 1).
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// Correlated Gaussian features: x = z + 0.5 * z_shifted + shift (so covariances are not ~I).
fn features(n: usize, d: usize, seed: u64, scale: f64, shift: f64) -> Vec<f64> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(n * d);
    for _ in 0..n {
        let z: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
        out.extend((0..d).map(|j| scale * (z[j] + 0.5 * z[(j + 1) % d]) + shift));
    }
    out
}

/// CPU seconds (user + system, all threads) of this process from `/proc/self/stat`; NaN
/// where unavailable. On a shared machine this is the load-independent measure.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // Fields 14 and 15 of proc(5), in clock ticks (USER_HZ = 100 on Linux).
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let n = env_usize("FID_BENCH_N", 10_000);
    let d = env_usize("FID_BENCH_D", 2048);
    let runs = env_usize("FID_BENCH_RUNS", 3).max(1);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fid-bench");
    std::fs::create_dir_all(&dir).expect("create bench dir");
    let (pa, pb) = (dir.join(format!("a_{n}x{d}.npy")), dir.join(format!("b_{n}x{d}.npy")));
    npy::write_matrix(&pa, n, d, &features(n, d, 1, 1.0, 0.0), npy::Dtype::F32).expect("write a");
    npy::write_matrix(&pb, n, d, &features(n, d, 2, 1.1, 0.05), npy::Dtype::F32).expect("write b");
    println!(
        "fid bench: two {n} x {d} float32 .npy matrices, {} rayon threads",
        rayon::current_num_threads()
    );

    let t = Instant::now();
    let (_, _, xa) = npy::read_matrix(&pa).expect("read a");
    let (_, _, xb) = npy::read_matrix(&pb).expect("read b");
    println!("read both files: {:.3} s", t.elapsed().as_secs_f64());

    let mut totals = Vec::new();
    let mut cpus = Vec::new();
    let mut value = f64::NAN;
    for run in 1..=runs {
        let (t0, c0) = (Instant::now(), cpu_seconds());
        let (mu1, s1) = fid::stats(n, d, &xa);
        let (mu2, s2) = fid::stats(n, d, &xb);
        let (t1, c1) = (Instant::now(), cpu_seconds());
        value = fid::frechet_distance(&mu1, &s1, &mu2, &s2);
        let (t2, c2) = (Instant::now(), cpu_seconds());
        let (st, dt) = ((t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64());
        println!(
            "run {run}: wall stats {st:.3} s + distance {dt:.3} s = {:.3} s; CPU stats {:.2} s + distance {:.2} s = {:.2} s (FID {value:.9})",
            st + dt,
            c1 - c0,
            c2 - c1,
            c2 - c0
        );
        totals.push(st + dt);
        cpus.push(c2 - c0);
    }
    totals.sort_by(f64::total_cmp);
    cpus.sort_by(f64::total_cmp);
    let (best, best_cpu) = (totals[0], cpus[0]);
    println!(
        "rust: wall best {best:.3} s, median {:.3} s; CPU best {best_cpu:.2} s, median {:.2} s over {runs} runs",
        totals[runs / 2],
        cpus[runs / 2]
    );

    if std::env::var("FID_BENCH_SKIP_REFERENCE").is_ok_and(|v| v == "1") {
        return;
    }
    let python = std::env::var("FID_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fid_reference.py");
    let out = Command::new(&python).arg(&script).arg(&pa).arg(&pb).output();
    match out {
        Ok(o) if o.status.success() => {
            let line = String::from_utf8_lossy(&o.stdout);
            let v: serde_json::Value = serde_json::from_str(line.trim()).expect("reference JSON");
            let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            let (secs, cpu, ref_fid) = (num("seconds"), num("cpu_seconds"), num("fid"));
            println!(
                "reference (pytorch-fid: np.cov + scipy.linalg.sqrtm, numpy {} scipy {}): wall stats {:.3} s + distance {:.3} s = {secs:.3} s; CPU stats {:.2} s + distance {:.2} s = {cpu:.2} s (FID {ref_fid:.9})",
                v["numpy"].as_str().unwrap_or("?"),
                v["scipy"].as_str().unwrap_or("?"),
                num("stats_seconds"),
                num("distance_seconds"),
                num("cpu_stats_seconds"),
                num("cpu_distance_seconds")
            );
            println!(
                "speed-up (reference / rust best): wall {:.1}x, CPU {:.1}x; FID relative difference {:.2e}",
                secs / best,
                cpu / best_cpu,
                ((value - ref_fid) / ref_fid).abs()
            );
        }
        Ok(o) => println!("reference failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => println!("reference not run ({python}: {e})"),
    }
}
