//! An official PyTorch checkpoint (zip pickle, checked for foreign globals) to safetensors with
//! the same keys, in the stored dtype unless a cast is asked for. Tensors are streamed one at a
//! time into the output, so a 27 GB checkpoint needs memory for its largest tensor only.
use std::borrow::Cow;
use std::sync::Mutex;

use candle_core::{DType, Tensor};
use safetensors::View;

use models::emu::load::Checkpoint;

/// One output tensor, read from the checkpoint only when the writer asks for its bytes.
struct LazyTensor<'a> {
    ck: &'a Checkpoint,
    key: String,
    shape: Vec<usize>,
    dtype: DType,
    error: &'a Mutex<Option<String>>,
}

impl LazyTensor<'_> {
    fn load(&self) -> candle_core::Result<Tensor> {
        let t = self.ck.read_file_key(&self.key)?;
        if t.dims() != self.shape.as_slice() {
            candle_core::bail!("{}: shape changed while reading", self.key);
        }
        t.to_dtype(self.dtype)
    }
}

fn st_dtype(d: DType) -> anyhow::Result<safetensors::Dtype> {
    Ok(match d {
        DType::F32 => safetensors::Dtype::F32,
        DType::F16 => safetensors::Dtype::F16,
        DType::BF16 => safetensors::Dtype::BF16,
        DType::F64 => safetensors::Dtype::F64,
        DType::U8 => safetensors::Dtype::U8,
        DType::I64 => safetensors::Dtype::I64,
        other => anyhow::bail!("unsupported dtype {other:?}"),
    })
}

impl View for LazyTensor<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        st_dtype(self.dtype).unwrap_or(safetensors::Dtype::F32)
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        match self.load() {
            Ok(t) => Cow::Owned(View::data(&t).into_owned()),
            Err(e) => {
                if let Ok(mut slot) = self.error.lock() {
                    slot.get_or_insert_with(|| format!("{}: {e}", self.key));
                }
                Cow::Owned(vec![0u8; self.data_len()])
            }
        }
    }
    fn data_len(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size_in_bytes()
    }
}

/// Converts the checkpoint `weights` into the safetensors file `out` (floating tensors cast to
/// `cast` when given); returns the number of tensors.
pub fn convert(
    weights: &std::path::Path,
    out: &std::path::Path,
    cast: Option<DType>,
) -> anyhow::Result<usize> {
    let ck = Checkpoint::open(weights, None)?;
    let error = Mutex::new(None);
    let mut tensors = Vec::new();
    for key in ck.file_keys() {
        let (stored, shape) = ck.file_dtype_shape(&key)?;
        let dtype = match cast {
            Some(d) if stored.is_float() => d,
            _ => stored,
        };
        st_dtype(dtype).map_err(|e| anyhow::anyhow!("{}: {key}: {e}", weights.display()))?;
        tensors.push((key.clone(), LazyTensor { ck: &ck, key, shape, dtype, error: &error }));
    }
    let n = tensors.len();
    // Tensors are views checked against their stored bytes, but several views may share one
    // storage: bound the output so a small file cannot write a large one.
    let input = std::fs::metadata(weights).map(|m| m.len()).unwrap_or(0);
    let output: u64 = tensors.iter().map(|(_, t)| t.data_len() as u64).sum();
    let bound = input.saturating_mul(4).saturating_add(1 << 20);
    if output > bound {
        anyhow::bail!(
            "{}: the tensors hold {output} bytes, more than 4 times the file's {input} bytes (views sharing a storage?); refusing to write {}",
            weights.display(),
            out.display()
        );
    }
    safetensors::serialize_to_file(tensors, None, out)
        .map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
    if let Some(e) = error.lock().ok().and_then(|mut s| s.take()) {
        let _ = std::fs::remove_file(out);
        anyhow::bail!("{}: {e}", weights.display());
    }
    Ok(n)
}
