//! Tests of the reports crate over synthetic run folders: the paper transcription against the
//! spec, snapshots of Markdown/CSV/JSON, the plots, and index.html in a real headless browser.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use reports::export::{csv, json::JsonExporter, markdown, plots, Exporter};
use reports::paper::Paper;
use reports::synthetic;

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// Test output folder under target/ (kept after the run, for inspection and CI artifacts).
fn artifacts(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../test-artifacts").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Synthetic runs (the default set) written under `dir/runs`.
fn synthetic_runs(dir: &Path) -> Vec<PathBuf> {
    synthetic::write_runs(
        &dir.join("runs"),
        &synthetic::default_specs(),
        &shared().join("fixtures"),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The paper's numbers: every value of data/paper_results.csv against spec/paper-results.md.

type Cells = BTreeMap<(String, String, String, u32), Option<f64>>;

/// Parses the spec's Tables 1–3 (and the Flamingo-80B values quoted in the text) into
/// (table, row, column, shots) → value, plus Table 2's kinds.
fn spec_cells() -> (Cells, BTreeMap<String, String>) {
    let text = std::fs::read_to_string(shared().join("spec/paper-results.md")).unwrap();
    let mut cells = Cells::new();
    let mut kinds = BTreeMap::new();
    let mut table = String::new();
    let mut header: Vec<String> = Vec::new();
    let num = |s: &str| {
        if s == "–" {
            None
        } else {
            Some(s.parse::<f64>().unwrap_or_else(|_| panic!("number: {s}")))
        }
    };
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## Table ") {
            table = h.split(':').next().unwrap().trim().to_owned();
            header.clear();
            continue;
        }
        if let Some(rest) = line.split("Flamingo-80B for comparison:").nth(1) {
            for part in rest.trim().trim_end_matches('.').split(',') {
                let (col, v) = part.trim().rsplit_once(' ').unwrap();
                cells.insert(("1 text".into(), "Flamingo-80B".into(), col.into(), 0), num(v));
            }
            continue;
        }
        if !line.starts_with('|') || table.is_empty() {
            continue;
        }
        let row: Vec<String> =
            line.trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect();
        if row.iter().all(|c| c.chars().all(|ch| ch == '-')) {
            continue;
        }
        if header.is_empty() {
            header = row;
            continue;
        }
        let mut task = String::new();
        for (h, v) in header.iter().zip(&row).skip(1) {
            let (col, shots) = match h.rsplit_once("k=") {
                Some((name, k)) => {
                    if !name.trim().is_empty() {
                        task = name.trim().to_owned();
                    }
                    (task.clone(), k.parse::<u32>().unwrap())
                }
                None => (h.clone(), 0),
            };
            if col == "kind" {
                kinds.insert(row[0].clone(), v.clone());
                continue;
            }
            cells.insert((table.clone(), row[0].clone(), col, shots), num(v));
        }
    }
    (cells, kinds)
}

#[test]
fn paper_values_match_the_spec_tables() {
    let (spec, kinds) = spec_cells();
    let paper = Paper::published();
    let ours: Cells = paper
        .values
        .iter()
        .map(|v| ((v.table.clone(), v.row.clone(), v.column.clone(), v.shots), v.value))
        .collect();
    assert_eq!(ours.len(), paper.values.len(), "duplicate cells in data/paper_results.csv");
    // 56 + 3 + 8 + 36 cells, every one present on both sides with the same value.
    assert_eq!(spec.len(), 103);
    assert_eq!(ours, spec);
    for v in paper.values.iter().filter(|v| v.table == "2") {
        assert_eq!(v.kind.as_deref(), kinds.get(&v.row).map(String::as_str), "{}", v.row);
    }
    // A column label names one task.
    let mut task_of = BTreeMap::new();
    for v in &paper.values {
        assert_eq!(
            task_of.entry(v.column.clone()).or_insert(v.task.clone()),
            &v.task,
            "{}",
            v.column
        );
        assert!(tasks::registry::get(&v.task).is_some(), "{}", v.task);
    }
}

// ---------------------------------------------------------------------------------------------
// Snapshots: plain expected files under tests/snapshots, reviewed by hand. UPDATE_SNAPSHOTS=1
// rewrites them (then review the diff).

fn check_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_SNAPSHOTS=1 writes it)", path.display()));
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from the snapshot at line {}:\n expected: {:?}\n   actual: {:?}",
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

#[test]
fn snapshots_of_markdown_csv_json() {
    let dir = artifacts("snapshots");
    let model = reports::build(&synthetic_runs(&dir), &reports::ReportOptions::default()).unwrap();
    let md = markdown::render(&model);
    let csv = String::from_utf8(csv::render(&model).unwrap()).unwrap();
    let json = JsonExporter.serialize(&model).unwrap().remove(0);
    check_snapshot("results.md", &md);
    check_snapshot("results.csv", &csv);
    check_snapshot("results.json", std::str::from_utf8(&json.bytes).unwrap());
    // Independent of the snapshots: the paper rows carry the spec's values, and our delta is
    // ours − the matched row.
    let t1 = &model.tables[0];
    let emu = t1.rows.iter().find(|r| r.label == "Emu").unwrap();
    let vqa = t1.columns.iter().position(|c| c.task == "vqav2").unwrap();
    assert_eq!(emu.cells[vqa].value, Some(52.0));
    let ours = t1.rows.iter().position(|r| r.ours && r.label.starts_with("ours: Emu [")).unwrap();
    assert_eq!(t1.rows[ours - 1].label, "Emu", "our Emu row stands below the paper's");
    let cell = &t1.rows[ours].cells[vqa];
    assert!((cell.delta.unwrap() - (cell.value.unwrap() - 52.0)).abs() < 1e-9);
    assert!(model.notes.iter().any(|n| n == reports::model::CIDER_SUBSET_NOTE));
    assert!(md.contains(reports::model::CIDER_SUBSET_NOTE));
    assert_eq!(model.tables.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["1", "3", "2"]);
}

#[test]
fn plots_render_as_svg_and_png() {
    let dir = artifacts("plots");
    let model = reports::build(&synthetic_runs(&dir), &reports::ReportOptions::default()).unwrap();
    let all = plots::plots(&model);
    let tasks: std::collections::BTreeSet<&str> =
        model.runs.iter().map(|r| r.task.as_str()).collect();
    assert_eq!(all.len(), 2 * tasks.len());
    let vqa = all.iter().find(|p| p.name == "shots_vqav2").unwrap();
    let plots::PlotKind::Lines(series) = &vqa.kind else { panic!("lines") };
    let paper_emu = series.iter().find(|s| s.label == "paper: Emu").unwrap();
    assert_eq!(paper_emu.points, [(0.0, 52.0), (2.0, 56.4), (4.0, 58.4), (8.0, 59.0)]);
    let ours: Vec<_> = series.iter().filter(|s| !s.paper).collect();
    assert!(
        ours.iter().any(|s| s.points.iter().map(|p| p.0).collect::<Vec<_>>() == [2.0, 4.0, 8.0]),
        "{ours:?}"
    );
    for p in &all {
        let svg = p.svg().unwrap();
        assert!(svg.contains("<svg") && svg.contains("<text"), "{}", p.name);
        let png = p.png().unwrap();
        let dec = png::Decoder::new(std::io::Cursor::new(&png));
        let mut r = dec.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size()];
        let info = r.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (960, 540));
        let ink = buf.iter().filter(|&&b| b < 128).count();
        assert!(ink > 2000, "{}: only {ink} dark bytes", p.name);
        std::fs::write(dir.join(format!("{}.png", p.name)), png).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// index.html in Debian's chromium.

/// The chromium binary; in CI (CI=true) its absence fails the test.
fn chromium() -> Option<PathBuf> {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("which").arg(c).output() {
            if out.status.success() {
                return Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
            }
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("chromium not found: CI must run scripts/setup.sh (installs Debian's chromium)");
    }
    None
}

/// Chromium under coreutils `timeout`, so a hung browser fails the test instead of stalling CI.
fn headless(chromium: &Path, profile: &Path) -> Command {
    let mut c = Command::new("timeout");
    c.arg("120").arg(chromium);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn index_html_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        eprintln!(
            "SKIPPED: chromium not installed (run scripts/setup.sh); CI=true makes this a failure"
        );
        return;
    };
    let dir = artifacts("html");
    let (model, files) = reports::report(
        &synthetic_runs(&dir),
        &dir.join("report"),
        &reports::ReportOptions::default(),
    )
    .unwrap();
    assert!(files.contains(&"index.html".to_owned()));
    let index = dir.join("report/index.html").canonicalize().unwrap();
    let html = std::fs::read_to_string(&index).unwrap();
    // Self-contained: nothing to fetch (the only URLs are SVG namespace names).
    for bad in ["src=\"http", "href=\"http", "url(http", "fetch(", "XMLHttpRequest", "<link"] {
        assert!(!html.contains(bad), "index.html references the network: {bad}");
    }
    let url = format!("file://{}#selftest", index.display());
    let out = headless(&chromium, &dir.join("profile"))
        .args(["--virtual-time-budget=5000", "--dump-dom", &url])
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.find("id=\"selftest\"").unwrap_or_else(|| {
        panic!("no #selftest in the DOM; stderr: {}", String::from_utf8_lossy(&out.stderr))
    });
    let tag_end = start + dom[start..].find('>').unwrap() + 1;
    let body = &dom[tag_end..tag_end + dom[tag_end..].find("</p>").unwrap()];
    let result: serde_json::Value = serde_json::from_str(&body.replace("&amp;", "&"))
        .unwrap_or_else(|e| panic!("self-test output {body:?}: {e}"));
    assert_eq!(result["runs_expected"], model.runs.len(), "{result}");
    assert_eq!(
        result["runs_found"],
        model.runs.len(),
        "every run appears in the leaderboard: {result}"
    );
    assert_eq!(result["plots_expected"], plots::plots(&model).len(), "{result}");
    assert_eq!(result["plots_drawn"], result["plots_expected"], "every plot renders: {result}");
    assert!(
        result["thumbs"].as_u64().unwrap() > 0 && result["bad_thumbs"] == 0,
        "thumbnails decode: {result}"
    );
    assert_eq!(result["sort_ok"], true, "sorting works: {result}");
    assert_eq!(result["pass"], true, "{result}");
    assert!(dom[start..tag_end].contains("data-status=\"pass\""));
    let shot = dir.join("index.png");
    let out = headless(&chromium, &dir.join("profile"))
        .args(["--window-size=1400,2400", "--hide-scrollbars"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", index.display()))
        .output()
        .unwrap();
    assert!(
        shot.is_file() && std::fs::metadata(&shot).unwrap().len() > 10_000,
        "screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("screenshot: {}", shot.display());
}
