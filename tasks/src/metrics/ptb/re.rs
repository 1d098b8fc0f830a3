//! A tiny regular-expression engine for the lexer rules: every expression yields the set of
//! positions where a match starting at `i` can end, so the lexer can take the longest match
//! the way a JFlex scanner does. Literals are ASCII-caseless (the lexer is `%caseless`);
//! character classes are case-sensitive, as in JFlex.

/// A regular expression over `char`s.
pub enum Re {
    /// One character satisfying the predicate.
    Class(fn(char) -> bool),
    /// A literal string, ASCII case-insensitive.
    Lit(&'static str),
    Seq(Vec<Re>),
    Alt(Vec<Re>),
    /// `{min,max}` repetition; every iteration must consume at least one character.
    Rep(Box<Re>, usize, usize),
}

pub const MANY: usize = usize::MAX;

pub fn cls(f: fn(char) -> bool) -> Re {
    Re::Class(f)
}
pub fn lit(s: &'static str) -> Re {
    Re::Lit(s)
}
pub fn seq(v: Vec<Re>) -> Re {
    Re::Seq(v)
}
pub fn alt(v: Vec<Re>) -> Re {
    Re::Alt(v)
}
/// Alternation of caseless literals.
pub fn lits(v: &[&'static str]) -> Re {
    Re::Alt(v.iter().map(|s| Re::Lit(s)).collect())
}
pub fn rep(r: Re, min: usize, max: usize) -> Re {
    Re::Rep(Box::new(r), min, max)
}
pub fn plus(r: Re) -> Re {
    rep(r, 1, MANY)
}
pub fn star(r: Re) -> Re {
    rep(r, 0, MANY)
}
pub fn opt(r: Re) -> Re {
    rep(r, 0, 1)
}

impl Re {
    /// Appends to `out` every end position of a match of `self` starting at `i` (unsorted,
    /// possibly with duplicates).
    pub fn ends(&self, s: &[char], i: usize, out: &mut Vec<usize>) {
        match self {
            Re::Class(f) => {
                if i < s.len() && f(s[i]) {
                    out.push(i + 1);
                }
            }
            Re::Lit(l) => {
                let mut j = i;
                for lc in l.chars() {
                    if j < s.len() && s[j].eq_ignore_ascii_case(&lc) {
                        j += 1;
                    } else {
                        return;
                    }
                }
                out.push(j);
            }
            Re::Seq(v) => {
                let mut cur = vec![i];
                for r in v {
                    let mut next = Vec::new();
                    for &e in &cur {
                        r.ends(s, e, &mut next);
                    }
                    next.sort_unstable();
                    next.dedup();
                    if next.is_empty() {
                        return;
                    }
                    cur = next;
                }
                out.extend(cur);
            }
            Re::Alt(v) => {
                for r in v {
                    r.ends(s, i, out);
                }
            }
            Re::Rep(r, min, max) => {
                if *min == 0 {
                    out.push(i);
                }
                let mut cur = vec![i];
                let mut k = 0;
                while k < *max && !cur.is_empty() {
                    k += 1;
                    let mut next = Vec::new();
                    for &e in &cur {
                        r.ends(s, e, &mut next);
                    }
                    next.sort_unstable();
                    next.dedup();
                    if k >= *min {
                        out.extend(next.iter().copied());
                    }
                    cur = next;
                }
            }
        }
    }

    /// The longest match starting at `i`, if any.
    pub fn longest(&self, s: &[char], i: usize) -> Option<usize> {
        let mut out = Vec::new();
        self.ends(s, i, &mut out);
        out.into_iter().max()
    }

    /// All match ends starting at `i`, sorted and deduplicated.
    #[cfg(test)]
    pub fn all(&self, s: &[char], i: usize) -> Vec<usize> {
        let mut out = Vec::new();
        self.ends(s, i, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether the expression matches the empty string.
    pub fn nullable(&self) -> bool {
        match self {
            Re::Class(_) => false,
            Re::Lit(l) => l.is_empty(),
            Re::Seq(v) => v.iter().all(Re::nullable),
            Re::Alt(v) => v.iter().any(Re::nullable),
            Re::Rep(r, min, _) => *min == 0 || r.nullable(),
        }
    }

    /// Whether a non-empty match can start with `c` (a cheap pre-filter for `ends`).
    pub fn may_start(&self, c: char) -> bool {
        match self {
            Re::Class(f) => f(c),
            Re::Lit(l) => l.chars().next().is_some_and(|x| x.eq_ignore_ascii_case(&c)),
            Re::Seq(v) => {
                for r in v {
                    if r.may_start(c) {
                        return true;
                    }
                    if !r.nullable() {
                        return false;
                    }
                }
                false
            }
            Re::Alt(v) => v.iter().any(|r| r.may_start(c)),
            Re::Rep(r, _, max) => *max > 0 && r.may_start(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn caseless_literals_and_repetition() {
        let s = chars("CanNot");
        assert_eq!(lit("cannot").longest(&s, 0), Some(6));
        let d = rep(cls(|c| c.is_ascii_digit()), 1, 4);
        assert_eq!(d.all(&chars("123456"), 0), vec![1, 2, 3, 4]);
        let r = seq(vec![plus(cls(|c| c.is_ascii_lowercase())), lit(".")]);
        assert_eq!(r.longest(&chars("ab.c"), 0), Some(3));
        assert_eq!(r.longest(&chars("ab"), 0), None);
        let o = seq(vec![opt(lit("-")), cls(|c| c.is_ascii_digit())]);
        assert!(o.may_start('-') && o.may_start('5') && !o.may_start('a') && !o.nullable());
    }
}
