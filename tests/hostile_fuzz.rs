//! Property tests (proptest, stable Rust) of the parsers that read untrusted bytes: the pickle
//! reader, safetensors checkpoints, `.npy` headers, JSON result files and image headers. Each
//! property feeds mutated seeds (valid files with bytes replaced, inserted, deleted, truncated)
//! or structured random input, and requires: no panic, and an error that is one line.
//!
//! `cargo test --workspace` runs 256 fixed cases per property (a few seconds in all). To run
//! longer, with fresh random cases (a failure prints the minimal failing input):
//!
//! ```text
//! EMU_EVAL_FUZZ_CASES=200000 cargo test -p harness --release --test integration hostile_fuzz
//! ```
use std::path::{Path, PathBuf};
use tasks::metrics::result::Detail;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

use crate::common::shared;
use crate::hostile::{jpeg_claiming, npy_claiming, pk, png_claiming, safetensors_raw};
use models::emu::load::Checkpoint;
use models::pickle::{read_state_dict, GuardError, Limits};

/// `EMU_EVAL_FUZZ_CASES` cases per property: a fixed seed for the default 256 (the same cases in
/// every CI run), a random one when the variable is set (a longer run explores new inputs).
fn runner() -> TestRunner {
    let set = std::env::var("EMU_EVAL_FUZZ_CASES").ok().and_then(|v| v.parse().ok());
    let config =
        Config { cases: set.unwrap_or(256), failure_persistence: None, ..Config::default() };
    match set {
        Some(_) => TestRunner::new(config),
        None => {
            let rng = proptest::test_runner::TestRng::deterministic_rng(config.rng_algorithm);
            TestRunner::new_with_rng(config, rng)
        }
    }
}

/// One edit of a seed: replace, insert or delete the byte at an index.
#[derive(Debug, Clone)]
enum Edit {
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<Index>().prop_map(Edit::Delete),
    ]
}

/// A seed with up to 8 edits and an optional truncation.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(seeds),
        prop::collection::vec(edit(), 0..8),
        prop::option::of(any::<Index>()),
    )
        .prop_map(|(mut v, edits, cut)| {
            for e in edits {
                match e {
                    Edit::Set(i, b) if !v.is_empty() => {
                        let i = i.index(v.len());
                        v[i] = b;
                    }
                    Edit::Insert(i, b) => {
                        let i = i.index(v.len() + 1);
                        v.insert(i, b);
                    }
                    Edit::Delete(i) if !v.is_empty() => {
                        let i = i.index(v.len());
                        v.remove(i);
                    }
                    _ => {}
                }
            }
            if let Some(c) = cut {
                v.truncate(c.index(v.len() + 1));
            }
            v
        })
}

fn one_line(e: impl std::fmt::Display) -> Result<(), TestCaseError> {
    let s = e.to_string();
    prop_assert!(!s.contains('\n'), "multi-line error: {s}");
    prop_assert!(!s.is_empty());
    Ok(())
}

/// A scratch file per test thread.
fn scratch_file(tag: &str, ext: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("emu_fuzz_{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(format!("{tag}_{:?}.{ext}", std::thread::current().id()).replace(['(', ')'], ""))
}

fn fixture_pickle() -> Vec<u8> {
    use std::io::Read;
    let f = std::fs::File::open(shared().join("fixtures/emu-tiny/dtype_probe.pt")).unwrap();
    let mut z = zip::ZipArchive::new(f).unwrap();
    let mut bytes = Vec::new();
    z.by_name("dtype_probe/data.pkl").unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn fuzz_pickle_reader() {
    let seeds = vec![
        fixture_pickle(),
        pk::state_dict("w", "FloatStorage", 6, &[2, 3], &[3, 1]),
        pk::state_dict("w", "HalfStorage", 6, &[3, 2], &[1, 3]),
    ];
    let small = Limits {
        max_objects: 2000,
        max_memo: 1000,
        max_depth: 16,
        max_work: 20_000,
        ..Limits::DEFAULT
    };
    let strategy = prop_oneof![mutated(seeds), prop::collection::vec(any::<u8>(), 0..256)];
    runner()
        .run(&strategy, |bytes| {
            for limits in [Limits::DEFAULT, small] {
                match read_state_dict(&bytes, limits) {
                    Ok(tensors) => {
                        for (_, t) in tensors {
                            let n: usize = t.shape.iter().product();
                            prop_assert!(n == 0 || t.offset < t.storage.numel);
                        }
                    }
                    Err(GuardError::Other(at, m)) => {
                        prop_assert!(at <= bytes.len());
                        one_line(m)?;
                    }
                    Err(GuardError::Refused(m, c)) => one_line(format!("{m}.{c}"))?,
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn fuzz_safetensors_checkpoint() {
    let seeds = vec![
        safetensors_raw(
            r#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}}"#,
            &[0; 22],
        ),
        safetensors_raw(
            r#"{"__metadata__":{"k":"v"},"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#,
            &[1; 8],
        ),
    ];
    let path = scratch_file("st", "safetensors");
    runner()
        .run(&mutated(seeds), |bytes| {
            std::fs::write(&path, &bytes).unwrap();
            match Checkpoint::open(&path, None) {
                Ok(ck) => {
                    for key in ck.file_keys() {
                        match ck.file_dtype_shape(&key) {
                            Ok((_, shape)) => match ck.read_file_key(&key) {
                                Ok(t) => prop_assert_eq!(t.dims(), shape.as_slice()),
                                Err(e) => one_line(e)?,
                            },
                            Err(e) => one_line(e)?,
                        }
                    }
                }
                Err(e) => one_line(e)?,
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn fuzz_npy_headers() {
    let mut seeds = vec![npy_claiming(2, 3), npy_claiming(100_000, 100_000)];
    seeds.push(
        tasks::metrics::npy::encode_matrix(
            2,
            3,
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            tasks::metrics::npy::Dtype::F32,
        )
        .unwrap(),
    );
    seeds.push(
        tasks::metrics::npy::encode_matrix(3, 1, &[1.0, 2.0, 3.0], tasks::metrics::npy::Dtype::F64)
            .unwrap(),
    );
    runner()
        .run(&mutated(seeds), |bytes| {
            match tasks::metrics::npy::parse_matrix(&bytes) {
                Ok((rows, cols, data)) => prop_assert_eq!(rows * cols, data.len()),
                Err((_, m)) => one_line(m)?,
            }
            Ok(())
        })
        .unwrap();
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let text =
        prop::collection::vec(prop::sample::select(vec!['a', 'b', ' ', '.', '?', '1', 'é']), 0..6)
            .prop_map(|c| Value::from(c.into_iter().collect::<String>()));
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        Just(json!(1e308)),
        text,
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec(
                (prop::sample::select(vec!["a", "images", "ranks"]).prop_map(String::from), inner),
                0..4
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// `typed` most of the time, any JSON value otherwise.
fn mostly(typed: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![6 => typed, 1 => any_json()].boxed()
}

fn caption_file() -> impl Strategy<Value = Value> {
    let s = || {
        prop::collection::vec(prop::sample::select(vec!["a", "dog", "A", ".", " ", "-lrb-"]), 0..5)
            .prop_map(|w| Value::from(w.concat()))
    };
    let image = (
        mostly(any::<u32>().prop_map(Value::from)),
        mostly(s()),
        mostly(prop::collection::vec(s(), 0..3).prop_map(Value::from)),
    )
        .prop_map(|(id, c, r)| json!({"image_id": id, "candidate": c, "references": r}));
    mostly(prop::collection::vec(image, 0..4).prop_map(|v| json!({ "images": v })))
}

fn visdial_file() -> impl Strategy<Value = Value> {
    let round = (
        mostly(prop::collection::vec(0i64..12, 0..10).prop_map(Value::from)),
        mostly((0i64..12).prop_map(Value::from)),
        mostly(
            prop::collection::vec(
                prop_oneof![Just(0.0), Just(0.5), Just(1.0), -1.0f64..2.0],
                0..10,
            )
            .prop_map(Value::from),
        ),
    )
        .prop_map(|(r, g, rel)| json!({"ranks": r, "gt_index": g, "gt_relevance": rel}));
    mostly(prop::collection::vec(round, 0..3).prop_map(|v| json!({ "rounds": v })))
}

/// An error is one line that starts with the file's name.
fn check_result<T>(
    path: &Path,
    r: Result<T, tasks::input::InputError>,
) -> Result<(), TestCaseError> {
    if let Err(e) = r {
        one_line(&e)?;
        prop_assert!(e.to_string().starts_with(&path.display().to_string()), "{e}");
    }
    Ok(())
}

#[test]
fn fuzz_json_result_files() {
    let path = scratch_file("result", "json");
    runner()
        .run(&(caption_file(), visdial_file()), |(caption, visdial)| {
            std::fs::write(&path, caption.to_string()).unwrap();
            check_result(&path, tasks::metrics::caption::score_file(&path, Detail::PerSample))?;
            std::fs::write(&path, visdial.to_string()).unwrap();
            check_result(&path, tasks::metrics::visdial::score_file(&path, Detail::PerSample))?;
            Ok(())
        })
        .unwrap();
    // Broken text: mutated JSON bytes.
    let seeds =
        vec![br#"{"images": [{"image_id": 1, "candidate": "a dog", "references": ["a dog"]}]}"#
            .to_vec()];
    runner()
        .run(&mutated(seeds), |bytes| {
            std::fs::write(&path, &bytes).unwrap();
            check_result(&path, tasks::metrics::caption::score_file(&path, Detail::PerSample))
        })
        .unwrap();
}

#[test]
fn fuzz_image_headers() {
    // Keep any one decode small in this process (other tests here do not decode images).
    tasks::limits::IMAGE_PIXELS.set(1 << 22);
    let cat = std::fs::read(shared().join("fixtures/emu-tiny/cat.jpg")).unwrap();
    let seeds = vec![
        png_claiming(3, 2),
        png_claiming(5000, 5000),
        jpeg_claiming(4, 4),
        jpeg_claiming(60000, 60000),
        cat[..cat.len().min(2048)].to_vec(),
    ];
    runner()
        .run(&mutated(seeds), |bytes| {
            match tasks::media::image::decode_bytes(&bytes) {
                Ok(img) => prop_assert_eq!(img.data.len(), img.width * img.height * 3),
                Err(m) => one_line(m)?,
            }
            Ok(())
        })
        .unwrap();
}
