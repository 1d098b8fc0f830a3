//! `avg_pool2d(3, stride 1, padding 1, count_include_pad=False)` on contiguous float32 CPU
//! tensors in one pass (candle's tensor ops need nine shifted copies and eight adds).
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape};
use rayon::prelude::*;

/// Window sums in torch's order (row by row, skipped taps are the padding's exact zeros) divided
/// by the number of in-image pixels; bit for bit what `avg_pool_3x3_same`'s tensor form gives.
pub(super) struct AvgPool3x3Same;

impl CustomOp1 for AvgPool3x3Same {
    fn name(&self) -> &'static str {
        "avg-pool-3x3-same"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = crate::contiguous_f32(s, l, self.name())?;
        let (n, c, h, w) = l.shape().dims4()?;
        let mut out = vec![0f32; n * c * h * w];
        if h * w > 0 {
            let span = |i: usize, len: usize| 3 - usize::from(i == 0) - usize::from(i + 1 == len);
            out.par_chunks_mut(h * w).zip(x.par_chunks(h * w)).for_each(|(o, p)| {
                for i in 0..h {
                    for j in 0..w {
                        let mut s = 0f32;
                        for y in i.saturating_sub(1)..(i + 2).min(h) {
                            for xx in j.saturating_sub(1)..(j + 2).min(w) {
                                s += p[y * w + xx];
                            }
                        }
                        o[i * w + j] = s / (span(i, h) * span(j, w)) as f32;
                    }
                }
            });
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, h, w))))
    }
}
