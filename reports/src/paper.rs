//! The Emu paper's published numbers (Tables 1–3), kept as data in `data/paper_results.csv`
//! (transcribed from `spec/paper-results.md`), and the rule that matches a run to a paper row.
use serde::{Deserialize, Serialize};

use crate::runs::{Family, RunConfig};

/// The CSV, embedded so reports never depend on the working directory.
pub const PAPER_CSV: &str = include_str!("../data/paper_results.csv");

/// One published cell. `value` is None where the paper prints "–".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperValue {
    /// "1", "2", "3", or "1 text" (a value quoted in the text beside Table 1).
    pub table: String,
    pub row: String,
    /// The paper's column label (`COCO`, `VQAv2`, `FID`).
    pub column: String,
    /// emu-eval task id.
    pub task: String,
    pub shots: u32,
    pub value: Option<f64>,
    /// Table 2's "kind" column (unimodal / multimodal).
    pub kind: Option<String>,
}

impl PaperValue {
    /// "Table 1, row Emu *".
    pub fn source(&self) -> String {
        source(&self.table, &self.row)
    }
}

/// "Table 1, row Emu *" (or "Table 1 text, row Flamingo-80B").
pub fn source(table: &str, row: &str) -> String {
    format!("Table {table}, row {row}")
}

/// All published values, in the paper's row and column order.
#[derive(Debug, Clone)]
pub struct Paper {
    pub values: Vec<PaperValue>,
}

impl Paper {
    /// The embedded transcription. Panics only if the embedded file is malformed (a build defect,
    /// caught by the crate's tests).
    pub fn published() -> Paper {
        Self::parse(PAPER_CSV).expect("embedded data/paper_results.csv parses")
    }

    pub fn parse(text: &str) -> Result<Paper, csv::Error> {
        let mut rd = csv::Reader::from_reader(text.as_bytes());
        let values = rd.deserialize().collect::<Result<Vec<PaperValue>, _>>()?;
        Ok(Paper { values })
    }

    /// Row labels of a table, in order.
    pub fn rows(&self, table: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for v in self.values.iter().filter(|v| v.table == table) {
            if !out.contains(&v.row.as_str()) {
                out.push(&v.row);
            }
        }
        out
    }

    /// Columns of a table, in order: (label, task, shots).
    pub fn columns(&self, table: &str) -> Vec<(&str, &str, u32)> {
        let mut out: Vec<(&str, &str, u32)> = Vec::new();
        for v in self.values.iter().filter(|v| v.table == table) {
            let c = (v.column.as_str(), v.task.as_str(), v.shots);
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    /// The published cell, if the paper has one (a "–" cell is returned with `value: None`).
    pub fn get(&self, table: &str, row: &str, task: &str, shots: u32) -> Option<&PaperValue> {
        self.values
            .iter()
            .find(|v| v.table == table && v.row == row && v.task == task && v.shots == shots)
    }

    /// Every published value for a task, any table.
    pub fn for_task<'a>(&'a self, task: &'a str) -> impl Iterator<Item = &'a PaperValue> + 'a {
        self.values.iter().filter(move |v| v.task == task && v.value.is_some())
    }
}

/// Which paper table a run belongs in: Table 2 for text-to-image, Table 1 for zero-shot, Table 3
/// for k = 2, 4, 8 on its four tasks. None: the paper has no such table cell.
pub fn table_for(cfg: &RunConfig, paper: &Paper) -> Option<&'static str> {
    let text_to_image = tasks::registry::get(&cfg.task).is_some_and(|t| t.is_text_to_image());
    let table = match (text_to_image, cfg.shots) {
        (true, _) => "2",
        (false, 0) => "1",
        (false, _) => "3",
    };
    paper
        .columns(table)
        .iter()
        .any(|&(_, t, k)| t == cfg.task && (table == "2" || k as usize == cfg.shots))
        .then_some(table)
}

/// A paper row matched to a run, with the settings in which they differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowMatch {
    pub table: String,
    pub row: String,
    /// Settings of the paper row that the run does not share ("paper: CoT; run: no CoT").
    pub differences: Vec<String>,
}

/// The paper row our run is compared with. Family and text-only examples pick the row
/// (`Emu`, `Emu *`, `Emu-I`, `Emu-I *`); the paper's `Emu` zero-shot row used chain-of-thought
/// prompting and its few-shot rows RICES selection of the pretrained model, so a run that differs
/// there still matches but the difference is stated.
pub fn matching_row(cfg: &RunConfig, table: &str) -> Option<RowMatch> {
    let star = if cfg.text_examples { " *" } else { "" };
    let mut differences = Vec::new();
    let row = match table {
        "1" => {
            let cot_applies = tasks::registry::get(&cfg.task).is_some_and(|t| t.supports_cot());
            if cfg.model_family == Family::Emu && !cfg.text_examples && !cfg.cot && cot_applies {
                differences
                    .push("paper row used chain-of-thought prompting; this run did not".to_owned());
            }
            format!("{}{star}", cfg.model_family.paper_name())
        }
        "2" | "3" => {
            if cfg.model_family != Family::Emu {
                return None;
            }
            if table == "3" && cfg.support_method != "rices" {
                differences.push(format!(
                    "paper row used RICES support examples; this run used {}",
                    cfg.support_method
                ));
            }
            "Emu".to_owned()
        }
        _ => return None,
    };
    if let Some(g) = &cfg.generation {
        let kinds: Vec<&str> = g.keys().map(String::as_str).collect();
        differences
            .push(format!("not the paper's settings: decoding overridden ({})", kinds.join(", ")));
    }
    Some(RowMatch { table: table.to_owned(), row, differences })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_overrides_are_not_the_papers_settings() {
        let text = r#"{"task":"vqav2","split":"val","model":"m","weights_hash":"h","model_family":"emu","dtype":"f32","shots":0,"cot":true,"text_examples":false,"support_method":"none","seed":0,"limit":null,"template_version":"t","shard":null,"emu_eval_version":"0.1.0","git_commit":"x","generation":{"answer":{"max_new_tokens":3}},"data":{"root":"/d","builtin":false,"files":{},"media_files":0,"media_bytes":0}}"#;
        let cfg: RunConfig = serde_json::from_str(text).unwrap();
        let m = matching_row(&cfg, "1").unwrap();
        assert_eq!(m.differences, ["not the paper's settings: decoding overridden (answer)"]);
        let plain = RunConfig { generation: None, ..cfg };
        assert!(matching_row(&plain, "1").unwrap().differences.is_empty());
    }

    #[test]
    fn layout_of_the_three_tables() {
        let p = Paper::published();
        assert_eq!(
            p.rows("1"),
            ["MetaLM", "Kosmos-1", "Flamingo-9B *", "Emu", "Emu *", "Emu-I", "Emu-I *"]
        );
        assert_eq!(p.columns("1").len(), 8);
        assert_eq!(p.columns("3").len(), 12);
        assert_eq!(p.rows("2").len(), 8);
        assert_eq!(p.get("3", "Emu", "vizwiz", 8).and_then(|v| v.value), Some(43.9));
        assert_eq!(p.get("1", "Emu *", "coco_caption", 0).map(|v| v.value), Some(None));
    }
}
