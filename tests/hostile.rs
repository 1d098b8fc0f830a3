//! Hostile and broken input (issue 14): inputs of a few hundred bytes built here, each driven
//! through the `emu-eval` binary. Every case must exit with status 1 and one line on stderr,
//! within a second of CPU time and under 100 MB of peak memory. The peak is the child's
//! `VmHWM` read at its exit (ptrace exit stop): `ru_maxrss` would include the forked copy of
//! this test process. A watchdog kills a child that runs past 20 s.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::shared;

/// What one run of the binary did.
#[derive(Debug)]
pub struct Measured {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub wall: Duration,
    /// User + system CPU time of the program (all threads).
    pub cpu: Duration,
    pub max_rss_kb: i64,
}

/// User + system time from `/proc/PID/stat` (fields 14 and 15, in clock ticks).
fn cpu_time(pid: libc::pid_t) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> =
        rest.split_whitespace().skip(11).take(2).filter_map(|x| x.parse().ok()).collect();
    // SAFETY: sysconf is a plain query.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64(f.iter().sum::<u64>() as f64 / hz)
}

/// `VmHWM` (peak resident set of the current program) from `/proc/PID/status`, in KB.
fn vm_hwm_kb(pid: libc::pid_t) -> i64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(-1)
}

/// Runs `emu-eval args` with `env`, measuring wall time and peak RSS of the child.
pub fn run_measured(args: &[&str], env: &[(&str, &str)]) -> Measured {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_emu-eval"));
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE").env_remove("EMU_EVAL_LOG");
    cmd.envs(env.iter().copied());
    // SAFETY: ptrace(TRACEME) is async-signal-safe; the child stops at exec for the tracer.
    unsafe {
        cmd.pre_exec(|| {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn emu-eval");
    let pid = child.id() as libc::pid_t;
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            s
        })
    };
    let (t_out, t_err) = (reader(Box::new(out)), reader(Box::new(err)));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // SAFETY: signalling our own child, not yet reaped (done is false).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        })
    };
    let mut max_rss_kb = -1;
    let mut cpu = Duration::ZERO;
    let mut status = 0;
    loop {
        // SAFETY: waiting on and continuing our own traced child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(r, pid, "waitpid failed");
        if !libc::WIFSTOPPED(status) {
            break;
        }
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        let forward = if event == libc::PTRACE_EVENT_EXIT {
            max_rss_kb = vm_hwm_kb(pid); // the program's peak, read before its memory goes
            cpu = cpu_time(pid);
            0
        } else if sig == libc::SIGTRAP {
            // The stop at exec: ask for a stop at exit too.
            unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, libc::PTRACE_O_TRACEEXIT) };
            0
        } else {
            sig
        };
        unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, forward) };
    }
    let wall = start.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = watchdog.join();
    let code = if libc::WIFEXITED(status) { Some(libc::WEXITSTATUS(status)) } else { None };
    drop(child);
    Measured {
        code,
        stdout: String::from_utf8_lossy(&t_out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap()).into_owned(),
        wall,
        cpu,
        max_rss_kb,
    }
}

/// Peak memory allowed for a hostile case.
const MAX_RSS_KB: i64 = 100 * 1024;
/// CPU time allowed for a hostile case. Wall time is printed; it is asserted only against
/// `MAX_WALL`, a hang guard, because `cargo test` runs other tests on the same cores.
const MAX_CPU: Duration = Duration::from_secs(1);
const MAX_WALL: Duration = Duration::from_secs(5);

/// Asserts exit status 1, one stderr line containing every `want`, nothing on stdout, and the
/// time and memory bounds; prints the measurement.
pub fn expect_error(name: &str, args: &[&str], env: &[(&str, &str)], want: &[&str]) -> Measured {
    // One measured run at a time, so parallel tests do not inflate each other's wall time.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let m = {
        let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        run_measured(args, env)
    };
    println!(
        "{name}: exit {:?}, wall {:.0} ms, cpu {:.0} ms, {} KB peak RSS: {}",
        m.code,
        m.wall.as_secs_f64() * 1e3,
        m.cpu.as_secs_f64() * 1e3,
        m.max_rss_kb,
        m.stderr.trim_end()
    );
    assert_eq!(m.code, Some(1), "{name}: exit {:?}, stderr {}", m.code, m.stderr);
    assert_eq!(m.stderr.lines().count(), 1, "{name}: stderr is not one line: {}", m.stderr);
    assert!(m.stderr.starts_with("emu-eval: error: "), "{name}: {}", m.stderr);
    for w in want {
        assert!(m.stderr.contains(w), "{name}: `{}` lacks `{w}`", m.stderr.trim_end());
    }
    assert!(m.stdout.is_empty(), "{name}: printed {}", m.stdout);
    assert!(m.cpu < MAX_CPU, "{name}: used {:?} of CPU", m.cpu);
    assert!(m.wall < MAX_WALL, "{name}: took {:?}", m.wall);
    assert!(m.max_rss_kb > 0 && m.max_rss_kb < MAX_RSS_KB, "{name}: peak RSS {} KB", m.max_rss_kb);
    m
}

/// A fresh scratch folder for one test.
pub fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("emu_hostile_{tag}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn tiny() -> PathBuf {
    shared().join("fixtures/emu-tiny")
}

/// A model folder: the tiny model's tokenizer, `config` as config.json, `weights` as named.
fn model_dir(tag: &str, config: &str, weights: Option<(&str, &[u8])>) -> PathBuf {
    let d = scratch(tag);
    std::fs::write(d.join("config.json"), config).unwrap();
    std::os::unix::fs::symlink(tiny().join("tokenizer.json"), d.join("tokenizer.json")).unwrap();
    match weights {
        Some((name, bytes)) => std::fs::write(d.join(name), bytes).unwrap(),
        None => std::os::unix::fs::symlink(
            tiny().join("model.safetensors"),
            d.join("model.safetensors"),
        )
        .unwrap(),
    }
    d
}

/// A model folder whose safetensors is the tiny model's with `edit(name, dtype, bytes)` applied
/// to every tensor.
fn tiny_rewritten(
    tag: &str,
    mut edit: impl FnMut(&str, &mut safetensors::Dtype, &mut Vec<u8>),
) -> PathBuf {
    let st = std::fs::read(tiny().join("model.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&st).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, safetensors::Dtype, Vec<u8>)> = Vec::new();
    for (name, v) in file.tensors() {
        let (mut dtype, mut data) = (v.dtype(), v.data().to_vec());
        edit(&name, &mut dtype, &mut data);
        tensors.push((name, v.shape().to_vec(), dtype, data));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, sh, dt, data)| {
            (n.clone(), safetensors::tensor::TensorView::new(*dt, sh.clone(), data).unwrap())
        })
        .collect();
    let bytes = safetensors::serialize(views, None).unwrap();
    model_dir(tag, &tiny_config().to_string(), Some(("model.safetensors", &bytes)))
}

fn tiny_config() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(tiny().join("config.json")).unwrap()).unwrap()
}

// ---------------------------------------------------------------- builders of hostile bytes

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

/// A PNG of `w`×`h` RGB pixels whose image data is one empty zlib stream (~70 bytes).
pub fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        v.extend_from_slice(&body);
        v.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    v
}

/// A baseline JPEG header (SOI, SOF0, SOS) of `w`×`h` grayscale pixels and no scan data.
pub fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8];
    v.extend_from_slice(&h.to_be_bytes());
    v.extend_from_slice(&w.to_be_bytes());
    v.extend_from_slice(&[1, 1, 0x11, 0, 0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0]);
    v
}

/// An `.npy` header of a `rows`×`cols` `<f4` matrix without data.
pub fn npy_claiming(rows: usize, cols: usize) -> Vec<u8> {
    let mut dict =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    v.extend_from_slice(dict.as_bytes());
    v
}

/// A safetensors file from a raw JSON header and data bytes.
pub fn safetensors_raw(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

/// Pickle opcodes for building state dicts by hand.
pub mod pk {
    pub fn unicode(s: &str) -> Vec<u8> {
        let mut v = vec![b'X'];
        v.extend_from_slice(&(s.len() as u32).to_le_bytes());
        v.extend_from_slice(s.as_bytes());
        v
    }
    pub fn int(i: u32) -> Vec<u8> {
        let mut v = vec![b'J'];
        v.extend_from_slice(&i.to_le_bytes());
        v
    }
    pub fn global(m: &str, c: &str) -> Vec<u8> {
        format!("c{m}\n{c}\n").into_bytes()
    }
    /// `{name: _rebuild_tensor_v2(storage(dtype class, key, numel), 0, size, stride, False, OrderedDict())}`.
    pub fn state_dict(
        name: &str,
        class: &str,
        numel: u32,
        size: &[u32],
        stride: &[u32],
    ) -> Vec<u8> {
        let mut p = vec![0x80, 2, b'}', b'('];
        p.extend(unicode(name));
        p.extend(global("torch._utils", "_rebuild_tensor_v2"));
        p.push(b'(');
        p.push(b'(');
        p.extend(unicode("storage"));
        p.extend(global("torch", class));
        p.extend(unicode("0"));
        p.extend(unicode("cpu"));
        p.extend(int(numel));
        p.extend([b't', b'Q']);
        p.extend(int(0));
        for dims in [size, stride] {
            p.push(b'(');
            for &d in dims {
                p.extend(int(d));
            }
            p.push(b't');
        }
        p.push(0x89);
        p.extend(global("collections", "OrderedDict"));
        p.extend([b')', b'R', b't', b'R', b'u', b'.']);
        p
    }
}

/// A PyTorch zip checkpoint `archive/data.pkl` + `archive/data/<key>` members (stored).
pub fn pt_zip(pickle: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opt = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file("archive/data.pkl", opt).unwrap();
        z.write_all(pickle).unwrap();
        for (key, bytes) in storages {
            z.start_file(format!("archive/data/{key}"), opt).unwrap();
            z.write_all(bytes).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

// ---------------------------------------------------------------- class 1: limits before allocation

#[test]
fn image_pixel_limit_from_header() {
    let d = scratch("pixels");
    let png = d.join("bomb.png");
    std::fs::write(&png, png_claiming(100_000, 100_000)).unwrap();
    let jpg = d.join("bomb.jpg");
    std::fs::write(&jpg, jpeg_claiming(60_000, 60_000)).unwrap();
    let model = tiny();
    let o = d.join("o.safetensors");
    for (name, img) in [("png", &png), ("jpeg", &jpg)] {
        let args =
            ["inspect", "--model", s(&model), "--prompt", "x", "--image", s(img), "--out", s(&o)];
        expect_error(
            &format!("image_{name}"),
            &args,
            &[],
            &["pixels) exceeds the limit of 89478485", "--max-image-pixels"],
        );
    }
    // The limit is configurable: a small one refuses the fixture photo by flag and by env.
    let cat = tiny().join("cat.jpg");
    let args = [
        "inspect",
        "--model",
        s(&model),
        "--prompt",
        "x",
        "--image",
        s(&cat),
        "--out",
        s(&o),
        "--max-image-pixels",
        "1000",
    ];
    expect_error("image_flag", &args, &[], &["exceeds the limit of 1000"]);
    let args =
        ["inspect", "--model", s(&model), "--prompt", "x", "--image", s(&cat), "--out", s(&o)];
    expect_error(
        "image_env",
        &args,
        &[("EMU_EVAL_MAX_IMAGE_PIXELS", "1000")],
        &["exceeds the limit of 1000"],
    );
}

#[test]
fn fid_feature_matrix_checked_from_header() {
    let d = scratch("fid");
    let a = d.join("a.npy");
    std::fs::write(&a, npy_claiming(2, 2_000_000)).unwrap();
    let args = ["metric", "fid", "--a", s(&a), "--b", s(&a)];
    expect_error(
        "fid_columns",
        &args,
        &[],
        &["header.shape", "2000000 feature columns", "MiB", "--max-fid-features"],
    );
    std::fs::write(&a, npy_claiming(1 << 40, 1 << 40)).unwrap();
    expect_error("fid_overflow", &args, &[], &["header.shape"]);
}

/// 3 samples x 8000 features (accepted by the column limit): the distance goes through 3 x 3
/// Gram matrices, so it takes the hostile-case bounds (1 s CPU, 100 MB) even in a debug build,
/// where two dense 8000 x 8000 covariances alone would need 1 GB. The value equals the dense
/// computation on a case small enough for both.
#[test]
fn fid_few_samples_many_features_is_bounded_and_equals_dense() {
    use tasks::metrics::{fid, npy};
    let d = scratch("fid_gram");
    // Deterministic pseudo-random values in [-1, 1).
    let values = |n: usize, seed: u64| -> Vec<f64> {
        (0..n as u64)
            .map(|i| ((i * 2654435761 + seed * 97) % 10007) as f64 / 5003.5 - 1.0)
            .collect()
    };
    let (a, b) = (d.join("a.npy"), d.join("b.npy"));
    npy::write_matrix(&a, 3, 8000, &values(24_000, 1), npy::Dtype::F64).unwrap();
    npy::write_matrix(&b, 3, 8000, &values(24_000, 2), npy::Dtype::F64).unwrap();
    let m = run_measured(&["metric", "fid", "--a", s(&a), "--b", s(&b), "--compact"], &[]);
    println!(
        "fid 3x8000: exit {:?}, wall {:.0} ms, cpu {:.0} ms, {} KB peak RSS",
        m.code,
        m.wall.as_secs_f64() * 1e3,
        m.cpu.as_secs_f64() * 1e3,
        m.max_rss_kb
    );
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    let v: serde_json::Value = serde_json::from_str(&m.stdout).unwrap();
    assert!(v["fid"].as_f64().is_some_and(|x| x.is_finite() && x > 0.0), "{v}");
    assert!(m.cpu < MAX_CPU, "used {:?} of CPU", m.cpu);
    assert!(m.max_rss_kb > 0 && m.max_rss_kb < MAX_RSS_KB, "peak RSS {} KB", m.max_rss_kb);

    // 4 and 6 samples x 50 features: the command (Gram route) against the dense formula.
    let (x, y) = (values(200, 3), values(300, 4));
    npy::write_matrix(&a, 4, 50, &x, npy::Dtype::F64).unwrap();
    npy::write_matrix(&b, 6, 50, &y, npy::Dtype::F64).unwrap();
    let m = run_measured(&["metric", "fid", "--a", s(&a), "--b", s(&b), "--compact"], &[]);
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    let got = serde_json::from_str::<serde_json::Value>(&m.stdout).unwrap()["fid"].as_f64();
    let ((mu1, s1), (mu2, s2)) = (fid::stats(4, 50, &x), fid::stats(6, 50, &y));
    let want = fid::frechet_distance(&mu1, &s1, &mu2, &s2);
    let got = got.unwrap();
    assert!((got - want).abs() / want < 1e-6, "command {got} vs dense {want}");
}

#[test]
fn tensor_sizes_checked_against_stored_bytes() {
    let d = scratch("tensors");
    let out = d.join("out.safetensors");
    // .pt: a 2^16 x 2^16 view of a 4-element storage, and a 2 x 2 view striding past its end.
    let pt = d.join("view.pt");
    std::fs::write(
        &pt,
        pt_zip(
            &pk::state_dict("w", "FloatStorage", 4, &[65536, 65536], &[0, 0]),
            &[("0", &[0; 16])],
        ),
    )
    .unwrap();
    expect_error(
        "pt_expanded",
        &["convert", "--weights", s(&pt), "--out", s(&out)],
        &[],
        &["view.pt", "data.pkl", "4294967296 elements, more than its storage's 4"],
    );
    std::fs::write(
        &pt,
        pt_zip(&pk::state_dict("w", "FloatStorage", 4, &[2, 2], &[65536, 1]), &[("0", &[0; 16])]),
    )
    .unwrap();
    expect_error(
        "pt_view",
        &["convert", "--weights", s(&pt), "--out", s(&out)],
        &[],
        &["view.pt", "reaches element 65537", "storage holds 4"],
    );
    // .pt: a storage claiming 2^30 elements with 16 bytes stored.
    std::fs::write(
        &pt,
        pt_zip(&pk::state_dict("w", "FloatStorage", 1 << 30, &[1 << 30], &[1]), &[("0", &[0; 16])]),
    )
    .unwrap();
    expect_error(
        "pt_storage",
        &["convert", "--weights", s(&pt), "--out", s(&out)],
        &[],
        &["tensor `w`", "needs 4294967296 bytes, the archive stores 16"],
    );
    // safetensors: a 65536 x 65536 header over 16 bytes, and a header length of 2^60.
    let cfg = tiny_config().to_string();
    let st = safetensors_raw(
        r#"{"w":{"dtype":"F32","shape":[65536,65536],"data_offsets":[0,17179869184]}}"#,
        &[0; 16],
    );
    let m = model_dir("st_shape", &cfg, Some(("model.safetensors", &st)));
    expect_error(
        "safetensors_shape",
        &["inspect", "--model", s(&m), "--prompt", "x", "--out", s(&out)],
        &[],
        &["model.safetensors"],
    );
    let mut huge = (1u64 << 60).to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    let m = model_dir("st_header", &cfg, Some(("model.safetensors", &huge)));
    expect_error(
        "safetensors_header",
        &["inspect", "--model", s(&m), "--prompt", "x", "--out", s(&out)],
        &[],
        &["model.safetensors"],
    );
}

#[test]
fn tensor_shape_and_dtype_checked_against_config() {
    let d = scratch("cfgshape");
    let out = d.join("o.safetensors");
    // A config whose vision width the (real) checkpoint does not have: refused from the header.
    let mut cfg = tiny_config();
    cfg["vision"]["width"] = 4096.into();
    cfg["causal_former"]["encoder_width"] = 4096.into();
    cfg["vision"]["head_width"] = 64.into();
    let m = model_dir("cfg_width", &cfg.to_string(), None);
    expect_error(
        "config_shape",
        &["inspect", "--model", s(&m), "--prompt", "x", "--out", s(&out)],
        &[],
        &["has shape", "the configuration expects"],
    );
    // An integer tensor where a weight belongs.
    let m = tiny_rewritten("cfg_dtype", |name, dtype, data| {
        if name == "visual.cls_token" {
            *dtype = safetensors::Dtype::I64;
            *data = vec![0; data.len() * 2];
        }
    });
    expect_error(
        "config_dtype",
        &["inspect", "--model", s(&m), "--prompt", "x", "--out", s(&out)],
        &[],
        &["visual.cls_token", "I64", "floating-point"],
    );
}

// ---------------------------------------------------------------- class 2: the bounded pickle reader

#[test]
fn pickle_programs_are_bounded() {
    let d = scratch("pickle");
    let pt = d.join("evil.pt");
    let out = d.join("o.safetensors");
    let run = |name: &str, pickle: Vec<u8>, want: &[&str]| {
        std::fs::write(&pt, pt_zip(&pickle, &[])).unwrap();
        expect_error(name, &["convert", "--weights", s(&pt), "--out", s(&out)], &[], want);
    };
    // Stack overflow bait: 100 000 nested one-tuples.
    let mut p = vec![0x80, 2, b'N'];
    p.extend(std::iter::repeat_n(0x85, 100_000));
    run("pickle_depth", p, &["evil.pt", "nesting deeper than 64"]);
    // Exponential memo: x = [x, x] 60 times (2^60 elements if the memo copied), ~600 bytes.
    let mut p = vec![0x80, 2, b']', b'q', 0, b'0'];
    for _ in 0..60 {
        p.extend_from_slice(&[b']', b'(', b'h', 0, b'h', 0, b'e', b'q', 0, b'0']);
    }
    p.extend_from_slice(&[b'h', 0, b'.']);
    run("pickle_memo_doubling", p, &["evil.pt", "no tensors found"]);
    // Memo growth: 600 000 distinct LONG_BINPUT ids (3 MB: the bound is far above real files).
    let mut p = vec![0x80, 2, b'N'];
    for i in 0..600_000u32 {
        p.push(b'r');
        p.extend_from_slice(&i.to_le_bytes());
    }
    run("pickle_memo_growth", p, &["memo grows beyond 500000 entries"]);
    // Copy on write: one memoised 100 000-element list appended to again and again (each append
    // copies it); the copies count against the object bound.
    let mut p = vec![0x80, 2, b']', b'('];
    p.extend(std::iter::repeat_n(b'N', 100_000));
    p.extend_from_slice(&[b'e', b'q', 0]);
    for _ in 0..1000 {
        p.extend_from_slice(&[b'h', 0, b'N', b'a']);
    }
    run("pickle_copy_on_write", p, &["more than 500000 objects"]);
    // A 4 GiB string length in a 20-byte program.
    let mut p = vec![0x80, 2, b'X'];
    p.extend_from_slice(&u32::MAX.to_le_bytes());
    run("pickle_string_length", p, &["needs 4294967295 more bytes"]);
    // Allowed callables with the wrong arity or argument types.
    let mut p = vec![0x80, 2];
    p.extend(pk::global("torch._utils", "_rebuild_tensor_v2"));
    p.extend([b'N', 0x85, b'R', b'.']);
    run("pickle_arity", p, &["_rebuild_tensor_v2 called with 1 arguments"]);
    let mut p = vec![0x80, 2];
    p.extend(pk::global("collections", "OrderedDict"));
    p.extend([b'N', 0x85, b'R', b'.']);
    run("pickle_types", p, &["OrderedDict called with 1 arguments"]);
    // Foreign globals stay refused.
    let mut p = vec![0x80, 2];
    p.extend(pk::global("posix", "system"));
    p.push(b'.');
    run("pickle_global", p, &["refused global `posix.system`"]);
    run("pickle_unknown_opcode", vec![0x80, 2, b'i', b'.'], &["unsupported opcode 0x69"]);
}

// ---------------------------------------------------------------- class 3: numeric ranges

#[test]
fn numeric_flags_have_ranges() {
    let m = tiny();
    let base = ["generate", "--model", s(&m), "--prompt", "a photo of"];
    let cases: [(&str, &[&str], &str); 7] = [
        ("beams_zero", &["--num-beams", "0"], "num_beams: 0 is outside 1..=64"),
        ("beams_huge", &["--num-beams", "100000000"], "num_beams: 100000000 is outside"),
        ("temperature_nan", &["--num-beams", "1", "--temperature", "NaN"], "temperature: NaN"),
        ("temperature_inf", &["--num-beams", "1", "--temperature", "inf"], "temperature: inf"),
        ("top_p", &["--num-beams", "1", "--temperature", "1", "--top-p", "1.5"], "top_p: 1.5"),
        ("length_penalty", &["--length-penalty", "inf"], "length_penalty: inf"),
        (
            "max_new_tokens",
            &["--num-beams", "1", "--max-new-tokens", "5000"],
            "exceeds llama.max_position_embeddings",
        ),
    ];
    for (name, extra, want) in cases {
        let args: Vec<&str> = base.iter().chain(extra.iter()).copied().collect();
        expect_error(name, &args, &[], &[want]);
    }
    // An allowed-answer trie whose answers are shorter than min_length.
    let args: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--num-beams", "1", "--allowed", "yes.,no.", "--min-length", "20"])
        .collect();
    expect_error(
        "trie_min_length",
        &args,
        &[],
        &["min_length: 20 cannot be reached by the allowed answers"],
    );
}

#[test]
fn config_values_have_ranges_and_field_paths() {
    let d = scratch("cfg");
    let out = d.join("o.safetensors");
    let cases: [(&str, &[&str], serde_json::Value, &str); 5] = [
        (
            "type",
            &["vision", "layers"],
            "3".into(),
            r#"config.json: vision.layers: invalid type: string "3", expected usize"#,
        ),
        (
            "negative",
            &["llama", "num_hidden_layers"],
            (-2).into(),
            "llama.num_hidden_layers: invalid value: integer `-2`",
        ),
        ("zero_layers", &["vision", "layers"], 0.into(), "vision.layers: must be positive"),
        (
            "eps",
            &["llama", "rms_norm_eps"],
            (-1.0).into(),
            "llama.rms_norm_eps: -1 is not a finite positive number",
        ),
        (
            "std",
            &["vision", "image_std"],
            serde_json::json!([0.3, 0.0, 0.3]),
            "vision.image_std[1]: 0 is not",
        ),
    ];
    for (name, path, v, want) in cases {
        let mut cfg = tiny_config();
        let mut at = &mut cfg;
        for k in &path[..path.len() - 1] {
            at = &mut at[*k];
        }
        at[path[path.len() - 1]] = v;
        let m = model_dir(&format!("cfg_{name}"), &cfg.to_string(), None);
        expect_error(
            &format!("config_{name}"),
            &["inspect", "--model", s(&m), "--prompt", "x", "--out", s(&out)],
            &[],
            &[want],
        );
    }
}

#[test]
fn ids_that_overflow_the_official_type_are_errors() {
    let d = scratch("ranks");
    let p = d.join("visdial.json");
    let mut ranks: Vec<u64> = (1..=100).collect();
    ranks[0] = (1u64 << 32) + 1; // read as 1 if truncated to u32: a valid permutation
    std::fs::write(
        &p,
        serde_json::json!([{"image_id": 185565, "round_id": 6, "ranks": ranks}]).to_string(),
    )
    .unwrap();
    let root = shared().join("fixtures/datasets");
    let args = ["score", "--task", "visdial", "--data-root", s(&root), "--predictions", s(&p)];
    expect_error(
        "visdial_rank_overflow",
        &args,
        &[],
        &["[0].ranks[0]: 4294967297 does not fit a 32-bit integer"],
    );
}

// ---------------------------------------------------------------- class 4: numbers that are not numbers

#[test]
fn non_finite_values_are_errors_naming_their_origin() {
    let d = scratch("nan");
    // FID features with an infinity.
    let a = d.join("a.npy");
    let mut bytes = npy_claiming(2, 2);
    for x in [1.0f32, f32::INFINITY, 2.0, 3.0] {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(&a, &bytes).unwrap();
    expect_error(
        "fid_inf",
        &["metric", "fid", "--a", s(&a), "--b", s(&a)],
        &[],
        &["a.npy", "non-finite value inf at row 0, column 1"],
    );
    // Weights that make the logits NaN: the tiny model with its final norm set to NaN.
    let m = tiny_rewritten("nan_model", |name, _, data| {
        if name == "decoder.lm.model.norm.weight" {
            for c in data.chunks_exact_mut(4) {
                c.copy_from_slice(&f32::NAN.to_le_bytes());
            }
        }
    });
    let args = [
        "generate",
        "--model",
        s(&m),
        "--prompt",
        "a photo of",
        "--num-beams",
        "1",
        "--max-new-tokens",
        "2",
    ];
    expect_error("logits_nan", &args, &[], &["model logits at decoding step 0", "NaN"]);
}

// ---------------------------------------------------------------- class 5: external databases

#[test]
fn wordnet_folder_that_is_not_wordnet_30() {
    let d = scratch("wordnet");
    let wn = d.join("wn");
    std::fs::create_dir_all(&wn).unwrap();
    for pos in ["noun", "verb", "adj", "adv"] {
        std::fs::write(wn.join(format!("index.{pos}")), "dog n 1 0 1 0 00000000\n").unwrap();
        std::fs::write(wn.join(format!("data.{pos}")), "00000000 05 n 01 dog 0 000 | a dog\n")
            .unwrap();
        std::fs::write(wn.join(format!("{pos}.exc")), "").unwrap();
    }
    let input = d.join("wups.json");
    std::fs::write(&input, r#"[{"prediction": "dog", "answer": "dog"}]"#).unwrap();
    let args = ["metric", "wups", "--input", s(&input), "--wordnet", s(&wn)];
    expect_error(
        "wordnet_foreign",
        &args,
        &[],
        &["index.noun: 1 lemmas, WordNet 3.0 has 117798", "not WordNet 3.0"],
    );
}

// ---------------------------------------------------------------- class 6: one line, whatever RUST_BACKTRACE says

#[test]
fn errors_are_one_line_with_backtraces_enabled() {
    let d = scratch("backtrace");
    // A dtype candle refuses with `bail!`, which captures a backtrace when RUST_BACKTRACE is set.
    let m = tiny_rewritten("bt", |name, dtype, data| {
        if name == "visual.cls_token" {
            *dtype = safetensors::Dtype::I16;
            data.truncate(data.len() / 2);
        }
    });
    let out = d.join("o.safetensors");
    for bt in ["1", "full"] {
        expect_error(
            &format!("backtrace_{bt}"),
            &["inspect", "--model", s(&m), "--prompt", "x", "--out", s(&out)],
            &[("RUST_BACKTRACE", bt)],
            &["visual.cls_token", "unsupported dtype"],
        );
    }
    // A JSON type error in a result file names the field path.
    let p = d.join("caption.json");
    std::fs::write(&p, r#"{"images": [{"image_id": 1, "candidate": 3, "references": ["a"]}]}"#)
        .unwrap();
    expect_error(
        "json_type",
        &["metric", "caption", "--input", s(&p)],
        &[("RUST_BACKTRACE", "1")],
        &["caption.json", "candidate"],
    );
}

#[test]
fn info_messages_wait_for_the_chosen_log_level() {
    let d = scratch("log");
    let out = d.join("o.safetensors");
    let model = tiny();
    let args = ["inspect", "--model", s(&model), "--prompt", "x", "--out", s(&out)];
    let quiet = run_measured(&args, &[]);
    assert_eq!(quiet.code, Some(0), "{}", quiet.stderr);
    assert!(quiet.stderr.is_empty(), "default level printed: {}", quiet.stderr);
    let loud = run_measured(&args, &[("EMU_EVAL_LOG", "info")]);
    assert!(loud.stderr.contains("ignored 7 unused keys"), "{}", loud.stderr);
}

/// A YUV4MPEG2 stream whose header claims `w`x`h` frames, with one empty frame.
fn y4m_claiming(w: u32, h: u32) -> Vec<u8> {
    format!("YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\nFRAME\n").into_bytes()
}

#[test]
fn video_pixel_limit_from_stream_header() {
    // A data root whose first MSVD-QA test video (sample 10 → vid1301) claims 12000x12000 frames
    // (within FFmpeg's own size check, over ours); FFmpeg probes by content, not by `.avi`.
    let d = scratch("video");
    let src = shared().join("fixtures/datasets/msvd_qa");
    let root = d.join("data");
    let clips = root.join("msvd_qa/YouTubeClips");
    std::fs::create_dir_all(&clips).unwrap();
    for e in
        std::fs::read_dir(&src).unwrap().chain(std::fs::read_dir(src.join("YouTubeClips")).unwrap())
    {
        let p = e.unwrap().path();
        if p.is_file() {
            let rel = p.strip_prefix(&src).unwrap();
            std::fs::copy(&p, root.join("msvd_qa").join(rel)).unwrap();
        }
    }
    let model = tiny();
    let run = |root: &Path, out: &Path, env: &[(&str, &str)]| {
        let args = [
            "run",
            "--task",
            "msvd_qa",
            "--data-root",
            s(root),
            "--model",
            s(&model),
            "--limit",
            "1",
            "--output",
            s(out),
        ];
        let m = run_measured(&args, env);
        println!(
            "{}: exit {:?}, cpu {:?}, {} KB peak RSS: {}",
            out.display(),
            m.code,
            m.cpu,
            m.max_rss_kb,
            m.stderr.trim_end()
        );
        assert_eq!(m.code, Some(1), "{}", m.stderr);
        let line = std::fs::read_to_string(out.join("predictions.jsonl")).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(v["id"], "10");
        assert!(
            v["prediction"].is_null() && v["score"].is_null(),
            "a failed sample is not scored: {v}"
        );
        (m, v["error"].as_str().unwrap_or_default().to_string())
    };
    // The real clip under a 1,000-pixel limit (env): refused by its stated size.
    let (_, err) = run(&root, &d.join("env"), &[("EMU_EVAL_MAX_IMAGE_PIXELS", "1000")]);
    assert!(
        err.contains("-vZ3hQk9bLs_12_20.avi") && err.contains("exceeds the limit of 1000"),
        "{err}"
    );
    // The bomb under the default limit: refused before any frame buffer exists.
    std::fs::write(clips.join("-vZ3hQk9bLs_12_20.avi"), y4m_claiming(12_000, 12_000)).unwrap();
    let (m, err) = run(&root, &d.join("bomb"), &[]);
    assert!(err.contains("12000x12000") && err.contains("exceeds the limit of 89478485"), "{err}");
    assert!(m.stderr.contains("--max-image-pixels"), "{}", m.stderr);
    assert!(
        m.max_rss_kb > 0 && m.max_rss_kb < 2 * MAX_RSS_KB,
        "peak RSS {} KB (one 12000x12000 RGB frame is 432 MB)",
        m.max_rss_kb
    );
}

// ------------------------------------------------- no non-finite number in any output (issue 22)

/// A successful run whose stdout holds no `NaN`, `Infinity` or `inf` and, outside `allow_null`
/// keys, no `null`.
fn expect_finite_output(name: &str, args: &[&str], allow_null: &[&str]) -> serde_json::Value {
    let m = run_measured(args, &[]);
    assert_eq!(m.code, Some(0), "{name}: {}", m.stderr);
    for bad in ["NaN", "Infinity", "inf"] {
        assert!(!m.stdout.contains(bad), "{name}: {bad} in {}", m.stdout);
    }
    let v: serde_json::Value = serde_json::from_str(&m.stdout).expect("JSON");
    fn nulls(v: &serde_json::Value, key: &str, allow: &[&str], out: &mut Vec<String>) {
        match v {
            serde_json::Value::Null if !allow.contains(&key) => out.push(key.to_owned()),
            serde_json::Value::Array(a) => a.iter().for_each(|x| nulls(x, key, allow, out)),
            serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| nulls(x, k, allow, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    nulls(&v, "", allow_null, &mut found);
    assert!(found.is_empty(), "{name}: null at {found:?} in {}", m.stdout);
    v
}

fn write(dir: &Path, name: &str, v: &serde_json::Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p
}

/// VisDial: finite relevances whose float32 sums overflow (1.7e308, the issue's case) gave
/// `"ndcg": null` with exit 0; now a one-line error naming the file and round. Extreme but
/// accepted values give finite numbers.
#[test]
fn visdial_relevance_overflow_is_an_error_not_null() {
    use serde_json::json;
    let d = scratch("nonfinite_visdial");
    let round = |rel: serde_json::Value| {
        let r = json!({"ranks": [1, 2, 3], "gt_index": 0, "gt_relevance": rel});
        json!({ "rounds": [r] })
    };
    let f = write(&d, "overflow.json", &round(json!([1.7e308, 1.7e308, 0])));
    let args = ["metric", "visdial", "--input", s(&f)];
    expect_error(
        "visdial_overflow",
        &args,
        &[],
        &["overflow.json: rounds[0].gt_relevance: [0] = 1.7e308", "overflow"],
    );
    let f = write(&d, "tiny.json", &round(json!([1e-50, 0, 0])));
    let args = ["metric", "visdial", "--input", s(&f)];
    expect_error(
        "visdial_zero_f32",
        &args,
        &[],
        &["tiny.json: rounds[0].gt_relevance", "all values are 0 in float32"],
    );
    let f = write(&d, "empty.json", &json!({"rounds": []}));
    let args = ["metric", "visdial", "--input", s(&f)];
    expect_error("visdial_empty", &args, &[], &["empty.json: rounds: no rounds to score"]);
    let f = write(&d, "big.json", &round(json!([1e37, 1e37, 1e-40])));
    let v = expect_finite_output("visdial_big", &["metric", "visdial", "--input", s(&f)], &[]);
    assert!(v["ndcg"].as_f64().is_some_and(|x| x > 0.99), "{v}");
}

/// Generation with a temperature so small that logits / T overflows (1e-45) gave NaN
/// probabilities and an empty answer; the warper now works on `(x - max) / T`, so the draw is
/// the greedy token at every step.
#[test]
fn tiny_temperature_samples_the_greedy_answer() {
    let m = tiny();
    let base = ["generate", "--model", s(&m), "--prompt", "a photo of", "--num-beams", "1"];
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--max-new-tokens", "8", "--compact"]);
    let greedy = expect_finite_output("greedy", &args, &["score"]);
    args.extend(["--temperature", "1e-45", "--top-p", "0.9", "--seed", "3"]);
    let sampled = expect_finite_output("temperature_1e-45", &args, &["score"]);
    let ids = |v: &serde_json::Value| v["results"][0]["ids"].clone();
    assert!(ids(&greedy).as_array().is_some_and(|a| !a.is_empty()), "{greedy}");
    assert_eq!(ids(&sampled), ids(&greedy));
}

/// The other metric families on edge inputs they accept (empty or unanswerable predictions,
/// extreme answerability scores, zero-variance features): finite numbers, never null.
#[test]
fn metric_families_print_finite_numbers_on_edge_inputs() {
    use serde_json::json;
    let d = scratch("nonfinite_families");
    let vqa = write(
        &d,
        "vqa.json",
        &json!({"questions": [
            {"question_id": 1, "answers": vec!["unanswerable"; 10], "prediction": "",
             "answerable": 0, "answerable_pred": 1e308},
            {"question_id": 2, "answers": vec!["yes"; 10], "prediction": "yes",
             "answerable": 1, "answerable_pred": -1e308},
        ]}),
    );
    for variant in ["official", "emu", "okvqa", "vizwiz"] {
        let args = ["metric", "vqa", "--variant", variant, "--input", s(&vqa)];
        let v = expect_finite_output(&format!("vqa_{variant}"), &args, &[]);
        assert!(v["overall"].is_number(), "{v}");
    }
    let caption = write(
        &d,
        "caption.json",
        &json!({"images": [
            {"image_id": 1, "candidate": "", "references": ["..."]},
            {"image_id": 2, "candidate": "a a a a", "references": ["a"]},
        ]}),
    );
    let args = ["metric", "caption", "--input", s(&caption), "--per-image"];
    let v = expect_finite_output("caption", &args, &[]);
    assert!(v["corpus"]["CIDEr"].is_number(), "{v}");
    let wups = write(
        &d,
        "wups.json",
        &json!([{"prediction": "", "answer": ""}, {"prediction": "dog", "answer": "dog"}]),
    );
    expect_finite_output("wups", &["metric", "wups", "--input", s(&wups)], &[]);
    // Two identical rows: zero covariance, FID 0 by every route.
    let a = d.join("same.npy");
    tasks::metrics::npy::write_matrix(&a, 2, 3, &[1.0; 6], tasks::metrics::npy::Dtype::F64)
        .unwrap();
    let v = expect_finite_output("fid_zero", &["metric", "fid", "--a", s(&a), "--b", s(&a)], &[]);
    assert_eq!(v["fid"], 0.0);
}

/// `inspect` writes the logits of every position (prompt length x vocabulary): a long prompt
/// from a small input would write hundreds of MB. Above 256 MiB it refuses, before the forward
/// pass, unless `--full`; a short prompt is unaffected.
#[test]
fn inspect_output_is_bounded_unless_full() {
    let m = tiny();
    let d = scratch("inspect_bound");
    let out = d.join("t.safetensors");
    let long = "a ".repeat(2100); // ~2100 tokens x 32004 logits x 4 bytes > 256 MiB
    let args = ["inspect", "--model", s(&m), "--prompt", &long, "--out", s(&out)];
    expect_error("inspect_long", &args, &[], &["t.safetensors", "over inspect's limit", "--full"]);
    assert!(!out.exists(), "nothing written");
    let args = ["inspect", "--model", s(&m), "--prompt", "a photo", "--out", s(&out)];
    let r = run_measured(&args, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let len = std::fs::metadata(&out).unwrap().len();
    assert!(len > 0 && len < 256 << 20, "{len}");
}
