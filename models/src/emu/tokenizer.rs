//! The Emu tokenizer: the LLaMA BPE of `tokenizer.json` with the special tokens the official code
//! adds (`[PAD]`, `[IMG]`, `[/IMG]`, `<image>`, and for Emu-I `[USER]`, `[ASSISTANT]`), with the
//! semantics of transformers ≤ 4.33's slow `LlamaTokenizer` (emu-model.md §1.7, §3.1).
use std::path::Path;

/// Special tokens and their fixed ids (emu-model.md §1.7).
pub const UNK: u32 = 0;
pub const BOS: u32 = 1;
pub const EOS: u32 = 2;
pub const PAD: u32 = 32000;
pub const IMG_START: u32 = 32001;
pub const IMG_END: u32 = 32002;
pub const IMAGE: u32 = 32003;
pub const USER: u32 = 32004;
pub const ASSISTANT: u32 = 32005;

/// Added tokens in the order the official code registers them, pretrained then Emu-I.
const ADDED: [(&str, u32); 6] = [
    ("[PAD]", PAD),
    ("[IMG]", IMG_START),
    ("[/IMG]", IMG_END),
    ("<image>", IMAGE),
    ("[USER]", USER),
    ("[ASSISTANT]", ASSISTANT),
];

/// The `[IMG]<image>×n[/IMG]` placeholder of one image (emu-model.md §3.1).
pub fn image_block(n_causal: usize) -> String {
    let (begin, slot, end) = (ADDED[1].0, ADDED[3].0, ADDED[2].0);
    let mut s = String::with_capacity(begin.len() + end.len() + slot.len() * n_causal);
    s.push_str(begin);
    for _ in 0..n_causal {
        s.push_str(slot);
    }
    s.push_str(end);
    s
}

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{0}: {1}")]
    Load(String, String),
    #[error("tokenizer: {0}")]
    Encode(String),
}

/// Tokenizer with the slow-tokenizer rules; see [`EmuTokenizer::encode`].
pub struct EmuTokenizer {
    bpe: tokenizers::Tokenizer,
    /// Strings split out before BPE, longest first, with their ids.
    specials: Vec<(String, u32)>,
    vocab_size: usize,
}

impl EmuTokenizer {
    /// Loads `tokenizer.json`; `instruct` adds `[USER]`/`[ASSISTANT]` (Emu-I).
    pub fn from_file(path: &Path, instruct: bool) -> Result<Self, TokenizerError> {
        let bpe = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| TokenizerError::Load(path.display().to_string(), e.to_string()))?;
        Self::from_tokenizer(bpe, instruct, &path.display().to_string())
    }

    /// Wraps an already loaded 32000-piece BPE (`origin` names it in errors).
    pub fn from_tokenizer(
        bpe: tokenizers::Tokenizer,
        instruct: bool,
        origin: &str,
    ) -> Result<Self, TokenizerError> {
        let base = bpe.get_vocab_size(false);
        if base != 32000 {
            return Err(TokenizerError::Load(
                origin.to_owned(),
                format!("expected the 32000-piece LLaMA vocabulary, found {base}"),
            ));
        }
        let n_added = if instruct { 6 } else { 4 };
        let mut specials: Vec<(String, u32)> = [("<unk>", UNK), ("<s>", BOS), ("</s>", EOS)]
            .iter()
            .map(|(s, i)| (s.to_string(), *i))
            .collect();
        specials.extend(ADDED[..n_added].iter().map(|(s, i)| (s.to_string(), *i)));
        specials.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
        Ok(Self { bpe, specials, vocab_size: base + n_added })
    }

    /// 32004 (Emu) or 32006 (Emu-I).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Prompt encoding: BOS, then [`Self::encode_segments`].
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.encode_with(text, true)
    }

    /// Like `encode`; `add_bos = false` for classification candidates. A BPE failure (not
    /// expected with a byte-fallback model) yields `<unk>` for the failing segment.
    pub fn encode_with(&self, text: &str, add_bos: bool) -> Vec<u32> {
        self.try_encode(text, add_bos).unwrap_or_else(|_| {
            if add_bos {
                vec![BOS, UNK]
            } else {
                vec![UNK]
            }
        })
    }

    pub fn try_encode(&self, text: &str, add_bos: bool) -> Result<Vec<u32>, TokenizerError> {
        let mut ids = Vec::new();
        if add_bos {
            ids.push(BOS);
        }
        for seg in split_special(text, &self.specials) {
            match seg {
                Segment::Special(id) => ids.push(id),
                Segment::Text(t) => {
                    let enc = self
                        .bpe
                        .encode(t, false)
                        .map_err(|e| TokenizerError::Encode(e.to_string()))?;
                    ids.extend_from_slice(enc.get_ids());
                }
            }
        }
        Ok(ids)
    }

    /// Drops special ids (0, 1, 2, ≥ 32000), then sentencepiece-decodes (`▁` → space, byte
    /// fallback fusion, one leading space removed); no further cleanup.
    pub fn decode(&self, ids: &[u32]) -> String {
        let kept: Vec<u32> =
            ids.iter().copied().filter(|&i| i > EOS && (i as usize) < 32000).collect();
        self.bpe.decode(&kept, false).unwrap_or_default()
    }
}

#[derive(Debug, PartialEq)]
enum Segment<'a> {
    Text(&'a str),
    Special(u32),
}

/// Python `str.isspace` (Unicode whitespace plus the ASCII separators \x1c–\x1f).
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `PreTrainedTokenizer.tokenize` of transformers ≤ 4.33: split on special-token strings
/// (longest match first), strip whitespace on both sides of each special token, drop empty text.
fn split_special<'a>(text: &'a str, specials: &[(String, u32)]) -> Vec<Segment<'a>> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut pending_lstrip = false;
    loop {
        // Earliest occurrence; at equal positions the longest token (specials sorted by length).
        let mut best: Option<(usize, usize, u32)> = None;
        for (s, id) in specials {
            if let Some(pos) = rest.find(s.as_str()) {
                if best.is_none_or(|(p, _, _)| pos < p) {
                    best = Some((pos, s.len(), *id));
                }
            }
        }
        let (text_part, next) = match best {
            Some((pos, len, id)) => (&rest[..pos], Some((id, pos + len))),
            None => (rest, None),
        };
        let mut t = text_part;
        if pending_lstrip {
            t = t.trim_start_matches(is_py_space);
        }
        if next.is_some() {
            t = t.trim_end_matches(is_py_space);
        }
        if !t.is_empty() {
            out.push(Segment::Text(t));
        }
        match next {
            Some((id, end)) => {
                out.push(Segment::Special(id));
                rest = &rest[end..];
                pending_lstrip = true;
            }
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(instruct: bool) -> EmuTokenizer {
        let p =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/emu-tiny/tokenizer.json");
        EmuTokenizer::from_file(Path::new(p), instruct).unwrap()
    }

    #[test]
    fn split_strips_around_specials() {
        let sp = vec![("[IMG]".to_string(), 1), ("<image>".to_string(), 2)];
        assert_eq!(
            split_special("a [IMG] b", &sp),
            vec![Segment::Text("a"), Segment::Special(1), Segment::Text("b")]
        );
        assert_eq!(
            split_special(" [IMG]<image>\n", &sp),
            vec![Segment::Special(1), Segment::Special(2)]
        );
        assert_eq!(split_special(" x ", &sp), vec![Segment::Text(" x ")]);
    }

    /// emu-model.md §7.1 vectors.
    #[test]
    fn spec_vectors() {
        let t = tok(false);
        assert_eq!(t.encode("yes."), vec![1, 4874, 29889]);
        assert_eq!(t.encode("no."), vec![1, 694, 29889]);
        assert_eq!(t.encode_with("yes", false), vec![4874]);
        assert_eq!(t.encode_with("no", false), vec![694]);
        assert_eq!(t.encode_with("2 people", false), vec![29871, 29906, 2305]);
        assert_eq!(t.encode_with("i can't tell", false), vec![474, 508, 29915, 29873, 2649]);
        assert_eq!(t.encode("hello  [IMG]  world"), vec![1, 22172, 32001, 3186]);
        assert_eq!(t.encode("a\n[IMG]\nb"), vec![1, 263, 32001, 289]);
        assert_eq!(t.encode(""), vec![1]);
        assert_eq!(t.encode("[IMG]"), vec![1, 32001]);
        assert_eq!(t.encode("[IMG]<image><image>"), vec![1, 32001, 32003, 32003]);
        assert_eq!(
            t.encode("An image of a dog wearing a pair of glasses.[IMG]"),
            vec![
                1, 530, 1967, 310, 263, 11203, 591, 4362, 263, 5101, 310, 12917, 267, 29889, 32001
            ]
        );
        let i = tok(true);
        assert_eq!(i.vocab_size(), 32006);
        assert_eq!(i.encode("hello [ASSISTANT]:"), vec![1, 22172, 32005, 584]);
        assert_eq!(
            i.encode("a longer prompt here [ASSISTANT]:"),
            vec![1, 263, 5520, 9508, 1244, 32005, 584]
        );
        assert_eq!(
            t.decode(&[1, 263, 6635, 16246, 373, 263, 2381, 29889, 2]),
            "a cat sitting on a sw."
        );
        assert_eq!(t.decode(&[1, 29871, 29906, 2, 32000]), "2");
        assert_eq!(t.decode(&[1, 694, 29889, 2]), "no.");
    }

    /// Every `tokenizer_check` entry of the fixture: our ids equal the slow tokenizer's.
    #[test]
    fn fixture_tokenizer_check() {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/emu-tiny/vectors.json");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        let t = tok(false);
        let checks = v["tokenizer_check"].as_object().unwrap();
        assert!(checks.len() >= 10);
        for (name, c) in checks {
            let text = c["text"].as_str().unwrap();
            let want: Vec<u32> = c["slow_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect();
            let bos = want.first() == Some(&BOS);
            assert_eq!(t.encode_with(text, bos), want, "{name}: {text:?}");
        }
        // Decoded generation results.
        for (name, r) in v["results"].as_object().unwrap() {
            let (Some(ids), Some(dec)) = (r["output_ids"].as_array(), r["decoded"].as_array())
            else {
                continue;
            };
            for (row, d) in ids.iter().zip(dec) {
                let row: Vec<u32> =
                    row.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
                assert_eq!(t.decode(&row), d.as_str().unwrap(), "{name}");
            }
        }
    }
}
