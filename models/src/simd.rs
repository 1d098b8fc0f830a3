//! Run-time choice of the widest vector instructions for plain loops: [`widest`] runs a closure
//! inside a function compiled for AVX-512 (or AVX2 + FMA) when the CPU has them, so loops the
//! compiler vectorises in it use 16 (or 8) f32 lanes instead of SSE2's 4. Floating-point results
//! are the same either way (Rust never contracts a multiply and an add into an FMA by itself).

/// `f()`, compiled for the widest instruction set this CPU has (detected once, cached by std).
#[inline(always)]
pub(crate) fn widest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F detected (the AVX2 and FMA it implies are enabled with it).
            return unsafe { avx512(f) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA detected.
            return unsafe { avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
