//! Run-time dispatch of plain loops to the widest vector instructions the CPU has.
//!
//! [`widest!`] compiles one function body three times: for AVX-512F (with AVX2 and FMA), for
//! AVX2 + FMA, and for the baseline target, and picks one per call from the detected features.
//! The body is an `#[inline(always)]` function, so that the compiler vectorises it inside each
//! `#[target_feature]` copy (a closure handed to such a function is not inlined and keeps the
//! baseline's SSE2 code). Rust never contracts `a * b + c` into a fused multiply-add, so the three
//! copies perform the same operations on each element and give the same bits.

/// This CPU runs AVX-512F, AVX2 and FMA instructions.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512() -> bool {
    std::is_x86_feature_detected!("avx512f") && has_avx2_fma()
}

/// This CPU runs AVX2 and FMA instructions.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2_fma() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// `widest! { fn name(a: A, b: B) -> R { body } }` defines `name`, which runs `body` compiled
/// for the widest vector instructions this CPU has (see the module doc). Arguments are plain
/// identifiers.
macro_rules! widest {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn imp($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    imp($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    imp($($arg),*)
                }
                if $crate::simd::has_avx512() {
                    // SAFETY: AVX-512F, AVX2 and FMA were detected.
                    return unsafe { avx512($($arg),*) };
                }
                if $crate::simd::has_avx2_fma() {
                    // SAFETY: AVX2 and FMA were detected.
                    return unsafe { avx2($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    };
}
pub(crate) use widest;

#[cfg(test)]
mod tests {
    widest! {
        /// A loop the compiler vectorises: the three copies must agree bit for bit.
        fn scaled_sums(x: &[f32], y: &mut [f32], a: f32) {
            for (o, v) in y.iter_mut().zip(x) {
                *o = *o * a + v / 3.0;
            }
        }
    }

    #[test]
    fn every_copy_gives_the_baseline_bits() {
        let x: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin() * 1e3).collect();
        let start: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut want = start.clone();
        for (o, v) in want.iter_mut().zip(&x) {
            *o = *o * 1.7 + v / 3.0;
        }
        let mut got = start.clone();
        scaled_sums(&x, &mut got, 1.7);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));
    }
}
