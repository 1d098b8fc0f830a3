//! PTB tokenization as pycocoevalcap applies it (metrics.md 1.1): Stanford CoreNLP 3.4.1
//! `PTBTokenizer -preserveLines -lowerCase` followed by the 17-token punctuation filter of
//! `pycocoevalcap/tokenizer/ptbtokenizer.py`.
mod classes;
mod lexer;
mod re;

use rayon::prelude::*;

use lexer::{next_match, rules, Act};

/// Tokens that `ptbtokenizer.py` deletes after tokenization (`PUNCTUATIONS`). The bracket
/// entries are upper case and never match the lowercased tokens (the "trap" of metrics.md 1.1).
pub const PUNCTUATIONS: [&str; 17] = [
    "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
    "...", ";",
];

/// Stand-in for one UTF-16 surrogate: the 3.4.1 lexer sees characters outside the BMP as two
/// untokenizable code units, which separate tokens and are deleted.
const SURROGATE: char = '\u{FFFE}';

/// Tokenizes each caption (one output line per input line).
///
/// Mirrors `PTBTokenizer` on the captions joined with `\n` (`\n` inside a caption becomes a
/// space; carriage returns and other line terminators are removed so lines stay aligned). As
/// in the reference, the lexer sees the following captions after each newline (a few rules look
/// past the line end); the last caption is followed by the end of input.
pub fn tokenize_captions<S: AsRef<str> + Sync>(lines: &[S]) -> Vec<String> {
    // Plain captions (most of them) need neither the lexer nor the text after them.
    let plain: Vec<Option<String>> = lines.par_iter().map(|l| plain_caption(l.as_ref())).collect();
    if plain.iter().all(Option::is_some) {
        return plain.into_iter().flatten().collect();
    }
    // The whole tokenizer input: prepared captions joined with newlines (the others' lookahead).
    // Captions are prepared in parallel, then joined.
    let prepared: Vec<Vec<char>> = lines.par_iter().map(|l| prepare(l.as_ref())).collect();
    let mut text: Vec<char> = Vec::with_capacity(prepared.iter().map(|p| p.len() + 1).sum());
    let mut spans = Vec::with_capacity(lines.len());
    for (i, p) in prepared.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        let start = text.len();
        text.extend_from_slice(p);
        spans.push((start, text.len()));
    }
    drop(prepared);
    spans
        .par_iter()
        .zip(plain)
        .map(|(&(start, end), p)| p.unwrap_or_else(|| lex(&text[start..], end - start)))
        .collect()
}

/// The lexer's output for a caption made only of ASCII letter runs, each followed by at most one
/// of `.,;:!?`, separated by spaces, where every run takes [`plain_word`]'s fast path (the same
/// checks on the same characters); `None` for any other caption. Such a caption's tokens do not
/// depend on the text after it: each run ends at a space or the line end.
fn plain_caption(line: &str) -> Option<String> {
    let b = line.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let end = i;
        if end == start {
            return None;
        }
        let period = i < b.len() && b[i] == b'.';
        if i < b.len() && matches!(b[i], b'.' | b',' | b';' | b':' | b'!' | b'?') {
            i += 1; // a lone punctuation token, deleted by the filter
        }
        if i < b.len() && b[i] != b' ' {
            return None;
        }
        let word = &line[start..end];
        if (word.len() == 5 || word.len() == 6 || period) && needs_lexer(word, period) {
            return None;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        let at = out.len();
        out.push_str(word);
        out[at..].make_ascii_lowercase();
    }
    Some(out)
}

/// Split assimilations the lexer separates (`cannot` -> `can not`, ...).
const ASSIMILATIONS: [&str; 6] = ["cannot", "gimme", "gonna", "gotta", "lemme", "wanna"];

/// Whether a letter run (followed by a period when `period`) may be more than a `{WORD}`: an
/// assimilation, or an abbreviation or initial before a period.
fn needs_lexer(word: &str, period: bool) -> bool {
    ASSIMILATIONS.iter().any(|w| w.eq_ignore_ascii_case(word))
        || (period && lexer::may_be_abbreviation(word))
}

/// Tokenizes one caption as if it were the whole input.
pub fn tokenize_line(line: &str) -> String {
    let chars = prepare(line);
    lex(&chars, chars.len())
}

/// One output line under construction: `ptbtokenizer.py` applied as tokens arrive (drop
/// `PUNCTUATIONS`, join with single spaces), with its `line.rstrip()` applied in `finish`.
#[derive(Default)]
struct LineOut {
    out: String,
    /// Byte offset of the most recent token if it was kept (`None` if it was filtered).
    last_kept: Option<usize>,
}

impl LineOut {
    /// Adds one (lowercased) token.
    fn push(&mut self, tok: &str) {
        if keep_token(tok) {
            self.separate();
            self.last_kept = Some(self.out.len());
            self.out.push_str(tok);
        } else {
            self.last_kept = None;
        }
    }

    /// Adds a token of ASCII letters, lowercased (never filtered, no trailing whitespace).
    fn push_ascii_word(&mut self, chars: &[char]) {
        self.separate();
        self.last_kept = Some(self.out.len());
        self.out.extend(chars.iter().map(char::to_ascii_lowercase));
    }

    fn separate(&mut self) {
        if !self.out.is_empty() {
            self.out.push(' ');
        }
    }

    /// `line.rstrip()` before the split: tokens contain no spaces, so it can only shorten the
    /// last token (e.g. a U+00A0 ending a URL), which is then filtered again.
    fn finish(mut self) -> String {
        if let Some(start) = self.last_kept {
            let kept = self.out[start..].trim_end_matches(super::cider::is_py_space).len();
            self.out.truncate(start + kept);
            if kept == 0 || !keep_token(&self.out[start..]) {
                self.out.truncate(start);
                if self.out.ends_with(' ') {
                    self.out.pop();
                }
            }
        }
        self.out
    }
}

/// pycocoevalcap input preparation: `\n` -> space, other line terminators removed, non-BMP
/// characters as two surrogate stand-ins.
fn prepare(line: &str) -> Vec<char> {
    let mut v = Vec::with_capacity(line.len() + 1);
    prepare_into(line, &mut v);
    v
}

fn prepare_into(line: &str, v: &mut Vec<char>) {
    // ASCII without line terminators is copied as it is.
    if line.bytes().all(|b| b.is_ascii() && !matches!(b, b'\n' | b'\r' | 0x0b | 0x0c)) {
        v.extend(line.bytes().map(char::from));
        return;
    }
    for c in line.chars() {
        match c {
            '\n' => v.push(' '),
            '\r' | '\u{000B}' | '\u{000C}' | '\u{0085}' | '\u{2028}' | '\u{2029}' => {}
            c if u32::from(c) > 0xFFFF => v.extend([SURROGATE, SURROGATE]),
            c => v.push(c),
        }
    }
}

/// `-lowerCase`: every token is lowercased (after PTB normalisation).
fn lowercase(tok: &str) -> String {
    tok.to_lowercase()
}

/// The `ptbtokenizer.py` filter: a token survives unless it is exactly one of `PUNCTUATIONS`.
pub fn keep_token(tok: &str) -> bool {
    !PUNCTUATIONS.contains(&tok)
}

/// Runs the lexer over `s[..end]` (`s` may continue with lookahead text); returns the
/// lowercased (`-lowerCase`), filtered tokens joined with spaces.
fn lex(s: &[char], end: usize) -> String {
    let mut line = LineOut::default();
    let mut i = 0;
    while i < end {
        if classes::space(s[i]) {
            i += 1; // {SPACES}: no other rule starts with a space character
            continue;
        }
        if let Some((stop, after)) = plain_word(s, i) {
            line.push_ascii_word(&s[i..stop]);
            i = after;
            continue;
        }
        let Some((k, stop)) = next_match(s, i) else {
            i += 1; // untokenizable: deleted (with a warning in CoreNLP)
            continue;
        };
        let (tok, adv) = apply(rules()[k].act, &s[i..stop]);
        if let Some(t) = tok {
            let t: String = t.chars().filter(|&c| c != SURROGATE).collect();
            if !t.is_empty() {
                line.push(&lowercase(&t));
            }
        }
        i += adv;
    }
    line.finish()
}

/// Fast path for the common case, a run of ASCII letters followed by a space, newline or end,
/// or by one of `.,;:!?` and then a space, newline or end. Every longer rule match needs other
/// characters (apostrophes, digits, `@`, `-`, a second punctuation mark, ...), so the run is a
/// `{WORD}` and the mark a lone punctuation token, which the filter deletes anyway. Excluded:
/// the split assimilations (`cannot`, `gonna`, ...) and, before a period, words that may be
/// abbreviations or initials. Returns (word end, position after the skipped mark).
fn plain_word(s: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    while j < s.len() && s[j].is_ascii_alphabetic() {
        j += 1;
    }
    if j == i {
        return None;
    }
    let boundary = |k: usize| k >= s.len() || s[k] == ' ' || s[k] == '\n';
    let after = if boundary(j) {
        j
    } else if matches!(s[j], '.' | ',' | ';' | ':' | '!' | '?') && boundary(j + 1) {
        j + 1
    } else {
        return None;
    };
    let is_period = after > j && s[j] == '.';
    if j - i == 5 || j - i == 6 || is_period {
        // The ASCII letters as a string, without allocating for words of usual length.
        let mut buf = [0u8; 32];
        let owned: String;
        let word = if j - i <= buf.len() {
            for (b, c) in buf.iter_mut().zip(&s[i..j]) {
                *b = *c as u8; // ASCII letters (checked above)
            }
            std::str::from_utf8(&buf[..j - i]).ok()?
        } else {
            owned = s[i..j].iter().collect();
            &owned
        };
        if needs_lexer(word, is_period) {
            return None;
        }
    }
    Some((j, after))
}

/// Applies a rule action to the matched text: (token to emit, characters consumed).
fn apply(act: Act, text: &[char]) -> (Option<String>, usize) {
    let all: String = text.iter().collect();
    let n = text.len();
    match act {
        Act::Text => (Some(all), n),
        Act::NoSoftHyphens => (Some(all.replace('\u{AD}', "")), n),
        Act::Fixed(f) => (Some(f.to_owned()), n),
        Act::Keep(k) => (Some(text[..k].iter().collect()), k),
        Act::KeepAllBut(k) => (Some(text[..n - k].iter().collect()), n - k),
        Act::Quote(left) => (Some(latex_quotes(&all, left)), n),
        Act::Nbsp => (Some(all.replace(' ', "\u{A0}")), n),
        Act::Phone => {
            (Some(all.replace(' ', "\u{A0}").replace('(', "-LRB-").replace(')', "-RRB-")), n)
        }
        Act::Parens => (Some(all.replace('(', "-LRB-").replace(')', "-RRB-")), n),
        Act::Fraction => (Some(normalize_fractions(&all)), n),
        Act::Currency => (Some(normalize_currency(&all)), n),
        Act::Amp => (Some(normalize_amp(&all)), n),
        Act::Hyphens => (Some(if (3..=4).contains(&n) { "--".to_owned() } else { all }), n),
        Act::Skip => (None, n),
    }
}

/// PTBLexer `latexQuotes`: ASCII quotes by guessed direction, curly quotes by their shape.
pub fn latex_quotes(s: &str, probably_left: bool) -> String {
    let (single, double) = if probably_left { ("`", "``") } else { ("'", "''") };
    let s = s.replace("&apos;", single).replace('\'', single);
    let s = s.replace("&quot;", double).replace('"', double);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\u{0091}' | '\u{2018}' | '\u{201B}' | '\u{2039}' => out.push('`'),
            '\u{0092}' | '\u{2019}' | '\u{203A}' => out.push('\''),
            '\u{0093}' | '\u{201C}' | '\u{00AB}' => out.push_str("``"),
            '\u{0094}' | '\u{201D}' | '\u{00BB}' => out.push_str("''"),
            c => out.push(c),
        }
    }
    out
}

/// PTBLexer `normalizeFractions`: ¼ ½ ¾ ⅓ ⅔ spelled as `1/4` etc.; other fractions unchanged.
pub fn normalize_fractions(s: &str) -> String {
    s.replace('\u{BC}', "1/4")
        .replace('\u{BD}', "1/2")
        .replace('\u{BE}', "3/4")
        .replace('\u{2153}', "1/3")
        .replace('\u{2154}', "2/3")
}

/// PTBLexer `normalizeCurrency`: ¢ -> `cents`, £ -> `#`, euro and generic currency -> `$`.
pub fn normalize_currency(s: &str) -> String {
    let s = s.replace('\u{A2}', "cents").replace('\u{A3}', "#");
    s.chars()
        .map(|c| if matches!(c, '\u{80}' | '\u{A4}' | '\u{20A0}' | '\u{20AC}') { '$' } else { c })
        .collect()
}

/// PTBLexer `normalizeAmp`: the entity `&amp;` (any case) becomes `&`.
pub fn normalize_amp(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    if !lower.contains("&amp;") {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        if lower[i..].starts_with("&amp;") {
            out.push('&');
            i += 5;
        } else {
            let c = s[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

#[cfg(test)]
mod tests;
