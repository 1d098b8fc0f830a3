//! Linear layers and matmuls that also run in bf16 on the CPU.
//!
//! candle 0.11.1's CPU matmul (gemm) has no bf16 kernel. For bf16 on the CPU both operands are
//! widened to f32, multiplied and the product rounded back to bf16 — the numerics of a bf16
//! matmul with f32 accumulation, as under the reference's autocast.
use candle_core::{CpuStorage, DType, Result, Storage, Tensor};
use candle_nn::VarBuilder;

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
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
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
        let y = matmul(&x2, &self.weight.t()?)?;
        self.finish(y, dims, out)
    }

    /// The bias added to y (rows, out), reshaped to the input's leading dims `dims` with `out`
    /// last.
    fn finish(&self, y: Tensor, mut dims: Vec<usize>, out: usize) -> Result<Tensor> {
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        if let Some(last) = dims.last_mut() {
            *last = out;
        }
        y.reshape(dims)
    }

    /// [`Linear::forward`] for the rows of a decoding step: in f32 on the CPU through
    /// [`super::gemv`], on every core, each row's outputs bit-identical whatever the number of
    /// rows (so batch 1 and batch 8 decode alike); otherwise `forward`.
    pub fn forward_decode(&self, x: &Tensor) -> Result<Tensor> {
        if x.dtype() != DType::F32 || self.weight.dtype() != DType::F32 || !x.device().is_cpu() {
            return self.forward(x);
        }
        let dims = x.dims().to_vec();
        let inp = *dims.last().unwrap_or(&0);
        let out = self.weight.dim(0)?;
        let rows = x.elem_count() / inp.max(1);
        let xs = x.flatten_all()?.to_vec1::<f32>()?;
        let y = {
            let (storage, layout) = self.weight.storage_and_layout();
            let (Storage::Cpu(CpuStorage::F32(w)), Some((start, end))) =
                (&*storage, layout.contiguous_offsets())
            else {
                drop(storage);
                return self.forward(x);
            };
            super::gemv::gemv(&xs, rows, &w[start..end], out, inp)
        };
        let y = Tensor::from_vec(y, (rows, out), x.device())?;
        self.finish(y, dims, out)
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
