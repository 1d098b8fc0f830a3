//! WordNet 3.0 database reader (NLTK semantics for synsets and Wu-Palmer similarity).
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WordNetError(pub String);

pub struct WordNet {
    pub dir: PathBuf,
}

impl WordNet {
    /// Loads from `$EMU_EVAL_WORDNET` or `/usr/share/wordnet`.
    pub fn load_default() -> Result<Self, WordNetError> {
        Self::load(Path::new("/usr/share/wordnet"))
    }
    pub fn load(dir: &Path) -> Result<Self, WordNetError> {
        Err(WordNetError(format!("{}: not implemented yet", dir.display())))
    }
}
