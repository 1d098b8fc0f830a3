//! Where model work runs in parallel: rayon's workers and candle's spinning pool.
//!
//! A rayon loop started from a thread outside the pool hands its work to the workers and puts the
//! caller to sleep until they finish; started from a worker ([`on_workers`]) it forks in place.
//! rayon's idle workers sleep soon, though, and a decoding step runs ~30 short loops (its GEMVs and
//! its attention), each then paying a wake-up: those run on the spinning pool
//! ([`spinning_chunks`]) instead, whose workers spin between loops. Both pools are sized by
//! `--threads`, and no result depends on which threads ran it.

/// Runs `f` on a worker of rayon's current pool (the current thread if it is one) and returns its
/// result. `f` must not wait for other work on the same pool (with one thread it would wait for
/// itself).
pub fn on_workers<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

/// Threads of the spinning pool: candle's barrier pool (its workers and the caller), sized by
/// `CANDLE_NUM_THREADS` or `RAYON_NUM_THREADS` when first used (`--threads` sets both).
pub fn spinning_threads() -> usize {
    candle_core::utils::barrier_pool().n_workers() + 1
}

/// Runs `f` over ranges covering `0..n` on the spinning pool, the caller taking a share; returns
/// when every range is done. Its workers spin a while after each loop before they sleep, so the
/// short loops of a decoding step (~30 per token: its GEMVs and attention) start without a
/// wake-up. Called from inside one of its own loops it runs `f(0..n)` in place.
pub fn spinning_chunks(n: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    candle_core::utils::barrier_pool().execute_chunked(n, f)
}

/// `f(i, piece)` for every `len`-long piece `i` of `out` (the last may be shorter), on the
/// spinning pool.
pub fn spinning_pieces_mut<T: Send>(out: &mut [T], len: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let (n, total) = (out.len().div_ceil(len.max(1)), out.len());
    let base = SendPtr(out.as_mut_ptr());
    spinning_chunks(n, |range| {
        for i in range {
            let start = i * len;
            let end = total.min(start + len);
            // SAFETY: `start..end` lies inside `out`, which outlives the loop, and each piece
            // index is handed to exactly one call, so no two calls touch the same element.
            let piece =
                unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
            f(i, piece);
        }
    });
}

/// A pointer handed to the pool's threads (see [`spinning_pieces_mut`]).
struct SendPtr<T>(*mut T);
// SAFETY: used only for the disjoint pieces of one loop (above).
unsafe impl<T: Send> Send for SendPtr<T> {}
unsafe impl<T: Send> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    fn get(&self) -> *mut T {
        self.0
    }
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

    /// Every piece is visited once with its index, the short last piece included, and the
    /// writes land where the index says.
    #[test]
    fn pieces_cover_the_slice_once() {
        for (n, len) in [(0, 4), (1, 4), (10, 3), (4096, 64), (100_000, 7)] {
            let mut v = vec![0u32; n];
            super::spinning_pieces_mut(&mut v, len, |i, piece| {
                for (j, x) in piece.iter_mut().enumerate() {
                    *x += (i * len + j) as u32 + 1;
                }
            });
            assert!(v.iter().enumerate().all(|(k, &x)| x == k as u32 + 1), "{n} by {len}");
        }
    }
}
