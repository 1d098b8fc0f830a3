//! Resource limits checked from headers before anything large is allocated.
//!
//! Each limit has a default, an environment variable, and a process-wide setter the binary's
//! global flags call. A limit of 0 means "no limit".
use std::sync::atomic::{AtomicU64, Ordering};

/// One configurable limit.
pub struct Limit {
    /// Environment variable that sets it.
    pub env: &'static str,
    /// Command-line flag that sets it (for error messages).
    pub flag: &'static str,
    pub default: u64,
    value: AtomicU64,
}

/// Sentinel for "not set yet: read the environment".
const UNSET: u64 = u64::MAX;

impl Limit {
    const fn new(env: &'static str, flag: &'static str, default: u64) -> Self {
        Limit { env, flag, default, value: AtomicU64::new(UNSET) }
    }

    /// The flag's value if set, else the environment's, else the default.
    pub fn get(&self) -> u64 {
        let v = self.value.load(Ordering::Relaxed);
        if v != UNSET {
            return v;
        }
        let v = std::env::var(self.env)
            .ok()
            .and_then(|s| s.trim().replace('_', "").parse::<u64>().ok());
        let v = v.unwrap_or(self.default);
        self.value.store(v, Ordering::Relaxed);
        v
    }

    pub fn set(&self, v: u64) {
        self.value.store(v.min(UNSET - 1), Ordering::Relaxed);
    }

    /// `Err` naming the limit and how to raise it when `n` exceeds it.
    pub fn check(&self, n: u64, what: &str) -> Result<(), LimitExceeded> {
        let max = self.get();
        if max != 0 && n > max {
            return Err(LimitExceeded {
                what: what.to_owned(),
                max,
                flag: self.flag,
                env: self.env,
            });
        }
        Ok(())
    }
}

/// Pixels of one decoded image or video frame. Pillow's `MAX_IMAGE_PIXELS` default
/// (`1024 * 1024 * 1024 // 4 // 3`, about 89.5 megapixels).
pub static IMAGE_PIXELS: Limit =
    Limit::new("EMU_EVAL_MAX_IMAGE_PIXELS", "--max-image-pixels", 89_478_485);

/// Feature columns of an FID matrix (its covariance needs `8 * cols^2` bytes, several times
/// over during the eigendecomposition). 8192 columns: 512 MiB per covariance matrix.
pub static FID_FEATURES: Limit =
    Limit::new("EMU_EVAL_MAX_FID_FEATURES", "--max-fid-features", 8192);

/// A value over one of the limits, with the flag and variable that raise it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} exceeds the limit of {max} (raise it with {flag} or {env})")]
pub struct LimitExceeded {
    pub what: String,
    pub max: u64,
    pub flag: &'static str,
    pub env: &'static str,
}

/// Width × height of an image, checked against [`IMAGE_PIXELS`].
pub fn check_image_size(width: u64, height: u64) -> Result<(), LimitExceeded> {
    let px = width.saturating_mul(height);
    IMAGE_PIXELS.check(px, &format!("image size {width}x{height} ({px} pixels)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_reads_default_flag_and_zero() {
        let l = Limit::new("EMU_EVAL_TEST_LIMIT_UNSET_VAR", "--x", 10);
        assert_eq!(l.get(), 10);
        assert!(l.check(10, "n").is_ok());
        let e = l.check(11, "n 11").unwrap_err().to_string();
        assert!(
            e.contains("n 11 exceeds the limit of 10")
                && e.contains("--x")
                && e.contains("EMU_EVAL_TEST_LIMIT_UNSET_VAR")
        );
        l.set(0);
        assert!(l.check(u64::MAX - 1, "n").is_ok());
    }
}
