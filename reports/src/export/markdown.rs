//! `results.md`: the runs, then Tables 1, 3 (and 2) in the paper's layout with our rows beside
//! the published ones, then notes.
use std::fmt::Write;

use super::{fmt_delta, fmt_value, our_decimals, Exporter, OutFile};
use crate::model::{Cell, ReportModel, Table};
use crate::Error;

pub struct MarkdownExporter;

impl Exporter for MarkdownExporter {
    fn serialize(&self, model: &ReportModel) -> Result<Vec<OutFile>, Error> {
        Ok(vec![OutFile::text("results.md", render(model))])
    }
}

/// Escapes a table cell.
fn esc(s: &str) -> String {
    s.replace('|', "\\|")
}

pub fn render(model: &ReportModel) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(s, "# emu-eval results\n");
    let _ = writeln!(s, "## Runs\n");
    let _ = writeln!(s, "| run | task | family | shots | CoT | text examples | support | metric | value | paper | Δ | samples | failed | data |");
    let _ = writeln!(s, "|---|---|---|---:|---|---|---|---|---:|---|---:|---:|---:|---|");
    for r in &model.runs {
        let c = &r.config;
        let (paper, delta) = match &r.paper {
            Some(p) => (
                format!("{} ({})", fmt_value(p.value, 2), p.source),
                p.delta.map_or("–".to_owned(), |d| fmt_delta(d, 2)),
            ),
            None => ("–".to_owned(), "–".to_owned()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            esc(&r.name),
            r.task,
            c.model_family,
            c.shots,
            yes(c.cot),
            yes(c.text_examples),
            c.support_method,
            esc(&r.headline.name),
            fmt_value(r.headline.value, 2),
            esc(&paper),
            delta,
            r.counts.samples,
            r.counts.failed,
            esc(&crate::model::data_label(c))
        );
    }
    for t in &model.tables {
        table(&mut s, t);
    }
    if !model.notes.is_empty() {
        let _ = writeln!(s, "\n## Notes\n");
        for n in &model.notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    s
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// "52.00 (-0.10)" for our cells, "52.0" for the paper's.
pub fn cell_text(c: &Cell, ours: bool, decimals: usize) -> String {
    if !ours {
        return fmt_value(c.value, decimals);
    }
    let d = our_decimals(decimals);
    match (c.value, c.delta) {
        (Some(v), Some(delta)) => format!("{v:.d$} ({})", fmt_delta(delta, d)),
        (v, _) => fmt_value(v, d),
    }
}

fn table(s: &mut String, t: &Table) {
    let _ = writeln!(s, "\n## {}\n", t.title);
    let _ = writeln!(
        s,
        "Paper rows: the Emu paper's Table {} (spec/paper-results.md). Our rows (**bold**) stand below the paper row \
         they are compared with; the value in parentheses is ours − that row's.\n",
        t.id
    );
    let kind = t.rows.iter().any(|r| r.kind.is_some());
    let _ = write!(s, "| model |{}", if kind { " kind |" } else { "" });
    for c in &t.columns {
        let _ = write!(s, " {} |", c.label);
    }
    let _ = write!(s, "\n|---|{}", if kind { "---|" } else { "" });
    for _ in &t.columns {
        let _ = write!(s, "---:|");
    }
    s.push('\n');
    for r in &t.rows {
        let label = if r.ours { format!("**{}**", esc(&r.label)) } else { esc(&r.label) };
        let _ = write!(s, "| {label} |");
        if kind {
            let _ = write!(s, " {} |", r.kind.as_deref().unwrap_or(""));
        }
        for c in &r.cells {
            let _ = write!(s, " {} |", cell_text(c, r.ours, t.decimals));
        }
        s.push('\n');
    }
}
