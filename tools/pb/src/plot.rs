//! Charts of a [`Run`], one per question, each titled with the question it answers:
//!
//! | chart | question | what |
//! |---|---|---|
//! | `mechanisms-call` | what does one call cost with each mechanism? | overhead per mechanism, `leaf` and `args8` (horizontal bars) |
//! | `mechanisms-recursive` | what do the 25 traced calls of `fib(6)` cost? | the same for `recursive`, on its own axis: it is 25× larger |
//! | `ops-irrelevant` | does call-ops stay flat as irrelevant tracers are added? | median against irrelevant ops (one relevant) |
//! | `ops-relevant` | with several tracers on one function, do both modes cost the same? | median against relevant ops; list drawn wide underneath, call-ops thin on top, so equal values do not hide a line |
//! | `patch-latency` | how long does patching take, per site? | per-site median per metric and batch size |
//!
//! Ops-scaling x axes are categorical (0, 1, 2, 10, 100 evenly spaced, labelled with the
//! counts): on a linear axis the small counts would collapse into the origin. `write_svg` stacks
//! every chart into one SVG (`latest.svg`); `write_charts` writes each on its own for the HTML
//! report. Only plotters' SVG backend: text is left to the viewer, so no font library is needed.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use crate::records::{BenchResult, Run, distinct, num};

const WIDTH: u32 = 960;
const FONT: &str = "sans-serif";

/// Horizontal grouped bars: `series[s].1[g]` is series `s` (a subject or metric) in group `g`
/// (a mechanism or batch), one group per row.
struct Bars {
    x_desc: String,
    groups: Vec<String>,
    series: Vec<(String, Vec<Option<f64>>)>,
}

/// Lines over a categorical x axis: `lines[i].1[k]` is the value at `x_labels[k]`.
struct Curves {
    x_desc: String,
    y_desc: String,
    x_labels: Vec<String>,
    lines: Vec<(String, Vec<Option<f64>>)>,
}

enum Body {
    Bars(Bars),
    Curves(Curves),
}

/// One chart: a file name, the question it answers, what it shows.
pub struct Chart {
    /// File stem (`mechanisms-call`) and the report's figure id.
    pub name: &'static str,
    pub question: String,
    body: Body,
}

impl Chart {
    fn height(&self) -> u32 {
        match &self.body {
            Body::Bars(b) => 110 + (b.groups.len() as u32) * (10 + 16 * b.series.len() as u32),
            Body::Curves(_) => 420,
        }
    }
}

/// `instructions (qemu-icount)`: the unit(s) of `results` and the header's mode.
fn unit_desc(run: &Run, results: &[&BenchResult]) -> String {
    let units = distinct(results.iter().copied(), |r| r.unit.clone()).join("/");
    match &run.header {
        Some(h) => format!("{units} ({})", h.mode),
        None => units,
    }
}

/// Overhead bars of the mechanisms suite for the subjects `keep` selects: a row per mechanism,
/// a bar per subject.
fn overhead_bars(run: &Run, keep: impl Fn(&str) -> bool) -> Option<(Bars, String)> {
    let results: Vec<&BenchResult> = run
        .results
        .iter()
        .filter(|r| r.suite == "mechanisms" && keep(&r.subject) && r.overhead.is_some())
        .collect();
    let mechanisms = distinct(results.iter().copied(), |r| r.mechanism.clone());
    let subjects = distinct(results.iter().copied(), |r| r.subject.clone());
    if mechanisms.is_empty() {
        return None;
    }
    let series = subjects
        .iter()
        .map(|s| {
            let values = mechanisms
                .iter()
                .map(|m| {
                    results
                        .iter()
                        .find(|r| &r.mechanism == m && &r.subject == s)
                        .and_then(|r| r.overhead)
                })
                .collect();
            (s.clone(), values)
        })
        .collect();
    let unit = unit_desc(run, &results);
    Some((
        Bars {
            x_desc: format!("median overhead over the baseline, {unit}"),
            groups: mechanisms,
            series,
        },
        unit,
    ))
}

/// Which ops count an ops-scaling chart has along its x axis; the other one is held fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Along {
    Irrelevant,
    Relevant,
}

impl Along {
    fn x(self, r: &BenchResult) -> Option<u64> {
        match self {
            Along::Irrelevant => r.irrelevant,
            Along::Relevant => r.relevant,
        }
    }

    fn fixed(self, r: &BenchResult) -> Option<u64> {
        match self {
            Along::Irrelevant => r.relevant,
            Along::Relevant => r.irrelevant,
        }
    }

    fn names(self) -> (&'static str, &'static str) {
        match self {
            Along::Irrelevant => ("irrelevant", "relevant"),
            Along::Relevant => ("relevant", "irrelevant"),
        }
    }
}

/// What one ops-scaling line is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LineId {
    mechanism: String,
    /// `subject metric`.
    what: String,
    fixed: Option<u64>,
}

/// The ops-scaling lines along `along`: one per (mechanism, subject, metric, fixed count) that
/// has at least two points, over the distinct x counts.
fn scaling_curves(run: &Run, along: Along) -> Option<(Curves, String)> {
    let results: Vec<&BenchResult> = run
        .results
        .iter()
        .filter(|r| r.suite == "ops-scaling" && along.x(r).is_some())
        .collect();
    let id_of = |r: &BenchResult| LineId {
        mechanism: r.mechanism.clone(),
        what: format!("{} {}", r.subject, r.metric),
        fixed: along.fixed(r),
    };
    let ids: Vec<LineId> = distinct(results.iter().copied(), id_of)
        .into_iter()
        .filter(|id| results.iter().filter(|r| id_of(r) == *id).count() >= 2)
        .collect();
    if ids.is_empty() {
        return None;
    }
    let mut xs: Vec<u64> = distinct(
        results.iter().copied().filter(|r| ids.contains(&id_of(r))),
        |r| along.x(r).unwrap_or(0),
    );
    xs.sort_unstable();
    let (x_name, fixed_name) = along.names();
    let show_what = distinct(&ids, |id| id.what.clone()).len() > 1;
    let show_fixed = distinct(&ids, |id| id.fixed).len() > 1;
    let lines = ids
        .iter()
        .map(|id| {
            let mut label = id.mechanism.clone();
            if show_what {
                label += &format!(" {}", id.what);
            }
            if show_fixed {
                let v = id.fixed.map_or("-".to_string(), |v| v.to_string());
                label += &format!(" {fixed_name}={v}");
            }
            let values = xs
                .iter()
                .map(|&x| {
                    results
                        .iter()
                        .find(|r| id_of(r) == *id && along.x(r) == Some(x))
                        .map(|r| r.median)
                })
                .collect();
            (label, values)
        })
        .collect();
    let unit = unit_desc(run, &results);
    Some((
        Curves {
            x_desc: format!("{x_name} ops (evenly spaced counts)"),
            y_desc: format!("median per call, {unit}"),
            x_labels: xs.iter().map(u64::to_string).collect(),
            lines,
        },
        unit,
    ))
}

/// Per-site patching cost: a row per batch size (the single poke is batch 1), a bar per metric.
fn patch_bars(run: &Run) -> Option<(Bars, String)> {
    let results: Vec<&BenchResult> = run
        .results
        .iter()
        .filter(|r| r.suite == "patch-latency")
        .collect();
    if results.is_empty() {
        return None;
    }
    let row = |r: &BenchResult| match r.batch {
        Some(b) if r.mechanism == "batch" => format!("batch of {b}"),
        _ => format!("{} (one site)", r.mechanism),
    };
    let groups = distinct(results.iter().copied(), row);
    let metrics = distinct(results.iter().copied(), |r| r.metric.clone());
    let series = metrics
        .iter()
        .map(|m| {
            let values = groups
                .iter()
                .map(|g| {
                    results
                        .iter()
                        .find(|r| &r.metric == m && &row(r) == g)
                        .map(|r| r.median)
                })
                .collect();
            (m.clone(), values)
        })
        .collect();
    let unit = unit_desc(run, &results);
    Some((
        Bars {
            x_desc: format!("median per site, {unit}"),
            groups,
            series,
        },
        unit,
    ))
}

/// Every chart the run has data for, in report order.
pub fn charts(run: &Run) -> Vec<Chart> {
    let mut out = Vec::new();
    if let Some((bars, unit)) = overhead_bars(run, |s| s != "recursive") {
        out.push(Chart {
            name: "mechanisms-call",
            question: format!(
                "What does one call cost with each mechanism attached? (leaf, args8; {unit})"
            ),
            body: Body::Bars(bars),
        });
    }
    if let Some((bars, unit)) = overhead_bars(run, |s| s == "recursive") {
        out.push(Chart {
            name: "mechanisms-recursive",
            question: format!(
                "What do the 25 traced calls of fib(6) cost with each mechanism? ({unit})"
            ),
            body: Body::Bars(bars),
        });
    }
    if let Some((curves, _)) = scaling_curves(run, Along::Irrelevant) {
        out.push(Chart {
            name: "ops-irrelevant",
            question: "Does call-ops stay flat as tracers of other functions are added?".into(),
            body: Body::Curves(curves),
        });
    }
    if let Some((curves, _)) = scaling_curves(run, Along::Relevant) {
        out.push(Chart {
            name: "ops-relevant",
            question: "With several tracers on one function, do list and call-ops cost the same?"
                .into(),
            body: Body::Curves(curves),
        });
    }
    if let Some((bars, unit)) = patch_bars(run) {
        out.push(Chart {
            name: "patch-latency",
            question: format!("How long does patching take, per site? ({unit})"),
            body: Body::Bars(bars),
        });
    }
    out
}

/// `lo..hi` covering `values` and 0, with some headroom; never empty.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = ((hi - lo) * 0.12).max(1.0);
    (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad)
}

/// An axis tick: integers without a fractional part, others with at most 3 decimals.
fn tick(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{:.0}", v.round() + 0.0) // + 0.0: no "-0"
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_string()
    }
}

fn color(i: usize) -> RGBAColor {
    Palette99::pick(i).to_rgba()
}

type Area<'a, DB> = DrawingArea<DB, plotters::coord::Shift>;

fn draw_bars<DB: DrawingBackend>(area: &Area<DB>, title: &str, bars: &Bars) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("plotting: {e:?}");
    // Group g spans y in [g * SLOT, (g + 1) * SLOT), drawn top to bottom.
    const SLOT: i64 = 1000;
    let n = bars.groups.len() as i64;
    let (lo, hi) = span(
        bars.series
            .iter()
            .flat_map(|(_, v)| v.iter().flatten().copied()),
    );
    let centers: Vec<i64> = (0..n).map(|g| g * SLOT + SLOT / 2).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(170)
        .build_cartesian_2d(lo..hi, (0..n * SLOT).with_key_points(centers))
        .map_err(err)?;
    let groups = bars.groups.clone();
    let label = move |y: &i64| {
        usize::try_from(n - 1 - y / SLOT)
            .ok()
            .and_then(|g| groups.get(g))
            .cloned()
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .max_light_lines(1)
        .y_label_formatter(&label)
        .x_label_formatter(&tick)
        .x_desc(&bars.x_desc)
        .draw()
        .map_err(err)?;
    let height = SLOT * 8 / 10 / bars.series.len().max(1) as i64;
    for (s, (name, values)) in bars.series.iter().enumerate() {
        let c = color(s);
        // Row g (first group at the top) occupies [(n-1-g)*SLOT, (n-g)*SLOT).
        let y0 = |g: i64| (n - 1 - g) * SLOT + SLOT * 9 / 10 - (s as i64 + 1) * height;
        let rects = values.iter().zip(0i64..).filter_map(|(v, g)| {
            v.map(|v| Rectangle::new([(0.0, y0(g)), (v, y0(g) + height * 9 / 10)], c.filled()))
        });
        chart
            .draw_series(rects)
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
        let labels = values.iter().zip(0i64..).filter_map(|(v, g)| {
            v.map(|v| {
                Text::new(
                    format!(" {}", num(v)),
                    (v.max(0.0), y0(g) + height * 7 / 10),
                    (FONT, 11),
                )
            })
        });
        chart.draw_series(labels).map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn draw_curves<DB: DrawingBackend>(area: &Area<DB>, title: &str, curves: &Curves) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("plotting: {e:?}");
    let n = curves.x_labels.len();
    let (y_lo, y_hi) = span(
        curves
            .lines
            .iter()
            .flat_map(|(_, v)| v.iter().flatten().copied()),
    );
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, y_lo..y_hi)
        .map_err(err)?;
    let labels = curves.x_labels.clone();
    let x_label = move |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            labels.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_labels(n)
        .max_light_lines(1)
        .x_desc(&curves.x_desc)
        .y_desc(&curves.y_desc)
        .x_label_formatter(&x_label)
        .y_label_formatter(&tick)
        .draw()
        .map_err(err)?;
    let count = curves.lines.len();
    for (i, (name, values)) in curves.lines.iter().enumerate() {
        let c = color(i);
        // Earlier lines wider and lighter, later ones narrower on top: equal values stay
        // visible as a thin line inside a wide band.
        let width = 2 + 4 * (count - 1 - i) as u32;
        let style = c.mix(if i + 1 == count { 1.0 } else { 0.45 });
        let points: Vec<(f64, f64)> = values
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.map(|v| (k as f64, v)))
            .collect();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                style.stroke_width(width),
            ))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], style.stroke_width(width))
            });
        if i + 1 == count {
            chart
                .draw_series(points.iter().map(|p| {
                    Rectangle::new([(p.0 - 0.04, p.1), (p.0 + 0.04, p.1)], c.stroke_width(6))
                }))
                .map_err(err)?;
        } else {
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|p| Circle::new(*p, 2 + width, style.filled())),
                )
                .map_err(err)?;
        }
        let labels = points.iter().map(|&(x, y)| {
            Text::new(
                format!("{} ", num(y)),
                (x, y),
                (FONT, 11).into_font().color(&c),
            )
        });
        chart.draw_series(labels).map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn draw<DB: DrawingBackend>(area: &Area<DB>, chart: &Chart) -> Result<()>
where
    DB::ErrorType: 'static,
{
    match &chart.body {
        Body::Bars(b) => draw_bars(area, &chart.question, b),
        Body::Curves(c) => draw_curves(area, &chart.question, c),
    }
}

/// Writes every chart of `run`, stacked, to `path` (an SVG; a note if there is nothing).
pub fn write_svg(run: &Run, path: &Path) -> Result<()> {
    let charts = charts(run);
    let height = charts.iter().map(Chart::height).sum::<u32>().max(80);
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    let err = |e| anyhow!("plotting {}: {e:?}", path.display());
    root.fill(&WHITE).map_err(err)?;
    if charts.is_empty() {
        root.draw(&Text::new(
            "no overhead, ops-scaling or patch-latency results to plot",
            (20, 40),
            (FONT, 20),
        ))
        .map_err(err)?;
    }
    let mut rest = root;
    for chart in &charts {
        let (area, below) = rest.split_vertically(chart.height());
        draw(&area, chart)?;
        rest = below;
    }
    rest.present().map_err(err)?;
    Ok(())
}

/// Writes each chart to `dir/<name>.svg`; returns the charts with their paths.
pub fn write_charts(run: &Run, dir: &Path) -> Result<Vec<(Chart, PathBuf)>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    for chart in charts(run) {
        let path = dir.join(format!("{}.svg", chart.name));
        {
            let root = SVGBackend::new(&path, (WIDTH, chart.height())).into_drawing_area();
            let err = |e| anyhow!("plotting {}: {e:?}", path.display());
            root.fill(&WHITE).map_err(err)?;
            draw(&root, &chart)?;
            root.present().map_err(err)?;
        }
        out.push((chart, path));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::parse_log;
    use crate::records::tests::{HEADER, result};

    fn run() -> Run {
        let mut log = format!("@bench {HEADER}\n");
        let lines = [
            result("mechanisms", "twin", "leaf", 7, ""),
            result(
                "mechanisms",
                "off",
                "leaf",
                9,
                r#","baseline":"twin","overhead":2"#,
            ),
            result(
                "mechanisms",
                "fexit",
                "leaf",
                60,
                r#","baseline":"twin","overhead":53"#,
            ),
            result(
                "mechanisms",
                "direct",
                "args8",
                8,
                r#","baseline":"twin","overhead":-1"#,
            ),
            result(
                "mechanisms",
                "fexit",
                "recursive",
                900,
                r#","baseline":"off","overhead":600"#,
            ),
            result(
                "ops-scaling",
                "list",
                "leaf",
                30,
                r#","relevant":1,"irrelevant":0"#,
            ),
            result(
                "ops-scaling",
                "list",
                "leaf",
                90,
                r#","relevant":1,"irrelevant":16"#,
            ),
            result(
                "ops-scaling",
                "call-ops",
                "leaf",
                12,
                r#","relevant":1,"irrelevant":0"#,
            ),
            result(
                "ops-scaling",
                "call-ops",
                "leaf",
                12,
                r#","relevant":1,"irrelevant":16"#,
            ),
            result(
                "ops-scaling",
                "list",
                "leaf",
                60,
                r#","relevant":4,"irrelevant":0"#,
            ),
            result(
                "ops-scaling",
                "call-ops",
                "leaf",
                60,
                r#","relevant":4,"irrelevant":0"#,
            ),
            result("patch-latency", "poke", "gen", 270, r#","batch":1"#)
                .replace(r#""metric":"call""#, r#""metric":"per-site""#),
            result("patch-latency", "batch", "gen", 211, r#","batch":4096"#)
                .replace(r#""metric":"call""#, r#""metric":"arm""#),
        ];
        for l in lines {
            log += &format!("@bench {l}\n");
        }
        parse_log(&log)
    }

    #[test]
    fn one_chart_per_question() {
        let charts = charts(&run());
        let names: Vec<&str> = charts.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "mechanisms-call",
                "mechanisms-recursive",
                "ops-irrelevant",
                "ops-relevant",
                "patch-latency"
            ]
        );
        assert!(charts.iter().all(|c| c.question.contains('?')));
        assert!(charts[0].question.contains("instructions (qemu-icount)"));
    }

    #[test]
    fn recursive_has_its_own_chart() {
        let run = run();
        let (bars, _) = overhead_bars(&run, |s| s != "recursive").unwrap();
        assert_eq!(bars.groups, ["off", "fexit", "direct"]);
        let names: Vec<&str> = bars.series.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["leaf", "args8"]);
        assert_eq!(bars.series[1].1, [None, None, Some(-1.0)]);
        let (rec, _) = overhead_bars(&run, |s| s == "recursive").unwrap();
        assert_eq!(rec.groups, ["fexit"]);
        assert_eq!(rec.series, [("recursive".to_string(), vec![Some(600.0)])]);
    }

    #[test]
    fn scaling_lines_on_categorical_axes() {
        let run = run();
        let (irr, _) = scaling_curves(&run, Along::Irrelevant).unwrap();
        assert_eq!(irr.x_labels, ["0", "16"]);
        let lines: Vec<_> = irr
            .lines
            .iter()
            .map(|(n, p)| (n.as_str(), p.clone()))
            .collect();
        assert_eq!(
            lines,
            [
                ("list", vec![Some(30.0), Some(90.0)]),
                ("call-ops", vec![Some(12.0), Some(12.0)])
            ],
            "relevant=4 has a single point"
        );
        let (rel, _) = scaling_curves(&run, Along::Relevant).unwrap();
        assert_eq!(rel.x_labels, ["1", "4"]);
        assert_eq!(rel.lines.len(), 2);
        assert_eq!(rel.lines[0].1, [Some(30.0), Some(60.0)]);
    }

    #[test]
    fn patch_latency_rows_per_batch() {
        let (bars, _) = patch_bars(&run()).unwrap();
        assert_eq!(bars.groups, ["poke (one site)", "batch of 4096"]);
        assert_eq!(
            bars.series,
            [
                ("per-site".to_string(), vec![Some(270.0), None]),
                ("arm".to_string(), vec![None, Some(211.0)])
            ]
        );
    }

    #[test]
    fn ticks() {
        assert_eq!(tick(&700.0), "700");
        assert_eq!(tick(&-0.0), "0");
        assert_eq!(tick(&2.5), "2.5");
        assert_eq!(tick(&(0.1 + 0.2)), "0.3");
    }

    #[test]
    fn writes_an_svg_and_one_per_chart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plot.svg");
        write_svg(&run(), &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(100)]);
        assert!(svg.trim_end().ends_with("</svg>"));
        for text in [
            "fexit",
            "args8",
            "call-ops",
            "irrelevant ops",
            "instructions (qemu-icount)",
            "What do the 25 traced calls",
            "How long does patching take",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(!svg.contains("cycles"));
        let written = write_charts(&run(), &dir.path().join("charts")).unwrap();
        assert_eq!(written.len(), 5);
        for (chart, path) in &written {
            let svg = std::fs::read_to_string(path).unwrap();
            assert!(
                svg.starts_with("<svg") && svg.contains("width=\"960\""),
                "{}",
                chart.name
            );
        }
    }

    #[test]
    fn empty_run_still_writes_an_svg() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.svg");
        write_svg(&parse_log(""), &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("no overhead"),
            "{svg}"
        );
    }
}
