//! Root-mean-square layer norm shared by the causal former (`T5LayerNorm`) and LLaMA (`LlamaRMSNorm`):
//! `w · x / sqrt(mean(x²) + eps)`, variance in f32, no mean subtraction, no bias.
use candle_core::{DType, Result, Tensor, D};
use candle_nn::VarBuilder;

#[derive(Debug, Clone)]
pub(crate) struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    pub(crate) fn new(d: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self { weight: vb.get(d, "weight")?, eps })
    }

    /// (.., d) → (.., d); normalised in f32, cast back to the input dtype, times weight.
    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let dtype = xs.dtype();
        let x = xs.to_dtype(DType::F32)?;
        let var = x.sqr()?.mean_keepdim(D::Minus1)?;
        let x = x.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        x.to_dtype(dtype)?.broadcast_mul(&self.weight)
    }
}
