//! Token trie for `prefix_allowed_tokens_fn` constraints (VizWiz answerability, spec §3.5).
use std::collections::BTreeMap;

/// A trie over token sequences; the allowed next tokens after a prefix are its children.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenTrie {
    children: BTreeMap<u32, TokenTrie>,
}

impl TokenTrie {
    /// Builds the trie of `sequences`.
    pub fn new<I: IntoIterator<Item = Vec<u32>>>(sequences: I) -> Self {
        let mut root = TokenTrie::default();
        for seq in sequences {
            let mut node = &mut root;
            for tok in seq {
                node = node.children.entry(tok).or_default();
            }
        }
        root
    }

    /// Tokens allowed after `prefix` (the generated tokens, without the dummy BOS); empty for an
    /// unknown prefix or a complete sequence, which then allows nothing (all scores −∞).
    pub fn allowed(&self, prefix: &[u32]) -> Vec<u32> {
        let mut node = self;
        for tok in prefix {
            match node.children.get(tok) {
                Some(n) => node = n,
                None => return Vec::new(),
            }
        }
        node.children.keys().copied().collect()
    }

    /// Lengths of the shortest and the longest complete sequence (0, 0 for an empty trie).
    pub fn lengths(&self) -> (usize, usize) {
        if self.children.is_empty() {
            return (0, 0);
        }
        let (mut lo, mut hi) = (usize::MAX, 0);
        for c in self.children.values() {
            let (a, b) = c.lengths();
            lo = lo.min(a + 1);
            hi = hi.max(b + 1);
        }
        (lo, hi)
    }

    /// The VizWiz answerability constraint: each answer tokenized without BOS, then EOS
    /// (`"yes."` → `[4874, 29889, 2]`, `"no."` → `[694, 29889, 2]`).
    pub fn answers(encoded_without_bos: &[Vec<u32>], eos: u32) -> Self {
        TokenTrie::new(encoded_without_bos.iter().map(|s| {
            let mut s = s.clone();
            s.push(eos);
            s
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vizwiz_trie_allows_children_only() {
        let t = TokenTrie::answers(&[vec![4874, 29889], vec![694, 29889]], 2);
        assert_eq!(t.allowed(&[]), vec![694, 4874]);
        assert_eq!(t.allowed(&[4874]), vec![29889]);
        assert_eq!(t.allowed(&[694, 29889]), vec![2]);
        assert!(t.allowed(&[694, 29889, 2]).is_empty());
        assert!(t.allowed(&[5]).is_empty());
    }
}
