//! A `Conv2d` layer like candle-nn's (weight `(cout, cin, k, k)`, optional bias, same checkpoint
//! keys) whose forward runs through [`Conv2dGemm`] on contiguous float32 CPU tensors.
use std::sync::{Arc, OnceLock};

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::winograd::{transform_weights, Winograd3x3};
use super::{Conv2dGemm, Epilogue};

#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    /// The bias as float32 values for the GEMM path's epilogue.
    bias_f32: Option<Vec<f32>>,
    stride: usize,
    padding: usize,
    /// The weight's Winograd transform, made on first use (3×3, stride 1, padding 1 only).
    winograd: Arc<OnceLock<Vec<f32>>>,
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
        Ok(Self { weight, bias, bias_f32, stride, padding, winograd: Arc::default() })
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

/// Fewest input and output channels, and output positions, for which the Winograd path is
/// taken. `peer conv` (batch 2, best of 5) Winograd vs im2col: 64 channels at 64² 4.2 vs
/// 4.0 ms; 320 at 64² 32 vs 52 ms, at 16² 2.8 vs 5.3 ms; 1280 at 16² 28 vs 57 ms, at 8² 23 vs
/// 16 ms (too few tiles for the GEMMs); 128 at 256² 133 vs 165 ms.
const WINOGRAD_MIN_CHANNELS: usize = 128;
const WINOGRAD_MIN_POSITIONS: usize = 256;

impl Conv2d {
    /// Whether an (n, cin, h, w) input of this convolution would take the Winograd path (given a
    /// contiguous f32 CPU input).
    fn winograd_shape(&self, h: usize, w: usize) -> bool {
        let k = self.weight.dims();
        super::winograd_enabled()
            && self.stride == 1
            && self.padding == 1
            && k.len() == 4
            && k[2..] == [3, 3]
            && k[0].min(k[1]) >= WINOGRAD_MIN_CHANNELS
            && h * w >= WINOGRAD_MIN_POSITIONS
            && self.weight.dtype() == DType::F32
            && self.weight.device().is_cpu()
    }

    /// Whether this convolution of `xs` takes the Winograd path.
    pub(super) fn winograd_applies(&self, xs: &Tensor) -> Result<bool> {
        Ok(xs.rank() == 4
            && self.winograd_shape(xs.dim(2)?, xs.dim(3)?)
            && Conv2dGemm::new(1, (1, 1), 1).accepts(xs, &self.weight)?)
    }

    /// Makes the Winograd weight transform now if an (h, w) input will use it, so that the
    /// first forward does not pay for it (a pipeline calls this once before its loop).
    pub fn prepare(&self, h: usize, w: usize) -> Result<()> {
        if self.winograd_shape(h, w) {
            self.transformed()?;
        }
        Ok(())
    }

    /// The weight's Winograd transform, made on first use.
    fn transformed(&self) -> Result<&[f32]> {
        if let Some(u) = self.winograd.get() {
            return Ok(u);
        }
        let (cout, cin) = (self.weight.dim(0)?, self.weight.dim(1)?);
        // Read in place (no copy of the weight): contiguous f32 on the CPU, else an error.
        let (storage, layout) = self.weight.storage_and_layout();
        let candle_core::Storage::Cpu(cpu) = &*storage else {
            candle_core::bail!("winograd: the weight is not on the CPU")
        };
        let w = crate::contiguous_f32(cpu, layout, "winograd")?;
        Ok(self.winograd.get_or_init(|| transform_weights(w, cout, cin)))
    }

    /// Whether the Winograd transform has been made.
    #[cfg(test)]
    pub(crate) fn is_transformed(&self) -> bool {
        self.winograd.get().is_some()
    }

    fn forward_winograd(&self, xs: &Tensor) -> Result<Tensor> {
        let op = Winograd3x3 { u: self.transformed()?, bias: self.bias_f32.as_deref() };
        xs.apply_op2_no_bwd(&self.weight, &op)
    }
}

impl Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if self.winograd_applies(xs)? {
            return self.forward_winograd(xs);
        }
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
