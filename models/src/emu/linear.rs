//! Linear layers and matmuls that also run in bf16 on the CPU.
//!
//! candle 0.11.1's CPU matmul (gemm) has no bf16 kernel. For bf16 on the CPU both operands are
//! widened to f32, multiplied and the product rounded back to bf16 — the numerics of a bf16
//! matmul with f32 accumulation, as under the reference's autocast.
use candle_core::{CpuStorage, DType, Result, Storage, Tensor};
use candle_nn::VarBuilder;
use gemm::Parallelism;
use std::sync::{Arc, OnceLock};

use super::gemv::Weights;

fn widen(t: &Tensor) -> bool {
    t.dtype() == DType::BF16 && t.device().is_cpu()
}

/// `a.matmul(b)`, through f32 for bf16 on the CPU.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if widen(a) {
        a.to_dtype(DType::F32)?.matmul(&b.to_dtype(DType::F32)?)?.to_dtype(DType::BF16)
    } else {
        a.matmul(b)
    }
}

/// `y = x·Wᵀ + b`, weight stored PyTorch-style (out, in).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
    /// For the GEMV: the weight's bf16 bits when every f32 of it is a bf16 value (a bf16
    /// checkpoint loaded as f32), made at the first GEMV of at most [`BF16_MAX_ROWS`] rows and
    /// shared by clones.
    packed: Arc<OnceLock<Packed>>,
}

/// A lossless half-size copy of an f32 weight, or none.
struct Packed(Option<Vec<u16>>);

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(w) => write!(f, "Packed(bf16 × {})", w.len()),
            None => write!(f, "Packed(none)"),
        }
    }
}

/// Most rows a GEMV takes the bf16 copy for: beyond, the GEMV is bound by arithmetic rather than
/// memory and widening costs more than the halved reads save (`peer gemv R 1024 2816 [bf16]`:
/// 1 row 20 vs 11 ms, 5 rows 25-28 vs 14-16, 16 rows 35-41 vs 30-34, 24 rows 39-49 vs 42).
const BF16_MAX_ROWS: usize = 16;

/// `EMU_EVAL_GEMV_BF16=off` keeps the GEMV on the f32 weights (A/B runs; the bits are the same).
fn packing_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("EMU_EVAL_GEMV_BF16").map_or(true, |v| v != "off"))
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias, packed: Arc::default() }
    }
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
    /// x (.., in) -> (.., out).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let inp = *dims.last().unwrap_or(&0);
        let out = self.weight.dim(0)?;
        let x2 = x.reshape(((), inp))?;
        if let Some(y) = self.forward_f32(&x2, out)? {
            return y.reshape(with_last(dims, out));
        }
        let y = matmul(&x2, &self.weight.t()?)?;
        self.finish(y, dims, out)
    }

    /// x (rows, in) -> (rows, out) in f32 on the CPU by one `gemm` call into a fresh buffer: the
    /// bias rows are written first and the product is accumulated onto them (as PyTorch's
    /// `addmm`), so there is neither a zeroed output nor a separate pass adding the bias. `None`
    /// for other dtypes, devices or layouts.
    fn forward_f32(&self, x: &Tensor, out: usize) -> Result<Option<Tensor>> {
        let all_f32 = [Some(x), Some(&self.weight), self.bias.as_ref()]
            .into_iter()
            .flatten()
            .all(|t| t.dtype() == DType::F32 && t.device().is_cpu());
        if !all_f32 {
            return Ok(None);
        }
        let (rows, inp) = x.dims2()?;
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = self.weight.storage_and_layout();
        let bias = self.bias.as_ref().map(|b| b.storage_and_layout());
        let (Some(x), Some(w)) = (f32_slice(&xs, xl), f32_slice(&ws, wl)) else {
            return Ok(None);
        };
        let b = match &bias {
            Some((bs, bl)) => match f32_slice(bs, bl) {
                Some(b) if b.len() == out => Some(b),
                _ => return Ok(None),
            },
            None => None,
        };
        if x.len() != rows * inp || w.len() != out * inp {
            return Ok(None);
        }
        let mut y: Vec<f32> = Vec::with_capacity(rows * out);
        if let Some(b) = b {
            for _ in 0..rows {
                y.extend_from_slice(b);
            }
        }
        let threads = candle_core::utils::get_num_threads();
        let par = if threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
        // SAFETY: x is (rows × inp) and w (out × inp), both row-major (checked lengths); the
        // destination has capacity rows × out, and is read (the bias rows) only when filled.
        // gemm writes every element, so the length can then be set.
        unsafe {
            gemm::gemm(
                rows,
                out,
                inp,
                y.as_mut_ptr(),
                1,
                out as isize,
                b.is_some(),
                x.as_ptr(),
                1,
                inp as isize,
                // Wᵀ (inp × out): element (k, j) is w[j·inp + k].
                w.as_ptr(),
                inp as isize,
                1,
                1.0,
                1.0,
                false,
                false,
                false,
                par,
            );
            y.set_len(rows * out);
        }
        Ok(Some(Tensor::from_vec(y, (rows, out), &candle_core::Device::Cpu)?))
    }

    /// The bias added to y (rows, out), reshaped to the input's leading dims `dims` with `out`
    /// last.
    fn finish(&self, y: Tensor, dims: Vec<usize>, out: usize) -> Result<Tensor> {
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        y.reshape(with_last(dims, out))
    }

    /// [`Linear::forward`] for few rows (a decoding step, a prompt): in f32 on the CPU through
    /// [`super::gemv`], on every core, each row's outputs bit-identical whatever the number of
    /// rows (so batch 1 and batch 8 decode alike); otherwise `forward`.
    pub fn forward_decode(&self, x: &Tensor) -> Result<Tensor> {
        let [y] = forward_decode_many([self], x)?;
        Ok(y)
    }
}

/// [`Linear::forward_decode`] of every layer on the same `x`, the products in one parallel loop
/// (a layer's q, k, v or gate, up): each output as `forward_decode` gives it alone.
pub fn forward_decode_many<const N: usize>(ls: [&Linear; N], x: &Tensor) -> Result<[Tensor; N]> {
    let f32_cpu = |t: &Tensor| t.dtype() == DType::F32 && t.device().is_cpu();
    if !f32_cpu(x) || ls.iter().any(|l| !f32_cpu(&l.weight)) {
        return each(ls, |l| l.forward(x));
    }
    let dims = x.dims().to_vec();
    let inp = *dims.last().unwrap_or(&0);
    let rows = x.elem_count() / inp.max(1);
    let xs = x.flatten_all()?.to_vec1::<f32>()?;
    let guards: Vec<_> = ls.iter().map(|l| l.weight.storage_and_layout()).collect();
    let mut ws = Vec::with_capacity(N);
    for (l, (storage, layout)) in ls.iter().zip(&guards) {
        let Some(w) = f32_slice(storage, layout) else {
            drop(ws);
            drop(guards);
            return each(ls, |l| l.forward(x));
        };
        let packed = (rows <= BF16_MAX_ROWS).then(|| {
            l.packed.get_or_init(|| {
                Packed(if packing_enabled() { super::gemv::bf16_exact(w) } else { None })
            })
        });
        let w = match packed.and_then(|p| p.0.as_deref()) {
            Some(p) => Weights::Bf16(p),
            None => Weights::F32(w),
        };
        ws.push((w, l.weight.dim(0)?));
    }
    let mut ys = super::gemv::gemv_many(&xs, rows, &ws, inp).into_iter();
    drop(ws);
    drop(guards);
    each(ls, |l| {
        let out = l.weight.dim(0)?;
        let y = Tensor::from_vec(ys.next().unwrap_or_default(), (rows, out), x.device())?;
        l.finish(y, dims.clone(), out)
    })
}

/// `f` of each layer, in order.
pub(crate) fn each<const N: usize>(
    ls: [&Linear; N],
    mut f: impl FnMut(&Linear) -> Result<Tensor>,
) -> Result<[Tensor; N]> {
    let ys = ls.iter().map(|l| f(l)).collect::<Result<Vec<_>>>()?;
    ys.try_into().map_err(|_| candle_core::Error::Msg("forward_decode_many: count".into()))
}

/// `dims` with the last replaced by `out`.
fn with_last(mut dims: Vec<usize>, out: usize) -> Vec<usize> {
    if let Some(last) = dims.last_mut() {
        *last = out;
    }
    dims
}

/// The elements of a contiguous f32 CPU tensor.
fn f32_slice<'a>(storage: &'a Storage, layout: &candle_core::Layout) -> Option<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(v)), Some((start, end))) => Some(&v[start..end]),
        _ => None,
    }
}

/// `vb.weight` (out, in) and `vb.bias` (out).
pub fn linear(inp: usize, out: usize, vb: VarBuilder) -> Result<Linear> {
    Ok(Linear::new(vb.get((out, inp), "weight")?, Some(vb.get(out, "bias")?)))
}

/// `vb.weight` (out, in), no bias.
pub fn linear_no_bias(inp: usize, out: usize, vb: VarBuilder) -> Result<Linear> {
    Ok(Linear::new(vb.get((out, inp), "weight")?, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn weight(out: usize, inp: usize, bf16_values: bool) -> Tensor {
        let v: Vec<f32> = crate::test_data::uniform(out * inp, 12, -0.5, 0.5)
            .into_iter()
            .map(|v| if bf16_values { f32::from_bits(v.to_bits() & 0xFFFF_0000) } else { v })
            .collect();
        Tensor::from_vec(v, (out, inp), &Device::Cpu).unwrap()
    }

    /// A weight of bf16 values is copied to bf16 at the first decoding call and decodes with the
    /// bits of the f32 GEMV; any other weight is not copied. Clones share the copy.
    #[test]
    fn bf16_valued_weights_decode_from_a_half_size_copy() {
        let (out, inp) = (203, 1027);
        let x = Tensor::from_vec(
            crate::test_data::uniform(3 * inp, 13, -1.0, 1.0),
            (3, inp),
            &Device::Cpu,
        )
        .unwrap();
        for bf16_values in [true, false] {
            let l = Linear::new(weight(out, inp, bf16_values), None);
            let clone = l.clone();
            let y = l.forward_decode(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let w = l.weight().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let xs = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(y, super::super::gemv::gemv(&xs, 3, &w, out, inp), "bf16 {bf16_values}");
            let copied = clone.packed.get().and_then(|p| p.0.as_ref()).map(Vec::len);
            let want = (bf16_values && packing_enabled()).then_some(out * inp);
            assert_eq!(copied, want, "bf16 values {bf16_values}");
        }
    }
}
