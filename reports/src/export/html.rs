//! `index.html`: one self-contained page (inline CSS, SVG, data-URI thumbnails and a little JS;
//! nothing is fetched). A sortable leaderboard of the runs with their configuration, the paper
//! tables, the plots, and per task the sample views. Opening it with `#selftest` runs an inline
//! self-check (every run listed, every plot drawn, every thumbnail decoded, sorting works) and
//! writes the result into `#selftest`, for headless-browser tests.
use std::fmt::Write;

use super::markdown::cell_text;
use super::plots::plots;
use super::{fmt_delta, fmt_value, Exporter, OutFile};
use crate::model::{ReportModel, Table};
use crate::samples::{SampleView, Thumb};
use crate::Error;

pub struct HtmlExporter;

impl Exporter for HtmlExporter {
    fn serialize(&self, model: &ReportModel) -> Result<Vec<OutFile>, Error> {
        Ok(vec![OutFile::text("index.html", render(model)?)])
    }
}

/// HTML-escapes text and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const CSS: &str = "
body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:24px;color:#222;max-width:1400px}
h1{margin-bottom:4px} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;vertical-align:top}
th{background:#f3f3f3;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.ours td{background:#eef5ff;font-weight:600}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th[aria-sort=ascending]::after{content:' ▲'} table.sortable th[aria-sort=descending]::after{content:' ▼'}
figure.plot{display:inline-block;margin:8px;border:1px solid #ddd} figure.plot svg{width:640px;height:auto;display:block}
pre{white-space:pre-wrap;margin:0;max-width:520px;font-size:12px}
img.thumb{max-width:96px;max-height:96px;margin:1px;border:1px solid #aaa}
span.missing{display:inline-block;width:90px;font-size:11px;color:#a00}
.bad{color:#b00} .notes li{margin:3px 0} #selftest{font-family:monospace;white-space:pre-wrap}
";

/// Sorting (click a header) and the `#selftest` self-check.
const JS: &str = r#"
function cellKey(td, numeric){ if(!td) return numeric ? -Infinity : ''; const v = td.getAttribute('data-v'); if(numeric){ const x = parseFloat(v === null ? td.textContent : v); return isNaN(x) ? -Infinity : x; } return (v === null ? td.textContent : v).toLowerCase(); }
function sortTable(th){ const table = th.closest('table'); const idx = Array.prototype.indexOf.call(th.parentNode.children, th); const numeric = th.getAttribute('data-type') === 'num'; const asc = th.getAttribute('aria-sort') !== 'ascending'; table.querySelectorAll('th').forEach(h => h.removeAttribute('aria-sort')); th.setAttribute('aria-sort', asc ? 'ascending' : 'descending'); const body = table.tBodies[0]; const rows = Array.from(body.rows); rows.sort((a, b) => { const x = cellKey(a.cells[idx], numeric), y = cellKey(b.cells[idx], numeric); return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); }); rows.forEach(r => body.appendChild(r)); }
document.querySelectorAll('table.sortable th').forEach(th => th.addEventListener('click', () => sortTable(th)));
function columnValues(table, idx, numeric){ return Array.from(table.tBodies[0].rows).map(r => cellKey(r.cells[idx], numeric)); }
function isSorted(xs, asc){ for(let i = 1; i < xs.length; i++){ if(asc ? xs[i-1] > xs[i] : xs[i-1] < xs[i]) return false; } return true; }
function selftest(){
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const out = {runs_expected: data.runs.length, runs_found: 0, missing_runs: [], plots_expected: data.plots.length, plots_drawn: 0, bad_plots: [], thumbs: 0, bad_thumbs: 0, sort_ok: false};
  const board = document.getElementById('leaderboard');
  for(const name of data.runs){ const hit = Array.from(board.tBodies[0].rows).some(r => r.getAttribute('data-run') === name); if(hit) out.runs_found++; else out.missing_runs.push(name); }
  for(const name of data.plots){ const fig = document.querySelector('figure.plot[data-plot="' + name + '"]'); const svg = fig && fig.querySelector('svg'); let ok = false; if(svg){ const box = svg.getBBox(); const marks = svg.querySelectorAll('polyline,path,rect,circle,line').length; const texts = svg.querySelectorAll('text').length; ok = box.width > 100 && box.height > 100 && marks > 3 && texts > 2; } if(ok) out.plots_drawn++; else out.bad_plots.push(name); }
  document.querySelectorAll('img.thumb').forEach(img => { out.thumbs++; if(!(img.complete && img.naturalWidth > 0)) out.bad_thumbs++; });
  const heads = Array.from(board.tHead.rows[0].cells); const vi = heads.findIndex(h => h.getAttribute('data-key') === 'value'); const ni = heads.findIndex(h => h.getAttribute('data-key') === 'run');
  const n0 = board.tBodies[0].rows.length;
  sortTable(heads[vi]); const up = isSorted(columnValues(board, vi, true), true) && heads[vi].getAttribute('aria-sort') === 'ascending';
  sortTable(heads[vi]); const down = isSorted(columnValues(board, vi, true), false) && heads[vi].getAttribute('aria-sort') === 'descending';
  sortTable(heads[ni]); const names = isSorted(columnValues(board, ni, false), true);
  out.sort_ok = up && down && names && board.tBodies[0].rows.length === n0;
  out.pass = out.runs_found === out.runs_expected && out.plots_drawn === out.plots_expected && out.bad_thumbs === 0 && out.sort_ok;
  const el = document.getElementById('selftest'); el.hidden = false; el.setAttribute('data-status', out.pass ? 'pass' : 'fail'); el.textContent = JSON.stringify(out);
}
if(location.hash === '#selftest'){ window.addEventListener('load', selftest); }
"#;

pub fn render(model: &ReportModel) -> Result<String, Error> {
    let charts = plots(model);
    let mut s = String::new();
    let _ = write!(s, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>emu-eval report</title><style>{CSS}</style></head><body>\n");
    let _ = writeln!(
        s,
        "<h1>emu-eval report</h1><p>{} run(s) · emu-eval {}</p>",
        model.runs.len(),
        esc(&model.emu_eval_version)
    );
    let _ = writeln!(s, "<p id=\"selftest\" hidden data-status=\"pending\"></p>");
    let data = serde_json::json!({
        "runs": model.runs.iter().map(|r| &r.name).collect::<Vec<_>>(),
        "plots": charts.iter().map(|p| &p.name).collect::<Vec<_>>(),
    });
    // `</` cannot occur in names written as JSON strings here, but escape it anyway.
    let _ = writeln!(
        s,
        "<script type=\"application/json\" id=\"report-data\">{}</script>",
        data.to_string().replace("</", "<\\/")
    );
    leaderboard(&mut s, model);
    for t in &model.tables {
        table(&mut s, t);
    }
    let _ = writeln!(s, "<h2 id=\"plots\">Plots</h2>");
    for p in &charts {
        let _ = writeln!(
            s,
            "<figure class=\"plot\" data-plot=\"{}\">{}</figure>",
            esc(&p.name),
            p.svg()?
        );
    }
    samples(&mut s, model);
    if !model.notes.is_empty() {
        let _ = writeln!(s, "<h2 id=\"notes\">Notes</h2><ul class=\"notes\">");
        for n in &model.notes {
            let _ = writeln!(s, "<li>{}</li>", esc(n));
        }
        let _ = writeln!(s, "</ul>");
    }
    let _ = writeln!(s, "<script>{JS}</script></body></html>");
    Ok(s)
}

fn num_td(v: Option<f64>, text: String) -> String {
    let key = v.map_or(String::new(), |v| v.to_string());
    format!("<td class=\"num\" data-v=\"{key}\">{}</td>", esc(&text))
}

fn leaderboard(s: &mut String, model: &ReportModel) {
    let _ = writeln!(s, "<h2>Leaderboard</h2><p>Click a column header to sort.</p>");
    let cols: [(&str, &str, bool); 23] = [
        ("run", "run", false),
        ("task", "task", false),
        ("metric", "metric", false),
        ("value", "value", true),
        ("paper", "paper", true),
        ("delta", "Δ vs paper", true),
        ("source", "paper row", false),
        ("family", "family", false),
        ("shots", "shots", true),
        ("cot", "CoT", false),
        ("text", "text examples", false),
        ("support", "support", false),
        ("seed", "seed", true),
        ("limit", "limit", true),
        ("template", "template", false),
        ("model", "model", false),
        ("dtype", "dtype", false),
        ("data", "data", false),
        ("samples", "samples", true),
        ("failed", "failed", true),
        ("sps", "samples/s", true),
        ("version", "emu-eval", false),
        ("commit", "commit", false),
    ];
    let _ = write!(s, "<table id=\"leaderboard\" class=\"sortable\"><thead><tr>");
    for (key, title, numeric) in cols {
        let _ = write!(
            s,
            "<th data-key=\"{key}\" data-type=\"{}\">{}</th>",
            if numeric { "num" } else { "text" },
            esc(title)
        );
    }
    let _ = writeln!(s, "</tr></thead><tbody>");
    for r in &model.runs {
        let c = &r.config;
        let td = |t: &str| format!("<td>{}</td>", esc(t));
        let (pv, pd, src) = match &r.paper {
            Some(p) => (p.value, p.delta, p.source.clone()),
            None => (None, None, String::new()),
        };
        let model_cell = format!(
            "<td title=\"{}\">{}</td>",
            esc(&format!("{} {}", c.model, c.weights_hash)),
            esc(c.model_name())
        );
        let _ = writeln!(
            s,
            "<tr data-run=\"{}\">{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}</tr>",
            esc(&r.name),
            td(&r.name),
            td(&r.task),
            td(&r.headline.name),
            num_td(r.headline.value, fmt_value(r.headline.value, 2)),
            num_td(pv, fmt_value(pv, 2)),
            num_td(pd, pd.map_or("–".to_owned(), |d| fmt_delta(d, 2))),
            td(&src),
            td(c.model_family.key()),
            num_td(Some(c.shots as f64), c.shots.to_string()),
            td(if c.cot { "yes" } else { "no" }),
            td(if c.text_examples { "yes" } else { "no" }),
            td(&c.support_method),
            num_td(Some(c.seed as f64), c.seed.to_string()),
            num_td(c.limit.map(|l| l as f64), c.limit.map_or("all".to_owned(), |l| l.to_string())),
            td(&c.template_version),
            model_cell,
            td(&c.dtype),
            td(&crate::model::data_label(c)),
            num_td(Some(r.counts.samples as f64), r.counts.samples.to_string()),
            num_td(Some(r.counts.failed as f64), r.counts.failed.to_string()),
            num_td(
                r.timing.samples_per_second,
                r.timing.samples_per_second.map_or("–".into(), |v| format!("{v:.2}"))
            ),
            td(&c.emu_eval_version),
            td(&c.git_commit.chars().take(10).collect::<String>()),
        );
    }
    let _ = writeln!(s, "</tbody></table>");
}

fn table(s: &mut String, t: &Table) {
    let _ = writeln!(s, "<h2>{}</h2><p>Our rows (shaded) stand below the paper row they are compared with; parentheses: ours − that row.</p>", esc(&t.title));
    let kind = t.rows.iter().any(|r| r.kind.is_some());
    let _ = write!(
        s,
        "<table class=\"paper\" data-table=\"{}\"><thead><tr><th>model</th>{}",
        esc(&t.id),
        if kind { "<th>kind</th>" } else { "" }
    );
    for c in &t.columns {
        let _ = write!(s, "<th>{}</th>", esc(&c.label));
    }
    let _ = writeln!(s, "</tr></thead><tbody>");
    for r in &t.rows {
        let _ = write!(
            s,
            "<tr{}><td title=\"{}\">{}</td>",
            if r.ours { " class=\"ours\"" } else { "" },
            esc(r.source.as_deref().unwrap_or("")),
            esc(&r.label)
        );
        if kind {
            let _ = write!(s, "<td>{}</td>", esc(r.kind.as_deref().unwrap_or("")));
        }
        for c in &r.cells {
            let _ = write!(s, "<td class=\"num\">{}</td>", esc(&cell_text(c, r.ours, t.decimals)));
        }
        let _ = writeln!(s, "</tr>");
    }
    let _ = writeln!(s, "</tbody></table>");
}

fn samples(s: &mut String, model: &ReportModel) {
    let _ = writeln!(s, "<h2 id=\"samples\">Samples</h2>");
    let mut tasks: Vec<&str> = model.samples.iter().map(|r| r.task.as_str()).collect();
    tasks.sort_unstable();
    tasks.dedup();
    for task in tasks {
        let _ = writeln!(s, "<h3>{}</h3>", esc(task));
        for rs in model.samples.iter().filter(|r| r.task == task) {
            let _ = writeln!(
                s,
                "<details class=\"run-samples\" data-run=\"{}\"><summary>{}</summary>",
                esc(&rs.run),
                esc(&rs.run)
            );
            let _ = writeln!(s, "<h4>First {} samples</h4>", rs.first.len());
            sample_table(s, &rs.first);
            if rs.has_scores {
                let _ = writeln!(s, "<h4>Worst-scored {} samples</h4>", rs.worst.len());
            } else {
                let _ = writeln!(s, "<h4>Failed samples ({}; the metric is corpus-level, so samples have no score)</h4>", rs.worst.len());
            }
            sample_table(s, &rs.worst);
            let _ = writeln!(s, "</details>");
        }
    }
}

fn sample_table(s: &mut String, views: &[SampleView]) {
    if views.is_empty() {
        let _ = writeln!(s, "<p>none</p>");
        return;
    }
    let _ = writeln!(s, "<table class=\"samples\"><thead><tr><th>id</th><th>images</th><th>prompt</th><th>output</th><th>answer</th><th>score</th></tr></thead><tbody>");
    for v in views {
        let mut imgs = String::new();
        for t in &v.thumbs {
            match t {
                Thumb::DataUri { uri, label } => {
                    let _ = write!(
                        imgs,
                        "<img class=\"thumb\" alt=\"{0}\" title=\"{0}\" src=\"{uri}\">",
                        esc(label)
                    );
                }
                Thumb::Missing { label, reason } => {
                    let _ = write!(
                        imgs,
                        "<span class=\"missing\" title=\"{}\">{}</span>",
                        esc(label),
                        esc(reason)
                    );
                }
            }
        }
        if v.more_images > 0 {
            let _ = write!(imgs, " +{} more", v.more_images);
        }
        let prompt: Vec<String> = v
            .stages
            .iter()
            .map(|st| format!("[{} · {}]\n{}", st.stage, st.kind, st.prompt))
            .collect();
        let output: Vec<String> =
            v.stages.iter().map(|st| format!("[{}] {}", st.stage, st.output)).collect();
        let score = match (&v.error, v.score) {
            (Some(e), _) => format!("<td class=\"bad\">failed: {}</td>", esc(e)),
            (None, sc) => num_td(sc, fmt_value(sc, 2)),
        };
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{imgs}</td><td><pre>{}</pre></td><td><pre>{}</pre></td><td>{}</td>{score}</tr>",
            esc(&v.id),
            esc(&prompt.join("\n")),
            esc(&output.join("\n")),
            esc(&v.answer)
        );
    }
    let _ = writeln!(s, "</tbody></table>");
}
