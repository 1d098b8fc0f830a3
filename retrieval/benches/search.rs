//! RICES search: k = 8 nearest of 5,000 queries in pools of 5,000 × 1,024 and 100,000 × 1,024
//! random unit vectors, exact matmul backend against faiss `IndexFlatIP` in the same run, plus the
//! old per-query scan (`top_k_batch`) for scale. Asserts both backends return the same neighbours.
//!
//! `cargo bench -p retrieval --features faiss --bench search` (without the feature: exact and scan
//! only). Env: SEARCH_BENCH_POOLS (comma list, default 5000,100000), SEARCH_BENCH_QUERIES, SEARCH_BENCH_K.
use std::time::Instant;

use retrieval::{top_k_batch, Backend, Features, SearchIndex};
use tasks::rng::SplitMix64;

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn unit_rows(rows: usize, dim: usize, seed: u64) -> Features {
    let mut rng = SplitMix64::new(seed);
    let mut f = Features::new(dim, (0..rows * dim).map(|_| rng.uniform() as f32 - 0.5).collect())
        .expect("finite");
    f.normalize();
    f
}

/// Best of `runs` wall-clock seconds, and the last result.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        out = Some(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, out.expect("at least one run"))
}

fn main() {
    let pools: Vec<usize> = std::env::var("SEARCH_BENCH_POOLS")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![5_000, 100_000]);
    let nq = env_usize("SEARCH_BENCH_QUERIES", 5_000);
    let k = env_usize("SEARCH_BENCH_K", 8);
    let dim = 1024;
    let threads = rayon::current_num_threads();
    println!(
        "queries {nq}, k {k}, dim {dim}, rayon threads {threads}, faiss feature: {}",
        cfg!(feature = "faiss")
    );
    println!("| pool | exact build | exact search | faiss Flat build | faiss Flat search | exact / faiss | per-query scan |");
    println!("|---|---|---|---|---|---|---|");
    let queries = unit_rows(nq, dim, 2);
    let none = vec![Vec::new(); nq];
    for &n in &pools {
        let pool = unit_rows(n, dim, 1);
        let runs = if n > 20_000 { 1 } else { 3 };
        let (eb, exact) =
            time(1, || SearchIndex::build(pool.clone(), &Backend::Exact).expect("exact index"));
        let (es, exact_hits) =
            time(runs, || exact.search(&queries, k, &none).expect("exact search"));
        let (fb, fs, ratio) = if cfg!(feature = "faiss") {
            let flat = Backend::Faiss { factory: "Flat".into() };
            let (fb, faiss) =
                time(1, || SearchIndex::build(pool.clone(), &flat).expect("faiss index"));
            let (fs, faiss_hits) =
                time(runs, || faiss.search(&queries, k, &none).expect("faiss search"));
            assert_eq!(faiss_hits, exact_hits, "faiss and exact neighbours differ");
            (format!("{fb:.3} s"), format!("{fs:.3} s"), format!("{:.2}", es / fs))
        } else {
            ("—".into(), "—".into(), "—".into())
        };
        // The scan is slow on big pools: time 500 queries and scale.
        let sub =
            Features::new(dim, queries.as_slice()[..500.min(nq) * dim].to_vec()).expect("finite");
        let (ss, _) = time(1, || top_k_batch(&pool, &sub, k).expect("scan"));
        let scan = ss * nq as f64 / sub.rows() as f64;
        println!("| {n} × {dim} | {eb:.3} s | {es:.3} s | {fb} | {fs} | {ratio} | {scan:.2} s (from {} queries) |", sub.rows());
    }
}
