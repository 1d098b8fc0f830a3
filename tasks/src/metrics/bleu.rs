//! bleu (to be written).
