//! `--dtype` and `--device` values.
use candle_core::{DType, Device};

/// Parses a `--dtype` value: `f32`, `bf16` or `f16`.
pub fn parse_dtype(s: &str) -> anyhow::Result<DType> {
    match s {
        "f32" | "float32" => Ok(DType::F32),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        "f16" | "float16" => Ok(DType::F16),
        other => anyhow::bail!("--dtype: unknown dtype `{other}` (f32, bf16, f16)"),
    }
}

/// Parses a `--device` value: `cpu` or `cuda[:N]` (needs the `cuda` feature).
pub fn parse_device(s: &str) -> anyhow::Result<Device> {
    match s {
        "cpu" => Ok(Device::Cpu),
        d if d == "cuda" || d.starts_with("cuda:") => {
            let ordinal =
                d.strip_prefix("cuda:").map(str::parse::<usize>).transpose()?.unwrap_or(0);
            if !cfg!(feature = "cuda") {
                anyhow::bail!(
                    "--device {d}: this emu-eval was built without CUDA; build one with `cargo build --release -p harness --features cuda` (needs the CUDA toolkit)"
                );
            }
            Ok(Device::new_cuda(ordinal)?)
        }
        other => anyhow::bail!("--device: unknown device `{other}` (cpu, cuda, cuda:N)"),
    }
}
