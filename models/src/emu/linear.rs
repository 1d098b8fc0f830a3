//! Linear layers and matmuls that also run in bf16 on the CPU.
//!
//! candle 0.11.1's CPU matmul (gemm) has no bf16 kernel. For bf16 on the CPU both operands are
//! widened to f32, multiplied and the product rounded back to bf16 — the numerics of a bf16
//! matmul with f32 accumulation, as under the reference's autocast.
use candle_core::{DType, Result, Tensor};
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
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let mut shape = dims;
        if let Some(last) = shape.last_mut() {
            *last = out;
        }
        y.reshape(shape)
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
