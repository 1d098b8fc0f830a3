//! Decoding settings other than the paper's: `--max-new-tokens`, `--num-beams`,
//! `--length-penalty`, `--min-length`, each `N` (every generation stage) or `KIND=N` (one stage
//! kind: `caption`, `answer`, `answerability`); `--sample` with `--temperature`/`--top-p`
//! (multinomial sampling with one beam, seeded per sample and stage from `--seed`, so the
//! predictions do not depend on batch, shard or resume). `run.json` records them and reports mark
//! such runs "not the paper's settings" beside a paper number.
use std::collections::BTreeMap;

use anyhow::{bail, Result};
use prompts::StageKind;
use tasks::registry::{Generation, Sampling};
use tasks::run_folder::GenerationOverride;

/// Stage kinds by the name the flags use.
const KINDS: [(&str, StageKind); 3] = [
    ("caption", StageKind::Caption),
    ("answer", StageKind::Answer),
    ("answerability", StageKind::Answerability),
];
/// The stage kind's name in the decoding flags and in `--batch-size auto`'s choice.
pub fn kind_name(kind: StageKind) -> &'static str {
    KINDS.iter().find(|(_, k)| *k == kind).map_or("answer", |(n, _)| *n)
}

/// Most new tokens and beams accepted (bounded work per sample).
pub const MAX_NEW_TOKENS: usize = 1024;
pub const MAX_BEAMS: usize = 64;

/// The overrides of a run, by stage kind name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    by_kind: BTreeMap<&'static str, GenerationOverride>,
    /// `--seed`: sampled stages draw from a generator seeded by it, the sample id and the stage.
    pub seed: u64,
}

/// The flags' values, as given.
#[derive(Debug, Clone, Default)]
pub struct Flags<'a> {
    pub max_new_tokens: &'a [String],
    pub num_beams: &'a [String],
    pub length_penalty: &'a [String],
    pub min_length: &'a [String],
    pub sample: bool,
    pub temperature: &'a [String],
    pub top_p: &'a [String],
}

/// `[KIND=]VALUE` → the kinds it names and the value text.
fn split<'v>(flag: &str, v: &'v str) -> Result<(Vec<&'static str>, &'v str)> {
    match v.split_once('=') {
        None => Ok((KINDS.iter().map(|(k, _)| *k).collect(), v)),
        Some((kind, value)) => match KINDS.iter().find(|(k, _)| *k == kind) {
            Some((k, _)) => Ok((vec![*k], value)),
            None => {
                bail!("{flag} {v}: unknown stage kind `{kind}` (caption, answer, answerability)")
            }
        },
    }
}

fn count(flag: &str, v: &str, lo: usize, hi: usize) -> Result<usize> {
    match v.parse::<usize>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => bail!("{flag} {v}: must be a whole number from {lo} to {hi}"),
    }
}

impl Overrides {
    pub fn parse(f: &Flags) -> Result<Overrides> {
        let mut o = Overrides::default();
        let mut set = |flag: &str,
                       values: &[String],
                       apply: &dyn Fn(&mut GenerationOverride, &str) -> Result<()>|
         -> Result<()> {
            for v in values {
                let (kinds, value) = split(flag, v)?;
                for k in kinds {
                    apply(o.by_kind.entry(k).or_default(), value)?;
                }
            }
            Ok(())
        };
        set("--max-new-tokens", f.max_new_tokens, &|g, v| {
            g.max_new_tokens = Some(count("--max-new-tokens", v, 1, MAX_NEW_TOKENS)?);
            Ok(())
        })?;
        set("--num-beams", f.num_beams, &|g, v| {
            g.num_beams = Some(count("--num-beams", v, 1, MAX_BEAMS)?);
            Ok(())
        })?;
        set("--min-length", f.min_length, &|g, v| {
            g.min_length = Some(count("--min-length", v, 0, MAX_NEW_TOKENS)?);
            Ok(())
        })?;
        set("--length-penalty", f.length_penalty, &|g, v| {
            match v.parse::<f64>() {
                Ok(x) if x.is_finite() && x.abs() <= 100.0 => g.length_penalty = Some(x),
                _ => bail!("--length-penalty {v}: must be a number from -100 to 100"),
            }
            Ok(())
        })?;
        set("--temperature", f.temperature, &|g, v| {
            match v.parse::<f64>() {
                Ok(x) if x.is_finite() && x > 0.0 && x <= 100.0 => g.temperature = Some(x),
                _ => bail!("--temperature {v}: must be a number > 0 and at most 100"),
            }
            Ok(())
        })?;
        set("--top-p", f.top_p, &|g, v| {
            match v.parse::<f64>() {
                Ok(x) if x > 0.0 && x <= 1.0 => g.top_p = Some(x),
                _ => bail!("--top-p {v}: must be a number in (0, 1]"),
            }
            Ok(())
        })?;
        let sampling_values = !(f.temperature.is_empty() && f.top_p.is_empty());
        if sampling_values && !f.sample {
            let flag = if f.temperature.is_empty() { "--top-p" } else { "--temperature" };
            bail!("{flag}: applies to sampling; add --sample");
        }
        if f.sample {
            for (k, _) in KINDS {
                let g = o.by_kind.entry(k).or_default();
                if let Some(n) = g.num_beams.filter(|&n| n > 1) {
                    bail!("--sample: samples with one beam; --num-beams {k}={n} asks for a search");
                }
                g.sample = Some(true);
                g.num_beams = Some(1);
            }
        }
        Ok(o)
    }

    pub fn is_empty(&self) -> bool {
        self.by_kind.is_empty()
    }

    /// The settings of a stage of `kind`, `base` being the registry's.
    pub fn apply(&self, kind: StageKind, base: Generation) -> Generation {
        let Some(o) = self.by_kind.get(kind_name(kind)) else { return base };
        Generation {
            num_beams: o.num_beams.unwrap_or(base.num_beams),
            max_new_tokens: o.max_new_tokens.unwrap_or(base.max_new_tokens),
            min_length: o.min_length.unwrap_or(base.min_length),
            length_penalty: o.length_penalty.unwrap_or(base.length_penalty),
            sampling: match o.sample {
                Some(true) => Some(Sampling {
                    temperature: o.temperature.unwrap_or(1.0),
                    top_p: o.top_p.unwrap_or(1.0),
                }),
                _ => base.sampling,
            },
        }
    }

    /// What `run.json` records (None: the paper's settings).
    pub fn record(&self) -> Option<BTreeMap<String, GenerationOverride>> {
        (!self.is_empty())
            .then(|| self.by_kind.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasks::registry::{CAPTION, SHORT_ANSWER};

    fn flags(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn overrides_apply_per_stage_kind_and_are_validated() {
        let (mnt, beams) = (flags(&["answer=5"]), flags(&["3"]));
        let o = Overrides::parse(&Flags {
            max_new_tokens: &mnt,
            num_beams: &beams,
            ..Default::default()
        })
        .unwrap();
        let a = o.apply(StageKind::Answer, SHORT_ANSWER);
        assert_eq!((a.max_new_tokens, a.num_beams), (5, 3));
        assert_eq!(a.length_penalty, SHORT_ANSWER.length_penalty);
        let c = o.apply(StageKind::Caption, CAPTION);
        assert_eq!((c.max_new_tokens, c.num_beams), (CAPTION.max_new_tokens, 3));
        let rec = o.record().unwrap();
        assert_eq!(rec["answer"].max_new_tokens, Some(5));
        assert!(Overrides::default().record().is_none());
        assert!(c.sampling.is_none());
        for (flag, v) in [("mnt", "0"), ("mnt", "x=3"), ("beams", "100"), ("lp", "nan")] {
            let v = flags(&[v]);
            let f = match flag {
                "mnt" => Flags { max_new_tokens: &v, ..Default::default() },
                "beams" => Flags { num_beams: &v, ..Default::default() },
                _ => Flags { length_penalty: &v, ..Default::default() },
            };
            assert!(Overrides::parse(&f).is_err(), "{flag} {v:?}");
        }
    }

    #[test]
    fn sample_sets_one_beam_and_takes_temperature_and_top_p() {
        let (t, p) = (flags(&["0.7", "caption=1.3"]), flags(&["answer=0.9"]));
        let o = Overrides::parse(&Flags {
            sample: true,
            temperature: &t,
            top_p: &p,
            ..Default::default()
        })
        .unwrap();
        let a = o.apply(StageKind::Answer, SHORT_ANSWER);
        assert_eq!(a.num_beams, 1);
        assert_eq!(a.sampling, Some(Sampling { temperature: 0.7, top_p: 0.9 }));
        let c = o.apply(StageKind::Caption, CAPTION);
        assert_eq!(c.sampling, Some(Sampling { temperature: 1.3, top_p: 1.0 }));
        assert_eq!(o.record().unwrap()["answer"].sample, Some(true));
        // Temperature without --sample, a search with --sample, out-of-range values.
        let err = |f: Flags| Overrides::parse(&f).unwrap_err().to_string();
        assert!(err(Flags { temperature: &t, ..Default::default() }).contains("add --sample"));
        let beams = flags(&["answer=3"]);
        let e = err(Flags { sample: true, num_beams: &beams, ..Default::default() });
        assert!(e.contains("--num-beams answer=3"), "{e}");
        for (t, p) in [("0", "1"), ("inf", "1"), ("1", "0"), ("1", "1.5")] {
            let (t, p) = (flags(&[t]), flags(&[p]));
            let f = Flags { sample: true, temperature: &t, top_p: &p, ..Default::default() };
            assert!(Overrides::parse(&f).is_err(), "{t:?} {p:?}");
        }
    }
}
