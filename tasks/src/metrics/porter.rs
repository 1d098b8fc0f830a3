//! NLTK 3.10 `PorterStemmer` in its default NLTK_EXTENSIONS mode (metrics.md 2.4), a faithful
//! port of `nltk/stem/porter.py` working on Unicode scalar values like Python's `str`.

/// Stems a whole string (lowercased first), as `PorterStemmer().stem(word)`.
pub fn stem(word: &str) -> String {
    let lower = word.to_lowercase();
    // `if stem in self.pool: return self.pool[stem]`, on the lowercased input.
    if let Some(s) = irregular_form(&lower) {
        return s.to_owned();
    }
    // `len(word) <= 2` is tested on the input before lowercasing.
    if word.chars().count() <= 2 {
        return lower;
    }
    let mut w: Vec<char> = lower.chars().collect();
    w = step1a(w);
    w = step1b(w);
    w = step1c(w);
    w = step2(w);
    w = step3(w);
    w = step4(w);
    w = step5a(w);
    w = step5b(w);
    w.into_iter().collect()
}

/// `self.pool` (NLTK_EXTENSIONS): irregular forms mapped to their stems.
pub fn irregular_form(word: &str) -> Option<&'static str> {
    Some(match word {
        "sky" | "skies" => "sky",
        "dying" => "die",
        "lying" => "lie",
        "tying" => "tie",
        "news" => "news",
        "innings" | "inning" => "inning",
        "outings" | "outing" => "outing",
        "cannings" | "canning" => "canning",
        "howe" => "howe",
        "proceed" => "proceed",
        "exceed" => "exceed",
        "succeed" => "succeed",
        _ => return None,
    })
}

type Word = Vec<char>;

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u')
}

/// `_is_consonant`: not a vowel; `y` is a consonant at position 0 or after a vowel.
fn is_consonant(w: &[char], i: usize) -> bool {
    if is_vowel(w[i]) {
        return false;
    }
    if w[i] == 'y' {
        return i == 0 || !is_consonant(w, i - 1);
    }
    true
}

/// `_measure`: number of "vc" in the consonant/vowel pattern.
fn measure(stem: &[char]) -> usize {
    let mut m = 0;
    let mut prev_vowel = false;
    for i in 0..stem.len() {
        let cons = is_consonant(stem, i);
        if cons && prev_vowel {
            m += 1;
        }
        prev_vowel = !cons;
    }
    m
}

fn has_positive_measure(stem: &[char]) -> bool {
    measure(stem) > 0
}

/// `_contains_vowel`.
fn contains_vowel(stem: &[char]) -> bool {
    (0..stem.len()).any(|i| !is_consonant(stem, i))
}

/// `_ends_double_consonant`.
fn ends_double_consonant(w: &[char]) -> bool {
    let n = w.len();
    n >= 2 && w[n - 1] == w[n - 2] && is_consonant(w, n - 1)
}

/// `_ends_cvc`, with the NLTK extension for two-letter words (vowel then consonant).
fn ends_cvc(w: &[char]) -> bool {
    let n = w.len();
    (n >= 3
        && is_consonant(w, n - 3)
        && !is_consonant(w, n - 2)
        && is_consonant(w, n - 1)
        && !matches!(w[n - 1], 'w' | 'x' | 'y'))
        || (n == 2 && !is_consonant(w, 0) && is_consonant(w, 1))
}

fn ends_with(w: &[char], suffix: &str) -> bool {
    let mut tail = w.iter().rev();
    suffix.chars().rev().all(|c| tail.next() == Some(&c))
}

fn strip_suffix(w: &[char], suffix: &str) -> Word {
    w[..w.len() - suffix.chars().count()].to_vec()
}

fn with(mut stem: Word, replacement: &str) -> Word {
    stem.extend(replacement.chars());
    stem
}

/// Suffix of a rule: a literal or the `*d` (double consonant) marker.
#[derive(Clone, Copy)]
enum Suffix {
    Lit(&'static str),
    DoubleConsonant,
}

type Cond<'a> = &'a dyn Fn(&[char]) -> bool;

/// `_apply_rule_list`: the first rule whose suffix matches decides; if its condition fails the
/// word is returned unchanged.
fn apply_rule_list(w: Word, rules: &[(Suffix, &str, Option<Cond>)]) -> Word {
    for &(suffix, replacement, cond) in rules {
        let holds = |stem: &[char]| cond.is_none_or(|c| c(stem));
        if let Suffix::DoubleConsonant = suffix {
            if ends_double_consonant(&w) {
                let stem = w[..w.len() - 2].to_vec();
                return if holds(&stem) { with(stem, replacement) } else { w };
            }
        }
        // The reference also tests the literal suffix "*d" after the double-consonant check.
        let lit = match suffix {
            Suffix::Lit(s) => s,
            Suffix::DoubleConsonant => "*d",
        };
        if ends_with(&w, lit) {
            let stem = strip_suffix(&w, lit);
            return if holds(&stem) { with(stem, replacement) } else { w };
        }
    }
    w
}

fn lit_rules<'a>(
    rules: &[(&'static str, &'a str)],
    cond: Cond<'a>,
) -> Vec<(Suffix, &'a str, Option<Cond<'a>>)> {
    rules.iter().map(|&(s, r)| (Suffix::Lit(s), r, Some(cond))).collect()
}

/// Step 1a: (ext.) 4-letter `ies` -> `ie`; sses->ss, ies->i, ss->ss, s->"".
fn step1a(w: Word) -> Word {
    if ends_with(&w, "ies") && w.len() == 4 {
        return with(strip_suffix(&w, "ies"), "ie");
    }
    let rules: [(Suffix, &str, Option<Cond>); 4] = [
        (Suffix::Lit("sses"), "ss", None),
        (Suffix::Lit("ies"), "i", None),
        (Suffix::Lit("ss"), "ss", None),
        (Suffix::Lit("s"), "", None),
    ];
    apply_rule_list(w, &rules)
}

/// Step 1b: (ext.) `ied`; (m>0) eed->ee; (*v*) ed / ing removal and its clean-up rules.
fn step1b(w: Word) -> Word {
    if ends_with(&w, "ied") {
        let r = if w.len() == 4 { "ie" } else { "i" };
        return with(strip_suffix(&w, "ied"), r);
    }
    if ends_with(&w, "eed") {
        let stem = strip_suffix(&w, "eed");
        return if measure(&stem) > 0 { with(stem, "ee") } else { w };
    }
    let Some(stem) = ["ed", "ing"]
        .iter()
        .filter(|s| ends_with(&w, s))
        .map(|s| strip_suffix(&w, s))
        .find(|stem| contains_vowel(stem))
    else {
        return w;
    };
    let last = stem[stem.len() - 1];
    let last_s = last.to_string();
    let not_lsz = move |_: &[char]| !matches!(last, 'l' | 's' | 'z');
    let m1_cvc = |s: &[char]| measure(s) == 1 && ends_cvc(s);
    let rules: [(Suffix, &str, Option<Cond>); 5] = [
        (Suffix::Lit("at"), "ate", None),
        (Suffix::Lit("bl"), "ble", None),
        (Suffix::Lit("iz"), "ize", None),
        (Suffix::DoubleConsonant, &last_s, Some(&not_lsz)),
        (Suffix::Lit(""), "e", Some(&m1_cvc)),
    ];
    apply_rule_list(stem, &rules)
}

/// Step 1c (ext.): `y` -> `i` when preceded by a consonant and the stem is longer than one.
fn step1c(w: Word) -> Word {
    let cond = |s: &[char]| s.len() > 1 && is_consonant(s, s.len() - 1);
    apply_rule_list(w, &[(Suffix::Lit("y"), "i", Some(&cond))])
}

/// Step 2 (m>0), with the NLTK `alli` pre-rule, `fulli` and `logi` extensions.
fn step2(w: Word) -> Word {
    if ends_with(&w, "alli") && has_positive_measure(&strip_suffix(&w, "alli")) {
        return step2(with(strip_suffix(&w, "alli"), "al"));
    }
    let pos: Cond = &has_positive_measure;
    let mut rules = lit_rules(
        &[
            ("ational", "ate"),
            ("tional", "tion"),
            ("enci", "ence"),
            ("anci", "ance"),
            ("izer", "ize"),
            ("bli", "ble"),
            ("alli", "al"),
            ("entli", "ent"),
            ("eli", "e"),
            ("ousli", "ous"),
            ("ization", "ize"),
            ("ation", "ate"),
            ("ator", "ate"),
            ("alism", "al"),
            ("iveness", "ive"),
            ("fulness", "ful"),
            ("ousness", "ous"),
            ("aliti", "al"),
            ("iviti", "ive"),
            ("biliti", "ble"),
            ("fulli", "ful"),
        ],
        pos,
    );
    // The condition of `logi` looks at the word minus its last three letters (keeps the `l`).
    let word_minus_3 = w[..w.len().saturating_sub(3)].to_vec();
    let logi = move |_: &[char]| has_positive_measure(&word_minus_3);
    rules.push((Suffix::Lit("logi"), "log", Some(&logi)));
    apply_rule_list(w, &rules)
}

/// Step 3 (m>0).
fn step3(w: Word) -> Word {
    let rules = lit_rules(
        &[
            ("icate", "ic"),
            ("ative", ""),
            ("alize", "al"),
            ("iciti", "ic"),
            ("ical", "ic"),
            ("ful", ""),
            ("ness", ""),
        ],
        &has_positive_measure,
    );
    apply_rule_list(w, &rules)
}

/// Step 4 (m>1); `ion` only after `s` or `t`.
fn step4(w: Word) -> Word {
    let gt1 = |s: &[char]| measure(s) > 1;
    let ion = |s: &[char]| measure(s) > 1 && matches!(s.last(), Some('s' | 't'));
    let mut rules = lit_rules(
        &[
            ("al", ""),
            ("ance", ""),
            ("ence", ""),
            ("er", ""),
            ("ic", ""),
            ("able", ""),
            ("ible", ""),
            ("ant", ""),
            ("ement", ""),
            ("ment", ""),
            ("ent", ""),
        ],
        &gt1,
    );
    rules.push((Suffix::Lit("ion"), "", Some(&ion)));
    rules.extend(lit_rules(
        &[("ou", ""), ("ism", ""), ("ate", ""), ("iti", ""), ("ous", ""), ("ive", ""), ("ize", "")],
        &gt1,
    ));
    apply_rule_list(w, &rules)
}

/// Step 5a: drop final `e` if m>1, or m==1 and not *o.
fn step5a(w: Word) -> Word {
    if ends_with(&w, "e") {
        let stem = strip_suffix(&w, "e");
        let m = measure(&stem);
        if m > 1 || (m == 1 && !ends_cvc(&stem)) {
            return stem;
        }
    }
    w
}

/// Step 5b: `ll` -> `l` if m(word minus last letter) > 1.
fn step5b(w: Word) -> Word {
    let minus_last = w[..w.len().saturating_sub(1)].to_vec();
    let cond = move |_: &[char]| measure(&minus_last) > 1;
    apply_rule_list(w, &[(Suffix::Lit("ll"), "l", Some(&cond))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn w(s: &str) -> Word {
        s.chars().collect()
    }

    #[test]
    fn consonants_and_measure() {
        assert_eq!(measure(&w("tr")), 0);
        assert_eq!(measure(&w("trouble")), 1);
        assert_eq!(measure(&w("oaten")), 2);
        // y after a consonant is a vowel; a space counts as a consonant
        assert_eq!(measure(&w("syzygy")), 2);
        assert_eq!(measure(&w("hot dog")), 2);
        assert!(ends_cvc(&w("hop")) && !ends_cvc(&w("snow")) && ends_cvc(&w("ab")));
    }

    #[test]
    fn steps() {
        assert_eq!(stem("caresses"), "caress");
        assert_eq!(stem("ties"), "tie");
        assert_eq!(stem("spied"), "spi");
        assert_eq!(stem("hopping"), "hop");
        assert_eq!(stem("happy"), "happi");
        assert_eq!(stem("relational"), "relat");
        assert_eq!(stem("electrical"), "electr");
        assert_eq!(stem("adoption"), "adopt");
        assert_eq!(stem("controll"), "control");
        assert_eq!(stem("hot dogs"), "hot dog");
        assert_eq!(stem("fire hydrants"), "fire hydr");
        assert_eq!(stem("TENNIS"), "tenni");
        assert_eq!(stem("skies"), "sky");
        assert_eq!(stem("SKIES"), "sky");
        assert_eq!(stem("Ab"), "ab");
    }

    /// Every case of `golden/vqa/porter_stem.json` (NLTK 3.10.4).
    #[test]
    fn golden_porter_stem() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden/vqa/porter_stem.json");
        let text = std::fs::read_to_string(path).expect("golden file");
        let cases: Vec<Value> = serde_json::from_str(&text).expect("golden json");
        assert!(cases.len() > 6000);
        let mut bad = Vec::new();
        for c in &cases {
            let input = c["input"].as_str().expect("input");
            let want = c["stem"].as_str().expect("stem");
            let got = stem(input);
            if got != want {
                bad.push(format!("{input:?}: got {got:?}, want {want:?}"));
            }
        }
        assert!(bad.is_empty(), "{} of {} differ:\n{}", bad.len(), cases.len(), bad.join("\n"));
    }
}
