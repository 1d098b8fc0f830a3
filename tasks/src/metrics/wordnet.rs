//! WordNet 3.0 database reader with NLTK 3.10 semantics (spec 5.3): `synsets` (morphy base forms,
//! parts of speech in the order noun, verb, adjective, adverb) and Wu-Palmer similarity.
//!
//! Reads the plain-text database of Debian's `wordnet-base` (`index.*`, `data.*`, `*.exc`).
//! Loading reads the files into memory and sorts one line table per index file; synset lines of
//! `data.*` are parsed on demand (the byte offset in the data file is the synset id).
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

mod morphy;
mod wup;

/// Default database folder (Debian `wordnet-base`).
pub const DEFAULT_DIR: &str = "/usr/share/wordnet";
/// Environment variable naming another database folder.
pub const DIR_ENV: &str = "EMU_EVAL_WORDNET";

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WordNetError(pub String);

/// A part of speech, i.e. one set of `index.*`, `data.*` and `*.exc` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pos {
    Noun,
    Verb,
    Adj,
    Adv,
}

impl Pos {
    /// NLTK's `POS_LIST` order, used by `synsets`.
    pub const ALL: [Pos; 4] = [Pos::Noun, Pos::Verb, Pos::Adj, Pos::Adv];

    /// File suffix (`index.noun`, `noun.exc`).
    pub fn file_name(self) -> &'static str {
        match self {
            Pos::Noun => "noun",
            Pos::Verb => "verb",
            Pos::Adj => "adj",
            Pos::Adv => "adv",
        }
    }

    fn from_ptr_char(c: &str) -> Option<Pos> {
        match c {
            "n" => Some(Pos::Noun),
            "v" => Some(Pos::Verb),
            "a" | "s" => Some(Pos::Adj),
            "r" => Some(Pos::Adv),
            _ => None,
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// A synset: its data file and byte offset there. `ss_type` is the synset type of its data line
/// (`n`, `v`, `a`, `s` for adjective satellites, `r`), as NLTK's `Synset.pos()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Synset {
    pub pos: Pos,
    pub offset: u32,
    pub ss_type: char,
}

/// The parts of a `data.*` line that the similarity measures need.
#[derive(Debug, Clone)]
pub(crate) struct SynsetRecord<'a> {
    /// First word of the synset with any adjective marker (`(a)`, `(p)`, `(ip)`) removed.
    pub first_lemma: &'a str,
    /// Targets of `@` (hypernym) then `@i` (instance hypernym) synset pointers.
    pub hypernyms: Vec<(Pos, u32)>,
}

/// `index.<pos>` kept as text plus a table of (line start, lemma length) sorted by lemma.
struct Index {
    text: String,
    lines: Vec<(u32, u32)>,
}

struct PosFiles {
    index: Index,
    data: Vec<u8>,
    exceptions: HashMap<String, Vec<String>>,
}

pub struct WordNet {
    pub dir: PathBuf,
    files: [PosFiles; 4],
    /// Parsed hypernym links, filled on first use (lines of top synsets hold thousands of
    /// pointers; similarity walks them again and again).
    hypernym_cache: RwLock<HashMap<Synset, Arc<[Synset]>>>,
}

impl WordNet {
    /// Loads from `$EMU_EVAL_WORDNET` if set, else `/usr/share/wordnet`.
    pub fn load_default() -> Result<Self, WordNetError> {
        Self::load(&default_dir())
    }

    /// Loads the database in `dir` (files `index.<pos>`, `data.<pos>`, `<pos>.exc`).
    pub fn load(dir: &Path) -> Result<Self, WordNetError> {
        let load_pos = |pos: Pos| -> Result<PosFiles, WordNetError> {
            let name = pos.file_name();
            let index = Index::parse(read_db_text(dir, &format!("index.{name}"))?);
            let data = read_db_file(dir, &format!("data.{name}"))?;
            check_wordnet_30(dir, pos, index.lines.len(), &data)?;
            let exceptions = parse_exceptions(&read_db_text(dir, &format!("{name}.exc"))?);
            Ok(PosFiles { index, data, exceptions })
        };
        let files =
            [load_pos(Pos::Noun)?, load_pos(Pos::Verb)?, load_pos(Pos::Adj)?, load_pos(Pos::Adv)?];
        Ok(WordNet { dir: dir.to_path_buf(), files, hypernym_cache: RwLock::default() })
    }

    fn pos_files(&self, pos: Pos) -> &PosFiles {
        &self.files[pos.slot()]
    }

    /// Synset offsets listed for `lemma` in `index.<pos>`, in file (sense-number) order.
    /// Empty when the lemma is not in that index.
    pub fn index_offsets(&self, lemma: &str, pos: Pos) -> Vec<u32> {
        self.pos_files(pos).index.offsets(lemma).unwrap_or_default()
    }

    /// Whether `lemma` has an entry in `index.<pos>`.
    pub fn has_lemma(&self, lemma: &str, pos: Pos) -> bool {
        self.pos_files(pos).index.find(lemma).is_some()
    }

    /// Exception list entry of `<pos>.exc` for an inflected form (`geese` -> `[goose]`).
    pub fn exceptions(&self, form: &str, pos: Pos) -> Option<&[String]> {
        self.pos_files(pos).exceptions.get(form).map(Vec::as_slice)
    }

    /// NLTK `wordnet.synsets(word)`: lowercases, then for each part of speech (noun, verb,
    /// adjective, adverb) the synsets of each morphy base form in index order.
    pub fn synsets(&self, word: &str) -> Vec<Synset> {
        let word = word.to_lowercase();
        let mut out = Vec::new();
        for pos in Pos::ALL {
            for form in morphy::morphy(self, &word, pos) {
                for offset in self.index_offsets(&form, pos) {
                    if let Some(s) = self.synset_at(pos, offset) {
                        out.push(s);
                    }
                }
            }
        }
        out
    }

    /// `synsets(word)[0]` without building the rest of the list.
    pub fn first_synset(&self, word: &str) -> Option<Synset> {
        let word = word.to_lowercase();
        for pos in Pos::ALL {
            for form in morphy::morphy(self, &word, pos) {
                for offset in self.index_offsets(&form, pos) {
                    if let Some(s) = self.synset_at(pos, offset) {
                        return Some(s);
                    }
                }
            }
        }
        None
    }

    /// The synset whose line starts at `offset` in `data.<pos>` (NLTK
    /// `synset_from_pos_and_offset`); None if no line with that offset starts there.
    pub fn synset_at(&self, pos: Pos, offset: u32) -> Option<Synset> {
        let line = self.data_line(pos, offset)?;
        let ss_type = line.split_ascii_whitespace().nth(2)?;
        let ss_type = match ss_type {
            "n" | "v" | "a" | "s" | "r" => ss_type.chars().next()?,
            _ => return None,
        };
        Some(Synset { pos, offset, ss_type })
    }

    /// The data line at `offset`, checked to begin with the 8-digit offset itself.
    fn data_line(&self, pos: Pos, offset: u32) -> Option<&str> {
        let data = &self.pos_files(pos).data;
        let rest = data.get(offset as usize..)?;
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = std::str::from_utf8(&rest[..end]).ok()?;
        let head = line.get(..8)?;
        if head.bytes().all(|b| b.is_ascii_digit()) && head.parse::<u32>().ok()? == offset {
            Some(line)
        } else {
            None
        }
    }

    /// Parses the fields of a synset's data line that the similarity measures use.
    pub(crate) fn record(&self, s: &Synset) -> Option<SynsetRecord<'_>> {
        let line = self.data_line(s.pos, s.offset)?;
        let columns = line.split('|').next().unwrap_or(line);
        let mut it = columns.split_ascii_whitespace();
        it.next()?; // offset
        it.next()?; // lex_filenum
        it.next()?; // ss_type
        let n_words = usize::from_str_radix(it.next()?, 16).ok()?;
        let mut first_lemma = "";
        for i in 0..n_words {
            let word = it.next()?;
            it.next()?; // lex_id
            if i == 0 {
                first_lemma = strip_adj_marker(word);
            }
        }
        let n_ptrs: usize = it.next()?.parse().ok()?;
        let mut hypernyms = Vec::new();
        let mut instance_hypernyms = Vec::new();
        for _ in 0..n_ptrs {
            let symbol = it.next()?;
            let offset: u32 = it.next()?.parse().ok()?;
            let pos = Pos::from_ptr_char(it.next()?)?;
            let source_target = it.next()?;
            if source_target == "0000" {
                match symbol {
                    "@" => hypernyms.push((pos, offset)),
                    "@i" => instance_hypernyms.push((pos, offset)),
                    _ => {}
                }
            }
        }
        hypernyms.extend(instance_hypernyms);
        Some(SynsetRecord { first_lemma, hypernyms })
    }

    /// Hypernym and instance-hypernym synsets (NLTK `hypernyms() + instance_hypernyms()`).
    pub fn hypernyms(&self, s: &Synset) -> Vec<Synset> {
        self.hypernyms_cached(s).to_vec()
    }

    /// [`Self::hypernyms`], parsed once per synset.
    pub(crate) fn hypernyms_cached(&self, s: &Synset) -> Arc<[Synset]> {
        if let Ok(cache) = self.hypernym_cache.read() {
            if let Some(h) = cache.get(s) {
                return Arc::clone(h);
            }
        }
        let parsed: Arc<[Synset]> = match self.record(s) {
            Some(rec) => rec.hypernyms.iter().filter_map(|&(p, o)| self.synset_at(p, o)).collect(),
            None => Arc::from(Vec::new()),
        };
        if let Ok(mut cache) = self.hypernym_cache.write() {
            cache.insert(*s, Arc::clone(&parsed));
        }
        parsed
    }

    /// NLTK synset name `lemma.pos.NN`: first lemma lowercased, synset type, and the 1-based
    /// position of the offset in that lemma's index entry. For satellites (`s`) NLTK 3.10 counts
    /// only the satellite offsets of the adjective entry.
    pub fn synset_name(&self, s: &Synset) -> String {
        let Some(rec) = self.record(s) else { return format!("?.{}.{}", s.ss_type, s.offset) };
        let lemma = rec.first_lemma.to_lowercase();
        let mut offsets = self.index_offsets(&lemma, s.pos);
        if s.ss_type == 's' {
            offsets.retain(|&o| self.synset_at(Pos::Adj, o).is_some_and(|x| x.ss_type == 's'));
        }
        match offsets.iter().position(|&o| o == s.offset) {
            Some(i) => format!("{lemma}.{}.{:02}", s.ss_type, i + 1),
            None => format!("{lemma}.{}.?{}", s.ss_type, s.offset),
        }
    }

    /// NLTK `Synset.wup_similarity(other)` with `simulate_root=True` (spec 5.3).
    pub fn wup_similarity(&self, a: &Synset, b: &Synset) -> Option<f64> {
        wup::wup_similarity(self, a, b)
    }
}

/// `$EMU_EVAL_WORDNET` if set and non-empty, else `/usr/share/wordnet`.
pub fn default_dir() -> PathBuf {
    dir_from_env(std::env::var_os(DIR_ENV))
}

fn dir_from_env(value: Option<std::ffi::OsString>) -> PathBuf {
    match value {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(DEFAULT_DIR),
    }
}

fn install_hint(path: &Path, why: impl std::fmt::Display) -> WordNetError {
    WordNetError(format!(
        "WordNet 3.0 database file {} unavailable ({why}); install it with `apt-get install wordnet-base` \
         (or `bash scripts/setup.sh`), or set {DIR_ENV} to the folder holding index.noun, data.noun, noun.exc, ...",
        path.display()
    ))
}

fn read_db_file(dir: &Path, name: &str) -> Result<Vec<u8>, WordNetError> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| install_hint(&path, e))
}

fn read_db_text(dir: &Path, name: &str) -> Result<String, WordNetError> {
    let path = dir.join(name);
    let bytes = read_db_file(dir, name)?;
    String::from_utf8(bytes).map_err(|e| install_hint(&path, format!("not UTF-8: {e}")))
}

/// Lemmas in `index.<pos>` and synsets in `data.<pos>` of WordNet 3.0 (its `wnstats(7WN)`).
const WN30_COUNTS: [(usize, usize); 4] =
    [(117_798, 82_115), (11_529, 13_767), (21_479, 18_156), (4_481, 3_621)];

/// A folder that is truncated or not WordNet 3.0 would give different synsets, hence different
/// scores: the lemma and synset counts must be WordNet 3.0's, and the data file must end with a
/// complete line whose offset field is its own byte offset.
fn check_wordnet_30(
    dir: &Path,
    pos: Pos,
    index_lemmas: usize,
    data: &[u8],
) -> Result<(), WordNetError> {
    let name = pos.file_name();
    let (want_lemmas, want_synsets) = WN30_COUNTS[pos.slot()];
    let bad = |file: String, what: String| {
        WordNetError(format!(
            "{}: {what}: the folder is truncated or not WordNet 3.0 (install `wordnet-base` or point {DIR_ENV} at a WordNet 3.0 dict/ folder)",
            dir.join(file).display()
        ))
    };
    if index_lemmas != want_lemmas {
        return Err(bad(
            format!("index.{name}"),
            format!("{index_lemmas} lemmas, WordNet 3.0 has {want_lemmas}"),
        ));
    }
    let mut synsets = 0;
    let mut last_start = 0;
    let mut start = 0;
    for line in data.split_inclusive(|&b| b == b'\n') {
        if !line.starts_with(b" ") {
            synsets += 1;
            last_start = start;
        }
        start += line.len();
    }
    if synsets != want_synsets {
        return Err(bad(
            format!("data.{name}"),
            format!("{synsets} synsets, WordNet 3.0 has {want_synsets}"),
        ));
    }
    let last = &data[last_start..];
    let offset_ok = last
        .split(|&b| b == b' ')
        .next()
        .and_then(|f| std::str::from_utf8(f).ok())
        .and_then(|f| f.parse::<usize>().ok())
        == Some(last_start);
    if !data.ends_with(b"\n") || !offset_ok {
        return Err(bad(
            format!("data.{name}"),
            format!("the last synset line (byte {last_start}) is incomplete or misplaced"),
        ));
    }
    Ok(())
}

/// NLTK `_load_exception_map`: each line `form base1 base2 ...` (split on whitespace).
fn parse_exceptions(text: &str) -> HashMap<String, Vec<String>> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let mut terms = line.split_whitespace();
        if let Some(form) = terms.next() {
            map.insert(form.to_owned(), terms.map(str::to_owned).collect());
        }
    }
    map
}

/// Removes a trailing adjective syntactic marker: NLTK `re.match(r"(.*?)(\([^()]*\))?$", name)`.
fn strip_adj_marker(word: &str) -> &str {
    if let Some(stripped) = word.strip_suffix(')') {
        if let Some(open) = stripped.rfind('(') {
            if !stripped[open + 1..].contains(['(', ')']) {
                return &word[..open];
            }
        }
    }
    word
}

impl Index {
    /// Line table of an `index.*` file; license lines (starting with a space) are skipped.
    fn parse(text: String) -> Index {
        let mut lines = Vec::new();
        let mut start = 0usize;
        for line in text.split_inclusive('\n') {
            if !line.starts_with(' ') {
                let lemma_len = line.find([' ', '\n']).unwrap_or(line.len());
                if lemma_len > 0 {
                    lines.push((start as u32, lemma_len as u32));
                }
            }
            start += line.len();
        }
        let key = |&(s, l): &(u32, u32)| &text.as_bytes()[s as usize..(s + l) as usize];
        lines.sort_by(|a, b| key(a).cmp(key(b)));
        Index { text, lines }
    }

    fn lemma_at(&self, (s, l): (u32, u32)) -> &[u8] {
        &self.text.as_bytes()[s as usize..(s + l) as usize]
    }

    fn find(&self, lemma: &str) -> Option<&str> {
        let i = self.lines.binary_search_by(|&e| self.lemma_at(e).cmp(lemma.as_bytes())).ok()?;
        let start = self.lines[i].0 as usize;
        let rest = &self.text[start..];
        Some(rest.split('\n').next().unwrap_or(rest))
    }

    /// Offsets of an index line: `lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt
    /// tagsense_cnt synset_offset...` (NLTK `_load_lemma_pos_offset_map`).
    fn offsets(&self, lemma: &str) -> Option<Vec<u32>> {
        let line = self.find(lemma)?;
        let mut it = line.split_ascii_whitespace();
        it.next()?;
        it.next()?;
        let n_synsets: usize = it.next()?.parse().ok()?;
        let n_ptrs: usize = it.next()?.parse().ok()?;
        for _ in 0..n_ptrs {
            it.next()?;
        }
        it.next()?; // sense_cnt
        it.next()?; // tagsense_cnt
        (0..n_synsets).map(|_| it.next()?.parse().ok()).collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The Debian database; a missing one fails with the install hint.
    pub(crate) fn wordnet() -> &'static WordNet {
        static WN: std::sync::OnceLock<WordNet> = std::sync::OnceLock::new();
        WN.get_or_init(|| match WordNet::load_default() {
            Ok(wn) => wn,
            Err(e) => panic!("{e}"),
        })
    }

    #[test]
    fn missing_database_names_file_and_install_hint() {
        let e = WordNet::load(Path::new("/nonexistent/wordnet")).err().expect("must fail");
        let msg = e.to_string();
        assert!(msg.contains("/nonexistent/wordnet/index.noun"), "{msg}");
        assert!(msg.contains("apt-get install wordnet-base"), "{msg}");
        assert!(msg.contains("scripts/setup.sh") && msg.contains(DIR_ENV), "{msg}");
        assert!(!msg.contains('\n'));
    }

    /// A copy of the database folder with `data.noun` replaced by `data`.
    fn copy_with_noun_data(tag: &str, data: &[u8]) -> PathBuf {
        let src = default_dir();
        let dir = std::env::temp_dir().join(format!("wn_{tag}_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(&src).unwrap() {
            let e = e.unwrap();
            if e.file_name() != "data.noun" {
                std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
            }
        }
        std::fs::write(dir.join("data.noun"), data).unwrap();
        dir
    }

    #[test]
    fn truncated_or_foreign_database_is_refused() {
        let full = std::fs::read(default_dir().join("data.noun")).unwrap();
        // Cut inside the last synset line: the counts still match, the line does not end.
        let cut = copy_with_noun_data("cut", &full[..full.len() - 10]);
        let e = WordNet::load(&cut).err().expect("truncated must fail").to_string();
        assert!(
            e.contains("data.noun: the last synset line") && e.contains("not WordNet 3.0"),
            "{e}"
        );
        // Half the file: fewer synsets.
        let half = copy_with_noun_data("half", &full[..full.len() / 2]);
        let e = WordNet::load(&half).err().expect("half must fail").to_string();
        assert!(e.contains("synsets, WordNet 3.0 has 82115"), "{e}");
        for d in [cut, half] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn default_dir_from_env() {
        assert_eq!(dir_from_env(None), Path::new(DEFAULT_DIR));
        assert_eq!(dir_from_env(Some("".into())), Path::new(DEFAULT_DIR));
        assert_eq!(dir_from_env(Some("/opt/wn".into())), Path::new("/opt/wn"));
    }

    #[test]
    fn strip_adj_marker_like_nltk() {
        assert_eq!(strip_adj_marker("big(a)"), "big");
        assert_eq!(strip_adj_marker("galore(ip)"), "galore");
        assert_eq!(strip_adj_marker("dog"), "dog");
        assert_eq!(strip_adj_marker("a(b)(c)"), "a(b)");
    }

    #[test]
    fn dog_synsets_and_names() {
        let wn = wordnet();
        let s = wn.synsets("dog");
        assert_eq!(s.len(), 8); // 7 noun + 1 verb
        assert_eq!(wn.synset_name(&s[0]), "dog.n.01");
        assert_eq!(s[0].offset, 2084071);
        assert_eq!(wn.synset_name(&s[7]), "chase.v.01");
        let hyper: Vec<String> = wn.hypernyms(&s[0]).iter().map(|h| wn.synset_name(h)).collect();
        assert_eq!(hyper, ["canine.n.02", "domestic_animal.n.01"]);
    }

    #[test]
    fn synsets_lowercase_and_morphy() {
        let wn = wordnet();
        let name = |w: &str| wn.first_synset(w).map(|s| wn.synset_name(&s));
        assert_eq!(name("DOGS").as_deref(), Some("dog.n.01"));
        assert_eq!(name("geese").as_deref(), Some("goose.n.01"));
        assert_eq!(name("plugh"), None);
        assert_eq!(name(""), None);
        assert_eq!(
            wn.synsets("together").first().map(|s| wn.synset_name(s)).as_deref(),
            Some("together.s.01")
        );
    }

    /// Names from NLTK 3.10.4 `wn.synsets(w)`: satellites are numbered among the satellite
    /// offsets of the adjective entry only (`good.s.04` is the sixth adjective sense of `good`).
    #[test]
    fn satellite_sense_numbers_count_satellites_only() {
        let wn = wordnet();
        let names =
            |w: &str| -> Vec<String> { wn.synsets(w).iter().map(|s| wn.synset_name(s)).collect() };
        let big = [
            "large.a.01",
            "big.s.01",
            "bad.s.01",
            "big.s.03",
            "big.s.04",
            "big.s.05",
            "boastful.s.01",
            "big.s.07",
            "adult.s.01",
            "big.s.09",
            "big.s.10",
            "big.s.11",
            "big.s.12",
            "big.r.01",
            "boastfully.r.01",
            "big.r.03",
            "big.r.04",
        ];
        assert_eq!(names("big"), big);
        let good = [
            "good.n.01",
            "good.n.02",
            "good.n.03",
            "commodity.n.01",
            "good.a.01",
            "full.s.04",
            "good.a.03",
            "estimable.s.01",
            "beneficial.s.01",
            "good.s.04",
        ];
        assert_eq!(names("good")[..good.len()], good);
    }

    #[test]
    fn self_similarity_trap() {
        let wn = wordnet();
        let dog = wn.first_synset("dog").expect("dog");
        let v = wn.wup_similarity(&dog, &dog).expect("some");
        assert!((v - 13.0 / 14.0).abs() < 1e-15, "{v}");
        let happy = wn.first_synset("happy").expect("happy");
        let quickly = wn.first_synset("quickly").expect("quickly");
        assert_eq!(wn.wup_similarity(&happy, &quickly), Some(0.5));
    }
}
