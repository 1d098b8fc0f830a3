//! Plots with plotters, as SVG and PNG: per task, the metric against the number of shots (ours
//! and the paper's), and a bar chart of our runs beside the paper values they are compared with.
//!
//! Text layout needs a TrueType font for both backends (plotters' `ab_glyph` feature): DejaVu
//! Sans from Debian's `fonts-dejavu-core` (installed by `scripts/setup.sh`), or the file named by
//! `EMU_EVAL_FONT`.
use std::path::PathBuf;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Exporter, OutFile};
use crate::model::{row_label, ReportModel};
use crate::samples::encode_png;
use crate::Error;

/// Default font file.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const SIZE: (u32, u32) = (960, 540);
/// Width of the legend column of line charts.
const LEGEND_WIDTH: u32 = 300;

/// A line of points (shots, value).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub paper: bool,
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub paper: bool,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PlotKind {
    Lines(Vec<Series>),
    Bars(Vec<Bar>),
}

/// One chart; `name` is its file stem under `plots/`.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    pub name: String,
    pub title: String,
    pub y_desc: String,
    pub kind: PlotKind,
}

/// The charts of a report: for every task with runs, `shots_<task>` and `bars_<task>`.
pub fn plots(model: &ReportModel) -> Vec<Plot> {
    let mut tasks: Vec<&str> = model.runs.iter().map(|r| r.task.as_str()).collect();
    tasks.sort_unstable();
    tasks.dedup();
    let mut out = Vec::new();
    for task in tasks {
        let runs: Vec<_> = model.runs.iter().filter(|r| r.task == task).collect();
        let y_desc = runs[0].headline.name.clone();
        // Ours: one line per configuration (shots vary along it).
        let mut lines: Vec<Series> = Vec::new();
        for r in &runs {
            let Some(v) = r.headline.value else { continue };
            let label = row_label(&r.config, "1");
            match lines.iter_mut().find(|s| s.label == label) {
                Some(s) => s.points.push((r.config.shots as f64, v)),
                None => lines.push(Series {
                    label,
                    paper: false,
                    points: vec![(r.config.shots as f64, v)],
                }),
            }
        }
        // The paper's: one line per row label across Tables 1 and 3, unless a run is built-in
        // (its numbers are never set beside the paper's).
        let builtin = runs.iter().any(|r| r.config.is_builtin());
        for t in model.tables.iter().filter(|_| !builtin) {
            for row in t.rows.iter().filter(|r| !r.ours) {
                for (c, cell) in t.columns.iter().zip(&row.cells) {
                    let (true, Some(v)) = (c.task == task, cell.value) else { continue };
                    let label = format!("paper: {}", row.label);
                    match lines.iter_mut().find(|s| s.label == label) {
                        Some(s) => s.points.push((c.shots as f64, v)),
                        None => lines.push(Series {
                            label,
                            paper: true,
                            points: vec![(c.shots as f64, v)],
                        }),
                    }
                }
            }
        }
        for s in &mut lines {
            s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        let mut bars = Vec::new();
        for r in &runs {
            if let Some(p) = &r.paper {
                let (table, row) = p.source.split_once(", row ").unwrap_or((&p.source, ""));
                let label = format!("paper: {row} ({table}) k={}", r.config.shots);
                if let (Some(v), false) = (p.value, bars.iter().any(|b: &Bar| b.label == label)) {
                    bars.push(Bar { label, paper: true, value: v });
                }
            }
            if let Some(v) = r.headline.value {
                bars.push(Bar {
                    label: format!("{} k={}", row_label(&r.config, "1"), r.config.shots),
                    paper: false,
                    value: v,
                });
            }
        }
        let title = tasks::registry::get(task).map_or(task.to_owned(), |t| t.title.to_owned());
        let note = if builtin { " (built-in run: no paper rows)" } else { "" };
        out.push(Plot {
            name: format!("shots_{task}"),
            title: format!("{title}: {y_desc} vs shots{note}"),
            y_desc: y_desc.clone(),
            kind: PlotKind::Lines(lines),
        });
        out.push(Plot {
            name: format!("bars_{task}"),
            title: format!("{title}: ours vs the paper"),
            y_desc,
            kind: PlotKind::Bars(bars),
        });
    }
    out
}

/// A font that cannot be used, with how to get one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
struct FontError(String);

/// Registers the font once; a missing or unreadable font is a clear error.
pub fn ensure_font() -> Result<(), Error> {
    static FONT: OnceLock<Result<(), FontError>> = OnceLock::new();
    FONT.get_or_init(|| {
        let path = std::env::var_os("EMU_EVAL_FONT").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DEFAULT_FONT));
        let bytes = std::fs::read(&path).map_err(|e| {
            FontError(format!("font {}: {e} (plots need a TrueType font: install fonts-dejavu-core with scripts/setup.sh, or set EMU_EVAL_FONT)", path.display()))
        })?;
        // plotters keeps registered fonts for the life of the program.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| FontError(format!("font {}: not a valid TrueType/OpenType font", path.display())))
    })
    .clone()
    .map_err(|e| Error::Font(e.0))
}

/// One colour per series, all distinct up to [`PALETTE`]'s length: ours first (the saturated
/// colours), then the paper's.
pub fn series_colors(series: &[Series]) -> Vec<RGBColor> {
    let order = series.iter().filter(|s| !s.paper).chain(series.iter().filter(|s| s.paper));
    let mut by_label: Vec<(&str, RGBColor)> = Vec::new();
    for (i, s) in order.enumerate() {
        by_label.push((s.label.as_str(), PALETTE[i % PALETTE.len()]));
    }
    series
        .iter()
        .map(|s| by_label.iter().find(|(l, _)| *l == s.label).map_or(PALETTE[0], |(_, c)| *c))
        .collect()
}

/// Shots are whole numbers: labels only at integers.
fn integer_label(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        String::new()
    }
}

/// Twenty distinct colours (Tableau 10, then darker and lighter variants).
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(0, 0, 0),
    RGBColor(60, 60, 140),
    RGBColor(0, 100, 60),
    RGBColor(150, 0, 60),
    RGBColor(200, 160, 0),
    RGBColor(0, 130, 130),
    RGBColor(100, 40, 150),
    RGBColor(240, 90, 90),
    RGBColor(90, 170, 240),
    RGBColor(120, 200, 120),
];

/// Why a plot could not be drawn (the backend's message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
struct DrawError(String);

fn draw<DB: DrawingBackend>(plot: &Plot, root: DrawingArea<DB, Shift>) -> Result<(), DrawError>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| DrawError(e.to_string());
    root.fill(&WHITE).map_err(e)?;
    match &plot.kind {
        PlotKind::Lines(series) => {
            // Paper lines dashed with hollow markers; ours solid with filled ones.
            let colors = series_colors(series);
            let area = root.titled(&plot.title, ("sans-serif", 20)).map_err(e)?;
            // The legend gets its own column so it never hides a line.
            let (left, right) = area.split_horizontally(SIZE.0 - LEGEND_WIDTH);
            let ys: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).collect();
            let (lo, hi) = padded(&ys);
            let mut chart = ChartBuilder::on(&left)
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(56)
                .build_cartesian_2d(-0.5f64..8.5f64, lo..hi)
                .map_err(e)?;
            chart
                .configure_mesh()
                .x_desc("shots (k)")
                .y_desc(&plot.y_desc)
                .x_labels(10)
                .x_label_formatter(&|x: &f64| integer_label(*x))
                .draw()
                .map_err(e)?;
            for (s, &color) in series.iter().zip(&colors) {
                let style = color.stroke_width(2);
                if s.paper {
                    chart
                        .draw_series(DashedLineSeries::new(s.points.clone(), 6, 4, style))
                        .map_err(e)?;
                    chart
                        .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, style)))
                        .map_err(e)?;
                } else {
                    chart.draw_series(LineSeries::new(s.points.clone(), style)).map_err(e)?;
                    chart
                        .draw_series(s.points.iter().map(|&p| Circle::new(p, 5, color.filled())))
                        .map_err(e)?;
                }
            }
            for (i, (s, &color)) in series.iter().zip(&colors).enumerate() {
                let y = 24 + 20 * i as i32;
                right
                    .draw(&PathElement::new(vec![(4, y), (28, y)], color.stroke_width(2)))
                    .map_err(e)?;
                let marker = if s.paper {
                    Circle::new((16, y), 4, color.stroke_width(2))
                } else {
                    Circle::new((16, y), 5, color.filled())
                };
                right.draw(&marker).map_err(e)?;
                right
                    .draw(&Text::new(short(&s.label, 44), (34, y - 7), ("sans-serif", 12)))
                    .map_err(e)?;
            }
        }
        PlotKind::Bars(bars) => {
            let max = bars.iter().map(|b| b.value).fold(0.0f64, f64::max);
            let hi = if max > 0.0 { max * 1.1 } else { 1.0 };
            let n = bars.len().max(1) as i32;
            let labels: Vec<String> = bars.iter().map(|b| short(&b.label, 46)).collect();
            let mut chart = ChartBuilder::on(&root)
                .caption(&plot.title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(330)
                .build_cartesian_2d(0f64..hi, (0..n).into_segmented())
                .map_err(e)?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .x_desc(&plot.y_desc)
                .y_labels(bars.len().max(1))
                // The first bar on top: bar i sits in segment n-1-i.
                .y_label_formatter(&|v: &SegmentValue<i32>| match v {
                    SegmentValue::CenterOf(i) => {
                        labels.get((n - 1 - *i) as usize).cloned().unwrap_or_default()
                    }
                    _ => String::new(),
                })
                .draw()
                .map_err(e)?;
            chart
                .draw_series(bars.iter().enumerate().map(|(i, b)| {
                    let color = if b.paper { PALETTE[8] } else { PALETTE[0] };
                    let mut r = Rectangle::new(
                        [
                            (0.0, SegmentValue::Exact(n - 1 - i as i32)),
                            (b.value, SegmentValue::Exact(n - i as i32)),
                        ],
                        color.filled(),
                    );
                    r.set_margin(4, 4, 0, 0);
                    r
                }))
                .map_err(e)?;
        }
    }
    root.present().map_err(e)
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// A y range around the values with 10% padding (at least ±1).
fn padded(ys: &[f64]) -> (f64, f64) {
    let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.1).max(1.0);
    ((lo - pad).max(0.0).min(lo), hi + pad)
}

impl Plot {
    pub fn svg(&self) -> Result<String, Error> {
        ensure_font()?;
        let mut s = String::new();
        draw(self, SVGBackend::with_string(&mut s, SIZE).into_drawing_area())
            .map_err(|m| Error::Plot(self.name.clone(), m.0))?;
        Ok(s)
    }

    pub fn png(&self) -> Result<Vec<u8>, Error> {
        ensure_font()?;
        let mut buf = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
        draw(self, BitMapBackend::with_buffer(&mut buf, SIZE).into_drawing_area())
            .map_err(|m| Error::Plot(self.name.clone(), m.0))?;
        Ok(encode_png(SIZE.0, SIZE.1, &buf))
    }
}

pub struct PlotsExporter;

impl Exporter for PlotsExporter {
    fn serialize(&self, model: &ReportModel) -> Result<Vec<OutFile>, Error> {
        let mut files = Vec::new();
        for p in plots(model) {
            files.push(OutFile::text(format!("plots/{}.svg", p.name), p.svg()?));
            files.push(OutFile { path: format!("plots/{}.png", p.name), bytes: p.png()? });
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_has_its_own_colour_and_shots_are_integers() {
        let series: Vec<Series> = (0..14)
            .map(|i| Series { label: format!("s{i}"), paper: i % 3 == 0, points: vec![] })
            .collect();
        let colors = series_colors(&series);
        for (i, a) in colors.iter().enumerate() {
            assert!(colors[i + 1..].iter().all(|b| b != a), "series {i} shares its colour");
        }
        assert_eq!(integer_label(4.0), "4");
        assert_eq!(integer_label(0.5), "");
    }
}
