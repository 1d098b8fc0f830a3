//! Morphological base forms: NLTK 3.10 `WordNetCorpusReader._morphy` (spec 5.3).
use super::{Pos, WordNet};

/// NLTK `MORPHOLOGICAL_SUBSTITUTIONS`: (suffix, replacement), applied in this order.
pub fn substitutions(pos: Pos) -> &'static [(&'static str, &'static str)] {
    match pos {
        Pos::Noun => &[
            ("s", ""),
            ("ses", "s"),
            ("ves", "f"),
            ("xes", "x"),
            ("zes", "z"),
            ("ches", "ch"),
            ("shes", "sh"),
            ("men", "man"),
            ("ies", "y"),
        ],
        Pos::Verb => &[
            ("s", ""),
            ("ies", "y"),
            ("es", "e"),
            ("es", ""),
            ("ed", "e"),
            ("ed", ""),
            ("ing", "e"),
            ("ing", ""),
        ],
        Pos::Adj => &[("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
        Pos::Adv => &[],
    }
}

/// NLTK `_morphy(form, pos)` (the `apply_rules` step): every suffix rule applied once, in order.
pub fn apply_rules(form: &str, pos: Pos) -> Vec<String> {
    substitutions(pos)
        .iter()
        .filter_map(|&(old, new)| form.strip_suffix(old).map(|stem| format!("{stem}{new}")))
        .collect()
}

/// NLTK `_morphy(form, pos)`: candidates are `[form] + exceptions[form]` if `form` is in the
/// exception list, else `[form] + apply_rules(form)`; those that are lemmas of `pos` in the
/// index are kept, in order, without duplicates.
pub fn morphy(wn: &WordNet, form: &str, pos: Pos) -> Vec<String> {
    let candidates: Vec<String> = match wn.exceptions(form, pos) {
        Some(bases) => bases.to_vec(),
        None => apply_rules(form, pos),
    };
    let mut out: Vec<String> = Vec::new();
    for c in std::iter::once(form.to_owned()).chain(candidates) {
        if wn.has_lemma(&c, pos) && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::wordnet::tests::wordnet;

    #[test]
    fn rules_apply_once_in_order() {
        assert_eq!(apply_rules("boxes", Pos::Noun), ["boxe", "box"]);
        assert_eq!(apply_rules("running", Pos::Verb), ["runne", "runn"]);
        assert_eq!(apply_rules("s", Pos::Noun), [""]);
        assert_eq!(apply_rules("bigger", Pos::Adj), ["bigg", "bigge"]);
        assert!(apply_rules("quickly", Pos::Adv).is_empty());
    }

    #[test]
    fn morphy_forms() {
        let wn = wordnet();
        assert_eq!(morphy(wn, "dogs", Pos::Noun), ["dog"]);
        assert_eq!(morphy(wn, "geese", Pos::Noun), ["goose"]);
        assert_eq!(morphy(wn, "running", Pos::Noun), ["running"]);
        assert_eq!(morphy(wn, "running", Pos::Verb), ["run"]);
        // noun.exc: `axes ax axis`; `axes` itself is no noun lemma.
        assert_eq!(morphy(wn, "axes", Pos::Noun), ["ax", "axis"]);
        assert!(morphy(wn, "plugh", Pos::Noun).is_empty());
    }
}
