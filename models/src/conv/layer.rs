//! A `Conv2d` layer like candle-nn's (weight `(cout, cin, k, k)`, optional bias, same checkpoint
//! keys) whose forward runs through [`Conv2dGemm`] on contiguous float32 CPU tensors.
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::{Conv2dGemm, Epilogue};

#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    /// The bias as float32 values for the GEMM path's epilogue.
    bias_f32: Option<Vec<f32>>,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    pub fn new(
        weight: Tensor,
        bias: Option<Tensor>,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let bias_f32 = bias
            .as_ref()
            .map(|b| b.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>())
            .transpose()?;
        Ok(Self { weight, bias, bias_f32, stride, padding })
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

/// `candle_nn::conv2d` (square kernel, groups 1, dilation 1, with bias) as a [`Conv2d`].
pub fn conv2d(
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    vb: VarBuilder,
) -> Result<Conv2d> {
    let weight = vb.get((cout, cin, kernel, kernel), "weight")?;
    let bias = vb.get(cout, "bias")?;
    Conv2d::new(weight, Some(bias), stride, padding)
}

impl Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut op = Conv2dGemm::new(self.stride, (self.padding, self.padding), 1);
        if op.accepts(xs, &self.weight)? {
            if let Some(b) = &self.bias_f32 {
                op.epilogue = Epilogue::Bias(b);
            }
            return xs.apply_op2_no_bwd(&self.weight, &op);
        }
        // candle-nn's own forward.
        let ys = xs.conv2d(&self.weight, self.padding, self.stride, 1, 1)?;
        match &self.bias {
            Some(b) => ys.broadcast_add(&b.reshape((1, (), 1, 1))?),
            None => Ok(ys),
        }
    }
}
