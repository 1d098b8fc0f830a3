//! Character classes of the PTBLexer macros (CoreNLP 3.4.1 `PTBLexer.flex`).

/// `[:letter:]` (Java `Character.isLetter`, approximated by the Unicode Alphabetic property).
pub fn letter(c: char) -> bool {
    c.is_alphabetic()
}

/// `{DIGIT}` = `[:digit:]|[\u07C0-\u07C9]` (decimal digits of the common scripts).
pub fn digit(c: char) -> bool {
    c.is_ascii_digit()
        || matches!(c, '\u{0660}'..='\u{0669}' | '\u{06F0}'..='\u{06F9}' | '\u{07C0}'..='\u{07C9}'
            | '\u{0966}'..='\u{096F}' | '\u{09E6}'..='\u{09EF}' | '\u{FF10}'..='\u{FF19}')
}

/// `[:letter:]|[:digit:]`.
pub fn alnum(c: char) -> bool {
    letter(c) || digit(c)
}

/// One character of `{WORD}`: a letter, soft hyphen or one of the listed combining marks.
pub fn word_char(c: char) -> bool {
    letter(c)
        || matches!(c, '\u{00AD}' | '\u{0237}'..='\u{024F}' | '\u{02C2}'..='\u{02C5}' | '\u{02D2}'..='\u{02DF}'
            | '\u{02E5}'..='\u{02FF}' | '\u{0300}'..='\u{036F}' | '\u{0483}'..='\u{0487}'
            | '\u{0591}'..='\u{05BD}' | '\u{064B}'..='\u{065E}' | '\u{0900}'..='\u{0903}')
}

/// `{SPACE}` = `[ \t\u00A0\u2000-\u200A\u3000]`.
pub fn space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{3000}')
}

/// `{NEWLINE}` characters: `\r \n \u2028 \u2029 \u000B \u000C \u0085`.
pub fn newline(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{2028}' | '\u{2029}' | '\u{000B}' | '\u{000C}' | '\u{0085}')
}

/// `{SPACENL}`.
pub fn spacenl(c: char) -> bool {
    space(c) || newline(c)
}

/// `{APOS}` characters (without the `&apos;` entity): `'`, U+0092, U+2019.
pub fn apos(c: char) -> bool {
    matches!(c, '\'' | '\u{0092}' | '\u{2019}')
}

/// Extra apostrophes allowed inside words (`{APOSETCETERA}` minus `{APOS}`).
pub fn apos_extra(c: char) -> bool {
    matches!(c, '\u{0091}' | '\u{2018}' | '\u{201B}')
}

pub fn ascii_alpha(c: char) -> bool {
    c.is_ascii_alphabetic()
}
pub fn ascii_upper(c: char) -> bool {
    c.is_ascii_uppercase()
}
pub fn ascii_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}
pub fn ascii_digit(c: char) -> bool {
    c.is_ascii_digit()
}
pub fn not_ascii_alpha(c: char) -> bool {
    !c.is_ascii_alphabetic()
}

/// `{HYPHEN}` = `[-_\u058A\u2010\u2011]`.
pub fn hyphen(c: char) -> bool {
    matches!(c, '-' | '_' | '\u{058A}' | '\u{2010}' | '\u{2011}')
}

/// `{INSENTP}` = `[,;:\u3001]`.
pub fn insentp(c: char) -> bool {
    matches!(c, ',' | ';' | ':' | '\u{3001}')
}

/// URL body: `[^ \t\n\f\r\"<>|()]`.
pub fn url_body(c: char) -> bool {
    !matches!(c, ' ' | '\t' | '\n' | '\u{000C}' | '\r' | '"' | '<' | '>' | '|' | '(' | ')')
}

/// URL last character: `[^ \t\n\f\r\"<>|.!?(){},-]`.
pub fn url_end(c: char) -> bool {
    url_body(c) && !matches!(c, '.' | '!' | '?' | '{' | '}' | ',' | '-')
}

/// `www.` label character: `[^ \t\n\f\r\"<>|.!?(){},]`.
pub fn www_label(c: char) -> bool {
    url_body(c) && !matches!(c, '.' | '!' | '?' | '{' | '}' | ',')
}

/// Likely-URL label character: `[^ \t\n\f\r\"`'<>|.!?(){},-_$]` (`,-_` is a range U+002C..U+005F).
pub fn url_label(c: char) -> bool {
    url_body(c) && !matches!(c, '`' | '\'' | '.' | '!' | '?' | '{' | '}' | '$' | ','..='_')
}

/// E-mail local part: `[^ \t\n\f\r\"<>|(){}\u00A0]` (braces excluded as the 3.4.1 jar does).
pub fn email_local(c: char) -> bool {
    url_body(c) && !matches!(c, '\u{00A0}' | '{' | '}')
}

/// E-mail domain label: the local-part class without `.`.
pub fn email_domain(c: char) -> bool {
    email_local(c) && c != '.'
}

/// `[\u207A\u207B\u208A\u208B]`.
pub fn subsup_sign(c: char) -> bool {
    matches!(c, '\u{207A}' | '\u{207B}' | '\u{208A}' | '\u{208B}')
}
/// Superscript digits.
pub fn sup_digit(c: char) -> bool {
    matches!(c, '\u{2070}' | '\u{00B9}' | '\u{00B2}' | '\u{00B3}' | '\u{2074}'..='\u{2079}')
}
/// Subscript digits.
pub fn sub_digit(c: char) -> bool {
    matches!(c, '\u{2080}'..='\u{2089}')
}

/// `{FRAC2}` vulgar fractions.
pub fn frac2(c: char) -> bool {
    matches!(c, '\u{00BC}' | '\u{00BD}' | '\u{00BE}' | '\u{2153}'..='\u{215E}')
}

/// `{DOLSIGN2}` currency signs.
pub fn dolsign2(c: char) -> bool {
    matches!(
        c,
        '\u{00A2}'
            | '\u{00A3}'
            | '\u{00A4}'
            | '\u{00A5}'
            | '\u{0080}'
            | '\u{20A0}'
            | '\u{20AC}'
            | '\u{060B}'
            | '\u{0E3F}'
            | '\u{20A4}'
            | '\u{FFE0}'
            | '\u{FFE1}'
            | '\u{FFE5}'
            | '\u{FFE6}'
    )
}

/// `{SPMDASH}` characters (en/em dashes and CP1252 dashes).
pub fn dash_char(c: char) -> bool {
    matches!(c, '\u{0096}' | '\u{0097}' | '\u{2013}' | '\u{2014}' | '\u{2015}')
}

/// Single-character quote marks of `{QUOTES}` (besides `{APOS}` and `''`).
pub fn quote_char(c: char) -> bool {
    matches!(
        c,
        '`' | '\u{2018}'
            | '\u{2019}'
            | '\u{201A}'
            | '\u{201B}'
            | '\u{201C}'
            | '\u{201D}'
            | '\u{0091}'
            | '\u{0092}'
            | '\u{0093}'
            | '\u{0094}'
            | '\u{201E}'
            | '\u{201F}'
            | '\u{2039}'
            | '\u{203A}'
            | '\u{00AB}'
            | '\u{00BB}'
    )
}

/// Sentence-final punctuation other than `?!`: `[.¡¿\u037E\u0589\u061F\u06D4\u0700-\u0702\u07FA\u3002]`.
pub fn period_like(c: char) -> bool {
    matches!(
        c,
        '.' | '¡' | '¿' | '\u{037E}' | '\u{0589}' | '\u{061F}' | '\u{06D4}' | '\u{0700}'
            ..='\u{0702}' | '\u{07FA}' | '\u{3002}'
    )
}

/// `{MISCSYMBOL}`: symbols that form a token on their own.
pub fn misc_symbol(c: char) -> bool {
    matches!(c, '+' | '%' | '&' | '~' | '^' | '|' | '\\' | '¦' | '\u{00A7}' | '¨' | '\u{00A9}' | '\u{00AC}'
        | '\u{00AE}' | '¯' | '\u{00B0}'..='\u{00BA}' | '\u{00D7}' | '\u{00F7}' | '\u{0387}' | '\u{05BE}'
        | '\u{05C0}' | '\u{05C3}' | '\u{05C6}' | '\u{05F3}' | '\u{05F4}' | '\u{0600}'..='\u{0603}'
        | '\u{0606}'..='\u{060A}' | '\u{060C}' | '\u{0614}' | '\u{061B}' | '\u{061E}' | '\u{066A}' | '\u{066D}'
        | '\u{0703}'..='\u{070D}' | '\u{07F6}'..='\u{07F8}' | '\u{0964}' | '\u{0965}' | '\u{0E4F}' | '\u{1FBD}'
        | '\u{2016}' | '\u{2017}' | '\u{2020}'..='\u{2023}' | '\u{2030}'..='\u{2038}' | '\u{203B}'
        | '\u{203E}'..='\u{2042}' | '\u{2044}' | '\u{207A}'..='\u{207F}' | '\u{208A}'..='\u{208E}'
        | '\u{2100}'..='\u{214F}' | '\u{2190}'..='\u{21FF}' | '\u{2200}'..='\u{2BFF}' | '\u{3012}' | '\u{30FB}'
        | '\u{FF01}'..='\u{FF0F}' | '\u{FF1A}'..='\u{FF20}' | '\u{FF3B}'..='\u{FF40}' | '\u{FF5B}'..='\u{FF65}')
}

/// Ignored characters: `\0`, zero-width space and marks, BOM.
pub fn ignorable(c: char) -> bool {
    matches!(c, '\0' | '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert!(letter('é') && letter('Ａ') && !letter('1'));
        assert!(digit('7') && !digit('²'));
        assert!(space('\u{a0}') && !space('\n') && newline('\u{2028}'));
        assert!(url_label('a') && !url_label('G') && !url_label('5'));
        assert!(misc_symbol('%') && misc_symbol('\\') && !misc_symbol('$'));
    }
}
