//! Answer normalisation of `vqaEval.py` (metrics.md 2.1), with Python 3 string semantics.
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use super::tables::{ARTICLES, CONTRACTIONS, NUMBER_WORDS, PUNCT, PY_DECIMAL_DIGITS};

/// Python `str.isspace()`: Rust's `char::is_whitespace` plus U+001C..U+001F.
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python `str.strip()` with no argument.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// Python `str.split()` with no argument (runs of whitespace, no empty pieces).
pub fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(py_isspace).filter(|w| !w.is_empty())
}

/// Python `re` `\d` in a str pattern: Unicode category Nd.
pub fn is_py_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    PY_DECIMAL_DIGITS.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// `ans.replace('\n', ' ').replace('\t', ' ').strip()` — the whitespace cleanup `vqaEval.py`
/// applies to predictions (and, in the official tool, to ground-truth answers).
pub fn clean_whitespace(s: &str) -> Cow<'_, str> {
    if s.contains(['\n', '\t']) {
        Cow::Owned(py_strip(&s.replace(['\n', '\t'], " ")).to_owned())
    } else {
        Cow::Borrowed(py_strip(s))
    }
}

/// `re.search(commaStrip, t)` with `commaStrip = (\d)(,)(\d)`: a digit, a comma, a digit.
pub fn has_digit_comma_digit(t: &str) -> bool {
    let mut prev2: Option<char> = None;
    let mut prev1: Option<char> = None;
    for c in t.chars() {
        if prev1 == Some(',') && prev2.is_some_and(is_py_digit) && is_py_digit(c) {
            return true;
        }
        prev2 = prev1;
        prev1 = Some(c);
    }
    false
}

/// Maximum number of periods `periodStrip.sub("", t, re.UNICODE)` removes: `re.UNICODE` (32)
/// lands in the `count` argument.
pub const PERIOD_STRIP_COUNT: usize = 32;

/// `periodStrip.sub("", t, re.UNICODE)` with `periodStrip = (?!<=\d)(\.)(?!\d)`: deletes periods
/// not followed by a digit, at most the first 32 of them (left to right).
pub fn strip_periods(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut removed = 0;
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '.'
            && removed < PERIOD_STRIP_COUNT
            && !chars.peek().copied().is_some_and(is_py_digit)
        {
            removed += 1;
            continue;
        }
        out.push(c);
    }
    out
}

/// `processPunctuation` of `vqaEval.py`: each character of `punct` is deleted when it touches a
/// space in the *original* text (or the text has digit-comma-digit anywhere), otherwise replaced
/// by a space; then `strip_periods`.
pub fn process_punctuation(t: &str) -> String {
    // All listed characters are ASCII, so a byte scan cannot split a UTF-8 sequence.
    let bytes = t.as_bytes();
    let mut present = 0u32; // bit i: PUNCT[i] occurs
    let mut touching = 0u32; // bit i: `PUNCT[i] + ' '` or `' ' + PUNCT[i]` occurs
    for (k, &b) in bytes.iter().enumerate() {
        if let Some(i) = punct_index(b) {
            present |= 1 << i;
            let before = k > 0 && bytes[k - 1] == b' ';
            let after = bytes.get(k + 1) == Some(&b' ');
            if before || after {
                touching |= 1 << i;
            }
        }
    }
    // Per punctuation character: delete or replace by a space. Replacing one character by a space
    // never creates another listed character, so one pass is equivalent to the reference's 21
    // successive `str.replace` calls.
    let delete = if present != 0 && has_digit_comma_digit(t) { present } else { touching };
    let mut out = String::with_capacity(t.len());
    if present == 0 {
        out.push_str(t);
    } else {
        let mut last = 0;
        for (k, &b) in bytes.iter().enumerate() {
            if let Some(i) = punct_index(b) {
                out.push_str(&t[last..k]);
                if delete & (1 << i) == 0 {
                    out.push(' ');
                }
                last = k + 1;
            }
        }
        out.push_str(&t[last..]);
    }
    if out.contains('.') {
        strip_periods(&out)
    } else {
        out
    }
}

/// Position of an ASCII byte in `PUNCT`.
fn punct_index(b: u8) -> Option<usize> {
    if b.is_ascii_alphanumeric() || b == b' ' || b >= 0x80 {
        return None;
    }
    PUNCT.iter().position(|&p| p as u32 == b as u32)
}

/// A contraction table (`contractions` of a `vqaEval.py`).
#[derive(Debug, Clone)]
pub struct Contractions(HashMap<String, String, BuildHasherDefault<Fnv>>);

/// FNV-1a: the table is fixed and small; SipHash's DoS resistance buys nothing here.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }
}

impl Contractions {
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
    pub fn get(&self, word: &str) -> Option<&str> {
        self.0.get(word).map(String::as_str)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The 120-entry table of the official and LAVIS `vqaEval.py` (ASCII apostrophes).
pub fn official_contractions() -> &'static Contractions {
    static MAP: OnceLock<Contractions> = OnceLock::new();
    MAP.get_or_init(|| Contractions::from_pairs(CONTRACTIONS))
}

/// `manualMap.setdefault(word, word)`: number words `none`, `zero`..`ten` to digits.
pub fn map_number_word(word: &str) -> &str {
    NUMBER_WORDS.iter().find(|(k, _)| *k == word).map_or(word, |(_, v)| v)
}

/// `word in articles`.
pub fn is_article(word: &str) -> bool {
    ARTICLES.contains(&word)
}

/// `processDigitArticle` of `vqaEval.py`: lowercase, split on whitespace, number words to digits,
/// drop articles, map contractions, join with single spaces.
pub fn process_digit_article(t: &str, contractions: &Contractions) -> String {
    let lower: Cow<str> = if t.bytes().any(|b| b.is_ascii_uppercase() || b >= 0x80) {
        Cow::Owned(t.to_lowercase())
    } else {
        Cow::Borrowed(t)
    };
    let mut out = String::with_capacity(lower.len());
    for word in py_split(&lower) {
        let word = map_number_word(word);
        if is_article(word) {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(contractions.get(word).unwrap_or(word));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_whitespace_includes_file_separators() {
        assert!(py_isspace('\u{1c}') && py_isspace('\u{a0}') && py_isspace('\u{2028}'));
        assert!(!py_isspace('\u{180e}') && !py_isspace('\u{200b}'));
        assert_eq!(py_strip("\u{1f} a b\u{3000}"), "a b");
        assert_eq!(py_split(" a\u{a0}b\t\tc ").collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(py_split("").count(), 0);
    }

    #[test]
    fn python_digits_are_unicode_nd() {
        assert!(is_py_digit('7') && is_py_digit('\u{663}') && is_py_digit('\u{ff15}'));
        assert!(!is_py_digit('²') && !is_py_digit('Ⅻ') && !is_py_digit('a'));
    }

    #[test]
    fn clean_whitespace_replaces_newline_and_tab_then_strips() {
        assert_eq!(clean_whitespace("\tred\nbox \u{a0}"), "red box");
    }

    #[test]
    fn digit_comma_digit() {
        assert!(has_digit_comma_digit("about 1,000 cars"));
        assert!(!has_digit_comma_digit("1, 000"));
        assert!(!has_digit_comma_digit(",1,"));
        assert!(has_digit_comma_digit("\u{661},\u{662}"));
    }

    #[test]
    fn strip_periods_keeps_decimal_points_and_stops_after_32() {
        assert_eq!(strip_periods("3.5."), "3.5");
        assert_eq!(strip_periods("5. 2.x"), "5 2x");
        assert_eq!(strip_periods("..5"), ".5");
        let forty = ".".repeat(40);
        assert_eq!(strip_periods(&format!("a{forty}b")), format!("a{}b", ".".repeat(8)));
    }

    #[test]
    fn process_punctuation_rules() {
        // replaced by a space when not touching a space
        assert_eq!(process_punctuation("t-shirt"), "t shirt");
        // deleted when some occurrence touches a space in the original
        assert_eq!(process_punctuation("a - b-c"), "a  bc");
        // digit-comma-digit deletes every listed character
        assert_eq!(process_punctuation("1,000 (x)"), "1000 x");
        // apostrophes, colons, ampersands kept; periods removed unless before a digit
        assert_eq!(process_punctuation("don't: r&b 2.5."), "don't: r&b 2.5");
        assert_eq!(process_punctuation("yes!"), "yes ");
    }

    #[test]
    fn number_words_articles_contractions() {
        assert_eq!(map_number_word("none"), "0");
        assert_eq!(map_number_word("ten"), "10");
        assert_eq!(map_number_word("eleven"), "eleven");
        assert!(is_article("an") && !is_article("The"));
        let c = official_contractions();
        assert_eq!(c.len(), 120);
        assert_eq!(c.get("dont"), Some("don't"));
        assert_eq!(c.get("somebody'd"), Some("somebodyd"));
        assert_eq!(c.get("its"), None);
    }

    #[test]
    fn process_digit_article_rules() {
        let c = official_contractions();
        assert_eq!(process_digit_article("The  Two DOGS", c), "2 dogs");
        assert_eq!(process_digit_article("Im sure it isnt none", c), "im sure it isn't 0");
        assert_eq!(process_digit_article(" a an the ", c), "");
    }
}
