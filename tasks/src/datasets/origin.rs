//! Where a sample's fields were read, so that a consistency problem found after loading names
//! the file and field a user must open: `FILE: path.to.field: problem (sample id)`.
use std::path::{Path, PathBuf};

/// The record a sample came from (a file and the JSON path or CSV line of its record), and the
/// fields read from another record or file (VQA answers from the annotations file, VisDial
/// dense relevance).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Origin {
    record: Option<(PathBuf, String)>,
    /// `(field, file, path of that field)`.
    fields: Vec<(&'static str, PathBuf, String)>,
}

impl Origin {
    /// A sample read from the record at `path` of `file` (`[3]`, `questions[2]`, `line 5`).
    pub fn new(file: &Path, path: impl Into<String>) -> Self {
        Origin { record: Some((file.to_owned(), path.into())), fields: Vec::new() }
    }

    /// `field` of the sample was read from `path` of `file`.
    pub fn with(mut self, field: &'static str, file: &Path, path: impl Into<String>) -> Self {
        self.fields.push((field, file.to_owned(), path.into()));
        self
    }

    /// The file and full path of `field` (`answers`, `history[2].question`): a field registered
    /// with [`Origin::with`] (its first name before `[` or `.`), else the field under the
    /// record. `None` for a sample built without an origin.
    pub fn locate(&self, field: &str) -> Option<(&Path, String)> {
        let key_end = field.find(['[', '.']).unwrap_or(field.len());
        let (key, rest) = field.split_at(key_end);
        if let Some((_, file, path)) = self.fields.iter().find(|(k, _, _)| *k == key) {
            return Some((file, format!("{path}{rest}")));
        }
        let (file, record) = self.record.as_ref()?;
        let path = if record.is_empty() { field.to_owned() } else { format!("{record}.{field}") };
        Some((file, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_located_under_their_record_or_their_own_file() {
        let o = Origin::new(Path::new("d.json"), "data.dialogs[0].dialog[3]")
            .with("gt_relevance", Path::new("dense.json"), "[7].gt_relevance")
            .with("history", Path::new("d.json"), "data.dialogs[0].dialog");
        let at = |f: &str| o.locate(f).map(|(p, s)| format!("{}: {s}", p.display()));
        assert_eq!(at("gt_index").unwrap(), "d.json: data.dialogs[0].dialog[3].gt_index");
        assert_eq!(at("gt_relevance").unwrap(), "dense.json: [7].gt_relevance");
        assert_eq!(
            at("history[2].question").unwrap(),
            "d.json: data.dialogs[0].dialog[2].question"
        );
        assert_eq!(Origin::new(Path::new("c.csv"), "").locate("x").unwrap().1, "x");
        assert_eq!(Origin::default().locate("x"), None);
    }
}
