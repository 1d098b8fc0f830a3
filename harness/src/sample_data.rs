//! Built-in sample data (placeholder until the generator lands).
use std::path::{Path, PathBuf};

pub fn default_dir() -> PathBuf {
    std::env::temp_dir().join("emu-eval").join("sample-data-v1")
}

pub fn ensure(dir: &Path) -> anyhow::Result<()> {
    anyhow::bail!("{}: built-in sample data is not available yet; give --data-root", dir.display())
}
