//! NLTK 3.10 `word_tokenize(text, preserve_line=True)`, i.e. `NLTKWordTokenizer.tokenize`
//! (Treebank-style: clitics `'s`, `n't`, `'ll` split off, punctuation split; spec 5.2).
//!
//! The patterns are NLTK's, transcribed for `fancy_regex` (same backtracking semantics:
//! look-around, possessive quantifiers). Python's `$` (end, or before a final newline) is
//! written `(?=\n?\z)`; replacements `\1`/`\g<0>` become `${1}`/`${0}`.
//! Without `preserve_line`, NLTK would first split sentences with the Punkt model; the NExT-QA
//! golden vectors were produced with `preserve_line=True` (identical for short answers).
use std::sync::OnceLock;

use fancy_regex::Regex;

/// (pattern, replacement) applied with `re.sub` semantics (all non-overlapping matches).
type Rule = (Regex, &'static str);

struct Rules {
    starting_quotes: Vec<Rule>,
    punctuation: Vec<Rule>,
    parens_brackets: Rule,
    double_dashes: Rule,
    ending_quotes: Vec<Rule>,
    contractions: Vec<Rule>,
}

fn compile(list: &[(&str, &'static str)]) -> Vec<Rule> {
    list.iter()
        .map(|&(p, r)| match Regex::new(p) {
            Ok(re) => (re, r),
            // The patterns are constants; a failure is a programming error caught by the tests.
            Err(e) => panic!("bad tokenizer pattern {p}: {e}"),
        })
        .collect()
}

fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(|| {
        let one = |p: &str, r: &'static str| compile(&[(p, r)]).remove(0);
        Rules {
            // NLTKWordTokenizer.STARTING_QUOTES
            starting_quotes: compile(&[
                ("([«“‘„]|[`]+)", " ${1} "),
                (r#"^""#, "``"),
                (r"(``)", " ${1} "),
                (r#"([ \(\[{<])("|'{2})"#, "${1} `` "),
                (r"(?i)(?<!\w)(')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)", "${1} "),
            ]),
            // NLTKWordTokenizer.PUNCTUATION
            punctuation: compile(&[
                (r#"([^\.])(\.)([\]\)}>"'»”’ ]*+)\s*(?=\n?\z)"#, "${1} ${2} ${3} "),
                (r"([:,])([^\d])", " ${1} ${2}"),
                (r"([:,])(?=\n?\z)", " ${1} "),
                (r"\.{2,}", " ${0} "),
                (r"[;@#$%&]", " ${0} "),
                (r"[\u{2012}-\u{2015}]", " ${0} "),
                (r#"([^\.])(\.)([\]\)}>"']*)\s*(?=\n?\z)"#, "${1} ${2}${3} "),
                (r"[?!]", " ${0} "),
                (r"([^'])' ", "${1} ' "),
                (r"[*]", " ${0} "),
            ]),
            parens_brackets: one(r"[\]\[\(\)\{\}<>]", " ${0} "),
            double_dashes: one(r"--", " -- "),
            // NLTKWordTokenizer.ENDING_QUOTES
            ending_quotes: compile(&[
                ("([»”’])", " ${1} "),
                (r"''", " '' "),
                (r#"""#, " '' "),
                (r"\s+", " "),
                (r"([^' ])('[sS]|'[mM]|'[dD]|') ", "${1} ${2} "),
                (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", "${1} ${2} "),
            ]),
            // MacIntyreContractions.CONTRACTIONS2 and CONTRACTIONS3, replaced by " \1 \2 "
            contractions: compile(&[
                (r"(?i)\b(can)(?#X)(not)\b", " ${1} ${2} "),
                (r"(?i)\b(d)(?#X)('ye)\b", " ${1} ${2} "),
                (r"(?i)\b(gim)(?#X)(me)\b", " ${1} ${2} "),
                (r"(?i)\b(gon)(?#X)(na)\b", " ${1} ${2} "),
                (r"(?i)\b(got)(?#X)(ta)\b", " ${1} ${2} "),
                (r"(?i)\b(lem)(?#X)(me)\b", " ${1} ${2} "),
                (r"(?i)\b(more)(?#X)('n)\b", " ${1} ${2} "),
                (r"(?i)\b(wan)(?#X)(na)(?=\s)", " ${1} ${2} "),
                (r"(?i) ('t)(?#X)(is)\b", " ${1} ${2} "),
                (r"(?i) ('t)(?#X)(was)\b", " ${1} ${2} "),
            ]),
        }
    })
}

/// `re.sub(pattern, repl, text)`. A match error (backtrack limit; not reachable with these
/// patterns on ordinary text) leaves the text unchanged.
fn sub(rule: &Rule, text: String) -> String {
    match rule.0.try_replacen(&text, 0, rule.1) {
        Ok(std::borrow::Cow::Owned(s)) => s,
        _ => text,
    }
}

/// Python `str.isspace()` for `str.split()`: Unicode White_Space plus U+001C..U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Words of `MacIntyreContractions.CONTRACTIONS2` that contain only letters (split by NLTK
/// even without punctuation): `cannot`, `gimme`, `gonna`, `gotta`, `lemme`, `wanna`.
const LETTER_CONTRACTIONS: [&str; 6] = ["cannot", "gimme", "gonna", "gotta", "lemme", "wanna"];

/// Fast path: text made only of ASCII letters, digits and spaces, without a whole word from
/// [`LETTER_CONTRACTIONS`], matches none of NLTK's rules except whitespace normalisation, so its
/// tokens are its space-separated words. None when the full tokenizer is needed.
fn plain_words(text: &str) -> Option<Vec<String>> {
    if !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ') {
        return None;
    }
    let words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
    if words.iter().any(|w| LETTER_CONTRACTIONS.iter().any(|c| w.eq_ignore_ascii_case(c))) {
        return None;
    }
    Some(words.into_iter().map(str::to_owned).collect())
}

/// NLTK `word_tokenize(text, preserve_line=True)` (`NLTKWordTokenizer.tokenize`,
/// `convert_parentheses=False`).
pub fn word_tokenize(text: &str) -> Vec<String> {
    plain_words(text).unwrap_or_else(|| full_tokenize(text))
}

/// All of NLTK's substitution rules, in their order.
fn full_tokenize(text: &str) -> Vec<String> {
    let r = rules();
    let mut t = text.to_owned();
    for rule in &r.starting_quotes {
        t = sub(rule, t);
    }
    for rule in &r.punctuation {
        t = sub(rule, t);
    }
    t = sub(&r.parens_brackets, t);
    t = sub(&r.double_dashes, t);
    t = format!(" {t} ");
    for rule in &r.ending_quotes {
        t = sub(rule, t);
    }
    for rule in &r.contractions {
        t = sub(rule, t);
    }
    t.split(is_python_space).filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::word_tokenize;

    fn tok(s: &str) -> Vec<String> {
        word_tokenize(s)
    }

    #[test]
    fn patterns_compile() {
        let _ = super::rules();
    }

    #[test]
    fn clitics() {
        assert_eq!(tok("the man's"), ["the", "man", "'s"]);
        assert_eq!(tok("can't"), ["ca", "n't"]);
        assert_eq!(tok("I'll go, they're here"), ["I", "'ll", "go", ",", "they", "'re", "here"]);
        assert_eq!(tok("cannot"), ["can", "not"]);
        assert_eq!(tok("'s"), ["'s"]);
    }

    #[test]
    fn punctuation() {
        assert_eq!(tok("a dog."), ["a", "dog", "."]);
        assert_eq!(tok("."), ["."]);
        assert_eq!(tok("yes!"), ["yes", "!"]);
        assert_eq!(tok("red, blue"), ["red", ",", "blue"]);
        assert_eq!(tok("3,36 (x)"), ["3,36", "(", "x", ")"]);
        assert_eq!(tok("wait..."), ["wait", "..."]);
        assert_eq!(tok("$3.88"), ["$", "3.88"]);
        assert_eq!(tok("a--b"), ["a", "--", "b"]);
    }

    #[test]
    fn quotes() {
        assert_eq!(tok("\"hi\""), ["``", "hi", "''"]);
        assert_eq!(tok("'tis"), ["'", "tis"]);
        assert_eq!(tok("it 'tis"), ["it", "'", "tis"]);
        assert_eq!(tok("'hello'"), ["'", "hello", "'"]);
    }

    /// Outputs of NLTK 3.10.4 `word_tokenize(s, preserve_line=True)`.
    #[test]
    fn nltk_reference_cases() {
        let cases: &[(&str, &[&str])] = &[
            ("gimme more'n that", &["gim", "me", "more", "'n", "that"]),
            ("I wanna go", &["I", "wan", "na", "go"]),
            ("don't!", &["do", "n't", "!"]),
            ("“Hi” «yo»", &["“", "Hi", "”", "«", "yo", "»"]),
            ("O'Neil's dog", &["O'Neil", "'s", "dog"]),
            ("e.g. U.S.", &["e.g.", "U.S", "."]),
            ("wait\u{2014}now", &["wait", "\u{2014}", "now"]),
            ("a\u{a0}b", &["a", "b"]),
            ("1:30, 3:x", &["1:30", ",", "3", ":", "x"]),
            ("x' y", &["x", "'", "y"]),
            ("THEY'LL", &["THEY", "'LL"]),
            ("dog.\n", &["dog", "."]),
            ("(dog).", &["(", "dog", ")", "."]),
        ];
        for (s, want) in cases {
            assert_eq!(tok(s), *want, "{s:?}");
        }
    }

    #[test]
    fn nltk_doc_example() {
        let s = "Good muffins cost $3.88 (roughly 3,36 euros)\nin New York.  Please buy me\ntwo of them.\nThanks.";
        let want = [
            "Good", "muffins", "cost", "$", "3.88", "(", "roughly", "3,36", "euros", ")", "in",
            "New", "York.", "Please", "buy", "me", "two", "of", "them.", "Thanks", ".",
        ];
        assert_eq!(tok(s), want);
    }

    #[test]
    fn fast_path_agrees_with_full_rules() {
        for s in [
            "play guitar",
            " two  dogs ",
            "10 men",
            "",
            "Cannot go",
            "I WANNA go",
            "gotta",
            "cannotx y",
            "gonna2",
        ] {
            assert_eq!(word_tokenize(s), super::full_tokenize(s), "{s:?}");
        }
        assert!(super::plain_words("Cannot go").is_none());
        assert!(super::plain_words("don't").is_none());
        assert_eq!(
            super::plain_words("cannotx y").as_deref(),
            Some(&["cannotx".to_owned(), "y".to_owned()][..])
        );
    }

    #[test]
    fn whitespace_and_empty() {
        assert!(tok("").is_empty());
        assert!(tok("  \t ").is_empty());
        assert_eq!(tok(" play  guitar "), ["play", "guitar"]);
    }
}
