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
pub const PUNCTUATIONS: [&str; 17] =
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"];

/// Stand-in for one UTF-16 surrogate: the 3.4.1 lexer sees characters outside the BMP as two
/// untokenizable code units, which separate tokens and are deleted.
const SURROGATE: char = '\u{FFFE}';

/// Tokenizes each caption (one output line per input line).
///
/// Mirrors `PTBTokenizer` on the captions joined with `\n` (`\n` inside a caption becomes a
/// space; carriage returns and other line terminators are removed so lines stay aligned). The
/// lexer sees the following caption after each newline (a few rules look past the line end);
/// the last caption is followed by the end of input.
pub fn tokenize_captions(lines: &[String]) -> Vec<String> {
    let prepared: Vec<Vec<char>> = lines.par_iter().map(|l| prepare(l)).collect();
    (0..prepared.len())
        .into_par_iter()
        .map(|i| {
            let mut buf = prepared[i].clone();
            let end = buf.len();
            if let Some(next) = prepared.get(i + 1) {
                buf.push('\n');
                buf.extend_from_slice(next);
            }
            join_filtered(lex(&buf, end))
        })
        .collect()
}

/// Tokenizes one caption as if it were the whole input.
pub fn tokenize_line(line: &str) -> String {
    let chars = prepare(line);
    join_filtered(lex(&chars, chars.len()))
}

/// Lowercases the tokens, drops the filtered punctuation and joins with single spaces.
fn join_filtered(tokens: Vec<String>) -> String {
    let mut out = String::new();
    for tok in tokens {
        let tok = lowercase(&tok);
        if keep_token(&tok) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&tok);
        }
    }
    out
}

/// pycocoevalcap input preparation: `\n` -> space, other line terminators removed, non-BMP
/// characters as two surrogate stand-ins.
fn prepare(line: &str) -> Vec<char> {
    let mut v = Vec::with_capacity(line.len() + 1);
    for c in line.chars() {
        match c {
            '\n' => v.push(' '),
            '\r' | '\u{000B}' | '\u{000C}' | '\u{0085}' | '\u{2028}' | '\u{2029}' => {}
            c if u32::from(c) > 0xFFFF => v.extend([SURROGATE, SURROGATE]),
            c => v.push(c),
        }
    }
    v
}

/// `-lowerCase`: every token is lowercased (after PTB normalisation).
fn lowercase(tok: &str) -> String {
    tok.to_lowercase()
}

/// The `ptbtokenizer.py` filter: a token survives unless it is exactly one of `PUNCTUATIONS`.
pub fn keep_token(tok: &str) -> bool {
    !PUNCTUATIONS.contains(&tok)
}

/// Runs the lexer over `s[..end]` (`s` may continue with lookahead text); returns the tokens
/// in PTB-normalised form.
fn lex(s: &[char], end: usize) -> Vec<String> {
    let mut toks = Vec::new();
    let mut i = 0;
    while i < end {
        if let Some(stop) = plain_word(s, i) {
            toks.push(s[i..stop].iter().collect());
            i = stop;
            continue;
        }
        let Some((k, stop)) = next_match(s, i) else {
            i += 1; // untokenizable: deleted (with a warning in CoreNLP)
            continue;
        };
        let text = &s[i..stop];
        let (tok, adv) = apply(rules()[k].act, text);
        if let Some(t) = tok {
            let t: String = t.chars().filter(|&c| c != SURROGATE).collect();
            if !t.is_empty() {
                toks.push(t);
            }
        }
        i += adv;
    }
    toks
}

/// Fast path: a run of ASCII letters followed by a space, newline or the end is a `{WORD}`
/// token under every rule (the only longer matches start with other characters), except the
/// split assimilations (`cannot`, `gonna`, ...).
fn plain_word(s: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    while j < s.len() && s[j].is_ascii_alphabetic() {
        j += 1;
    }
    if j == i || (j < s.len() && s[j] != ' ' && s[j] != '\n') {
        return None;
    }
    if j - i == 5 || j - i == 6 {
        let w: String = s[i..j].iter().collect::<String>().to_ascii_lowercase();
        if ["cannot", "gimme", "gonna", "gotta", "lemme", "wanna"].contains(&w.as_str()) {
            return None;
        }
    }
    Some(j)
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
        Act::Phone => (Some(all.replace(' ', "\u{A0}").replace('(', "-LRB-").replace(')', "-RRB-")), n),
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
    s.chars().map(|c| if matches!(c, '\u{80}' | '\u{A4}' | '\u{20A0}' | '\u{20AC}') { '$' } else { c }).collect()
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
