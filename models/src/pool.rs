//! Running model work on rayon's worker threads.
//!
//! A parallel loop started from a thread outside the pool hands its work to the workers and puts
//! the caller to sleep until they finish: a decoding step runs about sixty such loops (one per
//! GEMV), each paying a wake-up of the workers and of the caller. Started from a worker, the same
//! loop forks in place: the calling worker takes a share, the other workers steal the rest, and
//! nobody sleeps between loops. The thread count and every result are unchanged.

/// Runs `f` on a worker of rayon's current pool (the current thread if it is one) and returns its
/// result. `f` must not wait for other work on the same pool (with one thread it would wait for
/// itself).
pub fn on_workers<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

#[cfg(test)]
mod tests {
    use rayon::prelude::*;

    /// The closure runs on a worker of the pool it is called from, parallel loops inside it
    /// complete, and a one-thread pool runs it too (no wait on itself).
    #[test]
    fn runs_on_a_worker_and_loops_complete() {
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let (index, sum) = pool.install(|| {
                super::on_workers(|| {
                    let s: u64 = (0..10_000u64).into_par_iter().sum();
                    (rayon::current_thread_index(), s)
                })
            });
            assert!(index.is_some(), "{threads} threads: not on a worker");
            assert_eq!(sum, 49_995_000);
        }
        // From outside any pool: injected into the global pool.
        let index = super::on_workers(rayon::current_thread_index);
        assert!(index.is_some());
    }
}
