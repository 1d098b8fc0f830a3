//! The PTBLexer rules (CoreNLP 3.4.1, options `-preserveLines -lowerCase`, default
//! `ptb3Escaping`) as an ordered rule table: at each position the longest match wins (the
//! length of a rule with trailing context counts the context), ties go to the earlier rule.
//! Rules whose only effect is an extra `.` token (sentence-final acronym duplication) are left
//! out: the punctuation filter deletes that token anyway.
use std::sync::OnceLock;

use super::classes::*;
use super::re::*;

/// What a rule does with the matched text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    /// Emit the text unchanged.
    Text,
    /// Emit the text without soft hyphens (U+00AD).
    NoSoftHyphens,
    /// Emit a fixed string.
    Fixed(&'static str),
    /// Emit the first `n` characters; the rest is lexed again (`yypushback`).
    Keep(usize),
    /// Emit all but the last `n` characters; the rest is lexed again.
    KeepAllBut(usize),
    /// PTBLexer `handleQuotes` with LaTeX quotes; `true` = probably a left quote.
    Quote(bool),
    /// Spaces become U+00A0 (`normalizeSpace`).
    Nbsp,
    /// Phone number: spaces to U+00A0, round brackets to `-LRB-`/`-RRB-`.
    Phone,
    /// Round brackets to `-LRB-`/`-RRB-` (emoticons).
    Parens,
    /// `normalizeFractions`.
    Fraction,
    /// `normalizeCurrency`.
    Currency,
    /// `&amp;` becomes `&`.
    Amp,
    /// Hyphen runs of length 3 or 4 become `--`.
    Hyphens,
    /// Nothing is emitted.
    Skip,
}

pub struct Rule {
    /// The PTBLexer macro or rule this mirrors (for debugging).
    #[allow(dead_code)]
    pub name: &'static str,
    pub re: Re,
    /// Trailing context (`re/ctx`), which must follow but is not part of the token.
    pub ctx: Option<Re>,
    pub act: Act,
    /// `first[c]`: whether a match can start with ASCII character `c`.
    first: [bool; 128],
}

impl Rule {
    fn new(name: &'static str, re: Re, ctx: Option<Re>, act: Act) -> Self {
        let mut first = [false; 128];
        for (b, f) in first.iter_mut().enumerate() {
            *f = re.may_start(b as u8 as char);
        }
        Rule { name, re, ctx, act, first }
    }
    /// Cheap test whether this rule can match at a position starting with `c`.
    fn may_start(&self, c: char) -> bool {
        if c.is_ascii() {
            self.first[c as usize]
        } else {
            self.re.may_start(c)
        }
    }
}

fn r(name: &'static str, re: Re, act: Act) -> Rule {
    Rule::new(name, re, None, act)
}
fn rc(name: &'static str, re: Re, ctx: Re, act: Act) -> Rule {
    Rule::new(name, re, Some(ctx), act)
}

fn apos_re() -> Re {
    alt(vec![cls(apos), lit("&apos;")])
}
fn aposetc() -> Re {
    alt(vec![cls(apos), lit("&apos;"), cls(apos_extra)])
}
/// `{WORD}`: a letter, then letters or digits, with embedded `.`, `!` or `?` each followed by a
/// letter (`ab.cd`, `ab1.cd`, `yahoo!x` stay whole; `12.ab` and `ab.12` do not start/continue one).
fn word() -> Re {
    let rest = || star(cls(|c| word_char(c) || digit(c)));
    seq(vec![
        cls(word_char),
        rest(),
        star(seq(vec![cls(|c| matches!(c, '.' | '!' | '?')), cls(word_char), rest()])),
    ])
}
fn redaux() -> Re {
    seq(vec![apos_re(), lits(&["m", "s", "d", "re", "ve", "ll"])])
}
fn sredaux() -> Re {
    seq(vec![lit("n"), aposetc(), lit("t")])
}
/// `[A-Za-z\u00AD]*[A-MO-Za-mo-z](\u00AD)*`: a word that can take `n't`.
fn sword() -> Re {
    seq(vec![
        star(cls(|c| c.is_ascii_alphabetic() || c == '\u{AD}')),
        cls(|c| c.is_ascii_alphabetic() && c != 'n' && c != 'N'),
        star(lit("\u{AD}")),
    ])
}
fn acro() -> Re {
    alt(vec![
        seq(vec![cls(ascii_alpha), plus(seq(vec![lit("."), cls(ascii_alpha)]))]),
        seq(vec![lits(&["Canada", "Sino", "Korean", "EU", "Japan", "non"]), lit("-U.S")]),
        seq(vec![lit("U.S.-"), lits(&["U.K", "U.S.S.R"])]),
    ])
}
/// `{ABBREV1}` stems (caseless): months, days, states, companies, `{ABPTIT}`, `etc|al|seq`.
const ABBREV1: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov",
    "Dec", // ABMONTH
    "Mon", "Tue", "Tues", "Wed", "Thu", "Thurs", "Fri", // ABDAYS
    "Ala", "Ariz", "Calif", "Colo", "Conn", "Dak", "Del", "Fla", "Ga", "Ind", "Kan", "Kans", "Ky",
    "La", "Md", "Mich", "Minn", "Mo", "Mont", "Neb", "Nev", "Okla", "Pa", "Penn", "Tenn", "Tex",
    "Va", "Vt", "Wis", "Wisc", "Wyo", // ABSTATE (caseless part)
    "Inc", "Co", "Cos", "Corp", "Pty", "Ptys", "Ppty", "Pptys", "Ltd", "Plc", "Bancorp", "Dept",
    "Bhd", "Assn", "Univ", "Intl", "Sys", // ABCOMP
    "Jr", "Sr", "Bros", "Ed.D", "Ph.D", "Blvd", "Rd", "Esq", // ABPTIT
    "etc", "al", "seq",
];
/// `{ABBREV1}` stems whose first letter is case-sensitive: [A]rk [I]ll [M]ass [M]iss [O]re [W]ash.
const ABBREV1_CASED: [(char, &str); 6] =
    [('A', "rk"), ('I', "ll"), ('M', "ass"), ('M', "iss"), ('O', "re"), ('W', "ash")];
/// `{ABTITLE}` and the other words of `{ABBREV4}` (caseless; `[M]iss` separately).
const ABBREV4: &[&str] = &[
    "Mr", "Mrs", "Ms", "Dr", "Drs", "Prof", "Profs", "Sen", "Sens", "Rep", "Reps", "Atty", "Attys",
    "Lt", "Col", "Gen", "Messrs", "Gov", "Govs", "Adm", "Rev", "Maj", "Sgt", "Cpl", "Pvt", "Mt",
    "Capt", "St", "Ste", "Ave", "Pres", "Lieut", "Hon", "Brig", "Cmdr", "Comdr", "Pfc", "Spc",
    "Supt", "Supts", "Det", // ABTITLE
    "vs", "Alex", "Wm", "Jos", "Cie", "a.k.a", "cf", "TREAS", "Invt", "Elec", "Natl", "Mfg", "Mtg",
];
/// `{ABNUM}` stems: abbreviations kept only before a number (`no. 5`).
const ABNUM: &[&str] = &["no", "nos", "prop", "ph", "tel", "est", "ext", "sq", "ft"];

/// Whether `word` followed by `.` could be taken as an abbreviation by some rule (used by the
/// lexer's fast path: other words followed by `.` are a `{WORD}` and a period).
pub fn may_be_abbreviation(word: &str) -> bool {
    if word.chars().count() == 1 {
        return true;
    }
    // Every other test is an ASCII-caseless comparison with a fixed word: one set lookup.
    let (set, longest) = abbreviations();
    word.len() <= *longest && set.contains(&word.to_ascii_lowercase())
}

/// The words of `ABBREV1`, `ABBREV4`, `ABNUM`, `ABBREV1_CASED` and `Miss`, ASCII-lowercased,
/// and the longest one's length.
fn abbreviations() -> &'static (std::collections::HashSet<String>, usize) {
    static SET: std::sync::OnceLock<(std::collections::HashSet<String>, usize)> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| {
        let cased = ABBREV1_CASED.iter().map(|(c, rest)| format!("{c}{rest}"));
        let set: std::collections::HashSet<String> = ABBREV1
            .iter()
            .chain(ABBREV4)
            .chain(ABNUM)
            .map(|w| w.to_string())
            .chain(cased)
            .chain(["Miss".to_owned()])
            .map(|w| w.to_ascii_lowercase())
            .collect();
        let longest = set.iter().map(String::len).max().unwrap_or(0);
        (set, longest)
    })
}

fn abbrev1_stem() -> Re {
    let mut v: Vec<Re> = ABBREV1.iter().map(|s| lit(s)).collect();
    for (first, rest) in ABBREV1_CASED {
        v.push(seq(vec![cls_eq(first), lit(rest)]));
    }
    alt(v)
}
/// `{ABBREV4}`: single letters, titles, `vs`, `{ACRO}`, `{ABCOMP2}` and a few names.
fn abbrev4() -> Re {
    let mut v: Vec<Re> = ABBREV4.iter().map(|s| lit(s)).collect();
    v.push(seq(vec![cls_eq('M'), lit("iss")]));
    v.push(cls(ascii_alpha));
    v.push(acro());
    alt(v)
}
fn digits(min: usize, max: usize) -> Re {
    rep(cls(digit), min, max)
}
fn adigits(min: usize, max: usize) -> Re {
    rep(cls(ascii_digit), min, max)
}
fn phone_sep() -> Re {
    cls(|c| matches!(c, '-' | ' ' | '\u{A0}'))
}
fn plus_signs() -> Re {
    seq(vec![lit("+"), opt(lit("+"))])
}
fn phone() -> Re {
    alt(vec![
        seq(vec![
            alt(vec![
                seq(vec![
                    lit("("),
                    adigits(2, 3),
                    lit(")"),
                    opt(cls(|c| c == ' ' || c == '\u{A0}')),
                ]),
                seq(vec![
                    opt(plus_signs()),
                    opt(seq(vec![adigits(2, 4), phone_sep()])),
                    adigits(2, 4),
                    phone_sep(),
                ]),
            ]),
            adigits(3, 4),
            opt(phone_sep()),
            adigits(3, 5),
        ]),
        seq(vec![
            opt(seq(vec![opt(plus_signs()), adigits(2, 4), lit(".")])),
            adigits(2, 4),
            lit("."),
            adigits(3, 4),
            lit("."),
            adigits(3, 5),
        ]),
    ])
}
fn url_path() -> Re {
    opt(seq(vec![lit("/"), plus(cls(url_body)), cls(url_end)]))
}
fn thing_part() -> Re {
    seq(vec![
        opt(seq(vec![
            cls(|c| matches!(c, 'd' | 'D' | 'o' | 'O' | 'l' | 'L')),
            aposetc(),
            cls(alnum),
        ])),
        plus(cls(alnum)),
    ])
}
fn thing() -> Re {
    seq(vec![thing_part(), star(seq(vec![cls(hyphen), thing_part()]))])
}
fn hthing() -> Re {
    seq(vec![
        cls(ascii_alnum),
        star(cls(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ',' | '\u{AD}'))),
        plus(seq(vec![
            lit("-"),
            alt(vec![
                plus(cls(|c| c.is_ascii_alphanumeric() || c == '\u{AD}')),
                seq(vec![acro(), lit(".")]),
            ]),
        ])),
    ])
}
fn thinga() -> Re {
    seq(vec![
        plus(cls(ascii_upper)),
        plus(seq(vec![
            alt(vec![cls(|c| c == '+' || c == '&'), lit("&amp;")]),
            plus(cls(ascii_upper)),
        ])),
    ])
}
/// `{SPACENL}+` + a capitalised sentence-starting word + `{SPACENL}` (the word list of
/// the PTBLexer `{ACRONYM}` rule; first letter case-sensitive).
fn sentence_start() -> Re {
    const WORDS: [&str; 45] = [
        "About",
        "According",
        "Additionally",
        "After",
        "An",
        "A",
        "As",
        "At",
        "But",
        "Earlier",
        "He",
        "Her",
        "Here",
        "However",
        "If",
        "In",
        "It",
        "Last",
        "Many",
        "More",
        "Mr.",
        "Ms.",
        "Now",
        "Once",
        "One",
        "Other",
        "Our",
        "She",
        "Since",
        "So",
        "Some",
        "Such",
        "That",
        "The",
        "Then",
        "There",
        "These",
        "They",
        "This",
        "We",
        "When",
        "While",
        "What",
        "Yet",
        "You",
    ];
    let words = alt(WORDS
        .iter()
        .map(|w| {
            let first = w.as_bytes()[0] as char;
            seq(vec![cls_eq(first), lit(&w[1..])])
        })
        .collect());
    seq(vec![plus(cls(spacenl)), alt(vec![words, sgml()]), cls(spacenl)])
}
/// A class of exactly one (upper-case) ASCII letter.
fn cls_eq(c: char) -> Re {
    const UP: [fn(char) -> bool; 26] = [
        |x| x == 'A',
        |x| x == 'B',
        |x| x == 'C',
        |x| x == 'D',
        |x| x == 'E',
        |x| x == 'F',
        |x| x == 'G',
        |x| x == 'H',
        |x| x == 'I',
        |x| x == 'J',
        |x| x == 'K',
        |x| x == 'L',
        |x| x == 'M',
        |x| x == 'N',
        |x| x == 'O',
        |x| x == 'P',
        |x| x == 'Q',
        |x| x == 'R',
        |x| x == 'S',
        |x| x == 'T',
        |x| x == 'U',
        |x| x == 'V',
        |x| x == 'W',
        |x| x == 'X',
        |x| x == 'Y',
        |x| x == 'Z',
    ];
    cls(UP[(c as u8 - b'A') as usize])
}
/// `{SGML}`: `<!...>`/`<?...>` declarations, `<name attr attr=value ...>` and `</name>`
/// (names `[A-Za-z][A-Za-z0-9_:.-]*`, values quoted or a name); inner spaces become U+00A0.
fn sgml() -> Re {
    let name = || {
        seq(vec![
            cls(ascii_alpha),
            star(cls(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '-'))),
        ])
    };
    let sp = || star(lit(" "));
    let value = alt(vec![
        // Quoted values stop at a line end, so a token never spans two captions.
        seq(vec![lit("'"), star(cls(|c| !matches!(c, '\'' | '\n' | '\r'))), lit("'")]),
        seq(vec![lit("\""), star(cls(|c| !matches!(c, '"' | '\n' | '\r'))), lit("\"")]),
        name(),
    ]);
    let attr = alt(vec![name(), seq(vec![name(), sp(), lit("="), sp(), value])]);
    seq(vec![
        lit("<"),
        alt(vec![
            seq(vec![
                cls(|c| c == '!' || c == '?'),
                cls(|c| c.is_ascii_alphabetic() || c == '-'),
                star(cls(|c| !matches!(c, '>' | '\r' | '\n'))),
            ]),
            seq(vec![name(), star(seq(vec![plus(lit(" ")), attr])), sp(), opt(lit("/"))]),
            seq(vec![lit("/"), name()]),
        ]),
        sp(),
        lit(">"),
    ])
}
fn dot_insentp(re: Re) -> Re {
    seq(vec![re, lit(".")])
}

/// All rules in `PTBLexer.flex` order.
pub fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(build)
}

fn build() -> Vec<Rule> {
    let apos_word = alt(vec![
        seq(vec![apos_re(), lit("n"), opt(apos_re())]),
        seq(vec![cls(|c| matches!(c, 'l' | 'L' | 'd' | 'D' | 'j' | 'J')), apos_re()]),
        seq(vec![lits(&["Dunkin", "somethin", "ol"]), apos_re()]),
        seq(vec![apos_re(), lit("em")]),
        seq(vec![
            cls(|c| matches!(c, 'A'..='H' | 'J'..='X' | 'Z' | 'n')),
            aposetc(),
            rep(cls(letter), 2, MANY),
        ]),
        seq(vec![apos_re(), cls(|c| ('2'..='9').contains(&c)), lit("0s")]),
        seq(vec![apos_re(), lit("til"), opt(lit("l"))]),
        seq(vec![
            plus(cls(letter)),
            cls(|c| "aeiouyAEIOUY".contains(c)),
            aposetc(),
            cls(|c| "aeiou".contains(c) || c.is_ascii_uppercase()),
            star(cls(letter)),
        ]),
        seq(vec![apos_re(), lit("cause")]),
        seq(vec![lit("cont'd"), opt(lit("."))]),
        lits(&["nor'easter", "c'mon", "e'er", "s'mores", "ev'ry", "li'l", "nat'l"]),
    ]);
    let number = seq(vec![
        opt(cls(|c| c == '-' || c == '+')),
        alt(vec![
            plus(cls(digit)),
            seq(vec![
                star(cls(digit)),
                plus(seq(vec![
                    cls(|c| matches!(c, '.' | ':' | ',' | '\u{AD}' | '\u{66B}' | '\u{66C}')),
                    plus(cls(digit)),
                ])),
            ]),
        ]),
    ]);
    let frac = seq(vec![
        opt(seq(vec![digits(1, 4), cls(|c| matches!(c, '-' | ' ' | '\u{A0}'))])),
        digits(1, 4),
        alt(vec![seq(vec![opt(lit("\\")), lit("/")]), lit("\u{2044}")]),
        digits(1, 4),
    ]);
    let likely_url = seq(vec![
        alt(vec![
            seq(vec![
                lit("www."),
                plus(seq(vec![plus(cls(www_label)), lit(".")])),
                rep(cls(ascii_alpha), 2, 4),
            ]),
            seq(vec![
                plus(seq(vec![plus(cls(url_label)), lit(".")])),
                lits(&["com", "net", "org", "edu"]),
            ]),
        ]),
        url_path(),
    ]);
    let amp = || alt(vec![lit("&"), lit("&amp;")]);
    vec![
        // splitAssimilations: cannot -> can not, gonna -> gon na, 'tis -> 't is, ...
        r("cannot", lit("cannot"), Act::Keep(3)),
        r("assim3", lits(&["gimme", "gonna", "gotta", "lemme", "wanna"]), Act::Keep(3)),
        r("more'n", seq(vec![lit("more"), apos_re(), lit("n")]), Act::KeepAllBut(2)),
        r("'tis", seq(vec![apos_re(), lit("tis")]), Act::KeepAllBut(2)),
        r("'twas", seq(vec![apos_re(), lit("twas")]), Act::KeepAllBut(3)),
        r("SGML", sgml(), Act::Nbsp),
        r(
            "SPMDASH",
            alt(vec![lits(&["&MD;", "&mdash;", "&ndash;"]), cls(dash_char)]),
            Act::Fixed("--"),
        ),
        r("SPAMP", lit("&amp;"), Act::Amp),
        r(
            "SPPUNC",
            alt(vec![
                lits(&["&HT;", "&TL;", "&UR;", "&LR;", "&QC;", "&QL;", "&QR;", "&odq;", "&cdq;"]),
                seq(vec![lit("&#"), plus(cls(ascii_digit)), lit(";")]),
            ]),
            Act::Text,
        ),
        rc("WORD/REDAUX", word(), redaux(), Act::NoSoftHyphens),
        rc("SWORD/SREDAUX", sword(), sredaux(), Act::NoSoftHyphens),
        r("WORD", word(), Act::NoSoftHyphens),
        r("APOWORD", apos_word, Act::Text),
        rc("APOWORD2", seq(vec![lit("y"), apos_re()]), cls(letter), Act::Text),
        r(
            "FULLURL",
            seq(vec![lit("http"), opt(lit("s")), lit("://"), plus(cls(url_body)), cls(url_end)]),
            Act::Text,
        ),
        r("LIKELYURL", likely_url, Act::Text),
        r(
            "EMAIL",
            seq(vec![
                cls(ascii_alnum),
                star(cls(email_local)),
                lit("@"),
                star(seq(vec![plus(cls(email_domain)), lit(".")])),
                plus(cls(email_domain)),
            ]),
            Act::Text,
        ),
        r(
            "TWITTER",
            alt(vec![
                seq(vec![
                    lit("@"),
                    cls(|c| c.is_ascii_alphabetic() || c == '_'),
                    star(cls(|c| c.is_ascii_alphanumeric() || c == '_')),
                ]),
                seq(vec![lit("#"), plus(cls(word_char))]),
            ]),
            Act::Text,
        ),
        rc("REDAUX/", redaux(), cls(not_ascii_alpha), Act::Quote(false)),
        r("SREDAUX", sredaux(), Act::Quote(false)),
        // Emoticons: `[<>]?[:;=][\-o\*']?[\(\)DPdp\\{@\|\[\]]`, brackets escaped.
        rc(
            "SMILEY",
            seq(vec![
                opt(cls(|c| c == '<' || c == '>')),
                cls(|c| matches!(c, ':' | ';' | '=')),
                opt(cls(|c| matches!(c, '-' | 'o' | '*' | '\''))),
                cls(|c| {
                    matches!(
                        c,
                        '(' | ')' | 'D' | 'P' | 'd' | 'p' | '\\' | '{' | '@' | '|' | '[' | ']'
                    )
                }),
            ]),
            cls(|c| !c.is_alphanumeric()),
            Act::Parens,
        ),
        r(
            "DATE",
            seq(vec![
                digits(1, 2),
                cls(|c| c == '-' || c == '/'),
                digits(1, 2),
                cls(|c| c == '-' || c == '/'),
                digits(2, 4),
            ]),
            Act::Text,
        ),
        r("NUMBER", number, Act::NoSoftHyphens),
        r(
            "SUBSUPNUM",
            seq(vec![opt(cls(subsup_sign)), alt(vec![plus(cls(sup_digit)), plus(cls(sub_digit))])]),
            Act::Text,
        ),
        r("FRAC", frac, Act::Nbsp),
        r("FRAC2", cls(frac2), Act::Fraction),
        r(
            "TBSPEC",
            alt(vec![
                seq(vec![lit("-"), lits(&["RRB", "LRB", "RCB", "LCB", "RSB", "LSB"]), lit("-")]),
                lits(&["C.D.s", "pro-", "anti-"]),
                seq(vec![lit("S"), amp(), lit("P-500")]),
                seq(vec![lit("S"), amp(), lit("Ls")]),
                seq(vec![lit("Cap"), apos_re(), lit("n")]),
                seq(vec![lit("c"), apos_re(), lit("est")]),
            ]),
            Act::Amp,
        ),
        r(
            "THING3",
            seq(vec![
                plus(cls(ascii_alnum)),
                rep(seq(vec![lit("-"), plus(cls(ascii_alpha))]), 0, 2),
                rep(
                    seq(vec![
                        opt(lit("\\")),
                        lit("/"),
                        plus(cls(ascii_alnum)),
                        rep(seq(vec![lit("-"), plus(cls(ascii_alpha))]), 0, 2),
                    ]),
                    1,
                    2,
                ),
            ]),
            Act::Text,
        ),
        r("DOLSIGN", alt(vec![seq(vec![star(cls(ascii_upper)), lit("$")]), lit("#")]), Act::Text),
        r("DOLSIGN2", cls(dolsign2), Act::Currency),
        // A single letter before a capitalised sentence starter is not an initial: `x. The` -> `x` `.`.
        rc("LETTER./SENTSTART", dot_insentp(cls(ascii_alpha)), sentence_start(), Act::Keep(1)),
        rc("ABNUM", dot_insentp(lits(ABNUM)), seq(vec![opt(cls(spacenl)), cls(digit)]), Act::Text),
        // `{ABBREV1}/[^][^]`: the two-character context outweighs `{WORD}` on `etc.a x`.
        rc(
            "ABBREV1/[^][^]",
            dot_insentp(abbrev1_stem()),
            seq(vec![cls(|_| true), cls(|_| true)]),
            Act::Text,
        ),
        r("ABBREV1", dot_insentp(abbrev1_stem()), Act::Text),
        r("ABBREV2", dot_insentp(abbrev4()), Act::Text),
        rc("ABBREV4/SPACE", abbrev4(), cls(space), Act::Text),
        rc("ACRO/SPACENL", acro(), cls(spacenl), Act::Text),
        rc(
            "TBSPEC2/SPACENL",
            seq(vec![apos_re(), cls(ascii_digit), cls(ascii_digit)]),
            cls(spacenl),
            Act::Text,
        ),
        rc("WORD./INSENTP", dot_insentp(word()), cls(insentp), Act::NoSoftHyphens),
        r("PHONE", phone(), Act::Phone),
        rc(
            "DBLQUOT/",
            alt(vec![lit("\""), lit("&quot;")]),
            cls(|c| c.is_ascii_alphanumeric() || c == '$'),
            Act::Quote(true),
        ),
        r("DBLQUOT", alt(vec![lit("\""), lit("&quot;")]), Act::Quote(false)),
        r("DEL", lit("\u{7F}"), Act::Skip),
        r("LSB", lit("["), Act::Fixed("-LSB-")),
        r("RSB", lit("]"), Act::Fixed("-RSB-")),
        r("LT", alt(vec![lit("<"), lit("&lt;")]), Act::Fixed("<")),
        r("GT", alt(vec![lit(">"), lit("&gt;")]), Act::Fixed(">")),
        r("LCB", lit("{"), Act::Fixed("-LCB-")),
        r("RCB", lit("}"), Act::Fixed("-RCB-")),
        r("LRB", lit("("), Act::Fixed("-LRB-")),
        r("RRB", lit(")"), Act::Fixed("-RRB-")),
        r("HYPHENS", plus(lit("-")), Act::Hyphens),
        r(
            "LDOTS",
            alt(vec![
                rep(lit("."), 3, 5),
                seq(vec![
                    rep(seq(vec![lit("."), cls(|c| c == ' ' || c == '\u{A0}')]), 2, 4),
                    lit("."),
                ]),
                cls(|c| c == '\u{85}' || c == '\u{2026}'),
            ]),
            Act::Fixed("..."),
        ),
        r("FNMARKS", alt(vec![plus(lit("@")), plus(lit("#")), plus(lit("_"))]), Act::Text),
        r("ASTS", alt(vec![plus(lit("*")), rep(lit("\\*"), 1, 3)]), Act::Text),
        r("INSENTP", cls(insentp), Act::Text),
        r("?!", plus(cls(|c| c == '?' || c == '!')), Act::Text),
        r("PERIOD", cls(period_like), Act::Text),
        r("=", lit("="), Act::Text),
        r("/", lit("/"), Act::Text),
        rc("HTHING./INSENTP", dot_insentp(hthing()), cls(insentp), Act::NoSoftHyphens),
        r("HTHING", hthing(), Act::NoSoftHyphens),
        rc("THING./INSENTP", dot_insentp(thing()), cls(insentp), Act::Text),
        r("THING", thing(), Act::Text),
        rc("THINGA./INSENTP", dot_insentp(thinga()), cls(insentp), Act::Amp),
        r("THINGA", thinga(), Act::Amp),
        rc(
            "'/",
            lit("'"),
            seq(vec![cls(ascii_alpha), cls(|c| !matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{A0}'))]),
            Act::Quote(true),
        ),
        r("REDAUX", redaux(), Act::Quote(false)),
        r("QUOTES", alt(vec![apos_re(), lit("''"), rep(cls(quote_char), 1, 2)]), Act::Quote(false)),
        r("FAKEDUCKFEET", lits(&["<<", ">>"]), Act::Text),
        r("MISCSYMBOL", cls(misc_symbol), Act::Text),
        r("SPACES", alt(vec![plus(cls(space)), cls(ignorable)]), Act::Skip),
        r("NEWLINE", cls(newline), Act::Skip),
        r("&nbsp;", lit("&nbsp;"), Act::Skip),
    ]
}

/// The winning rule at `i`: (rule index, token end). `None` means no rule matches (the
/// character is untokenizable and deleted).
pub fn next_match(s: &[char], i: usize) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize, usize)> = None; // (total, rule, token end)
    let mut ends = Vec::new();
    let c = s[i];
    for (k, rule) in rules().iter().enumerate() {
        if !rule.may_start(c) {
            continue;
        }
        ends.clear();
        rule.re.ends(s, i, &mut ends);
        if ends.is_empty() {
            continue;
        }
        let cand = match &rule.ctx {
            None => ends.iter().max().map(|&e| (e, e)),
            Some(ctx) => ends.iter().filter_map(|&e| ctx.longest(s, e).map(|t| (t, e))).max(),
        };
        if let Some((total, end)) = cand {
            if end > i && best.is_none_or(|b| total > b.0) {
                best = Some((total, k, end));
            }
        }
    }
    best.map(|(_, k, end)| (k, end))
}
