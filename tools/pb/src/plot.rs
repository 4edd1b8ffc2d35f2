//! An SVG of a [`Run`]: overhead per mechanism (grouped bars, one group per subject) and the
//! ops-scaling curves (median against the number of irrelevant, then relevant, ops; one line
//! per mechanism). Only plotters' SVG backend: text is left to the SVG viewer, so no font
//! library is needed.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use crate::records::{BenchResult, Run, distinct};

const WIDTH: u32 = 960;
const PANEL_HEIGHT: u32 = 420;
const FONT: &str = "sans-serif";

/// Grouped bars: `values[s][g]` is series `s` (a mechanism) in group `g` (a subject).
struct Bars {
    title: String,
    unit: String,
    groups: Vec<String>,
    series: Vec<(String, Vec<Option<f64>>)>,
}

/// Lines of (x, y) points.
struct Curves {
    title: String,
    x_desc: String,
    unit: String,
    lines: Vec<(String, Vec<(f64, f64)>)>,
}

enum Panel {
    Bars(Bars),
    Curves(Curves),
}

/// `instructions (qemu-icount)`: the unit(s) of `results` and the header's mode.
fn unit_desc(run: &Run, results: &[&BenchResult]) -> String {
    let units = distinct(results.iter().copied(), |r| r.unit.clone()).join("/");
    match &run.header {
        Some(h) => format!("{units} ({})", h.mode),
        None => units,
    }
}

fn overhead_bars(run: &Run) -> Option<Bars> {
    let results: Vec<&BenchResult> = run
        .results
        .iter()
        .filter(|r| r.suite == "mechanisms")
        .collect();
    let several_metrics = distinct(results.iter().copied(), |r| r.metric.clone()).len() > 1;
    let groups = distinct(results.iter().copied(), |r| {
        (r.subject.clone(), r.metric.clone())
    });
    let series: Vec<(String, Vec<Option<f64>>)> = distinct(
        results.iter().copied().filter(|r| r.overhead.is_some()),
        |r| r.mechanism.clone(),
    )
    .into_iter()
    .map(|m| {
        let values = groups
            .iter()
            .map(|(s, metric)| {
                results
                    .iter()
                    .find(|r| r.mechanism == m && &r.subject == s && &r.metric == metric)
                    .and_then(|r| r.overhead)
            })
            .collect();
        (m, values)
    })
    .collect();
    if series.is_empty() {
        return None;
    }
    let unit = unit_desc(run, &results);
    Some(Bars {
        title: format!("overhead over baseline, median — {unit}"),
        unit,
        groups: groups
            .into_iter()
            .map(|(s, m)| {
                if several_metrics {
                    format!("{s} {m}")
                } else {
                    s
                }
            })
            .collect(),
        series,
    })
}

/// Which ops count an ops-scaling plot has along its x axis; the other one is held fixed.
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
/// has at least two points.
fn scaling_curves(run: &Run, along: Along) -> Option<Curves> {
    let results: Vec<&BenchResult> = run
        .results
        .iter()
        .filter(|r| r.suite == "ops-scaling")
        .collect();
    let id_of = |r: &BenchResult| LineId {
        mechanism: r.mechanism.clone(),
        what: format!("{} {}", r.subject, r.metric),
        fixed: along.fixed(r),
    };
    let ids = distinct(
        results.iter().copied().filter(|r| along.x(r).is_some()),
        id_of,
    );
    let lines: Vec<(LineId, Vec<(f64, f64)>)> = ids
        .into_iter()
        .map(|id| {
            let mut points: Vec<(f64, f64)> = results
                .iter()
                .filter(|r| id_of(r) == id)
                .filter_map(|r| Some((along.x(r)? as f64, r.median)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (id, points)
        })
        .filter(|(_, points)| points.len() >= 2)
        .collect();
    if lines.is_empty() {
        return None;
    }
    let (x_name, fixed_name) = along.names();
    let show_what = distinct(lines.iter().map(|(id, _)| id), |id| id.what.clone()).len() > 1;
    let show_fixed = distinct(lines.iter().map(|(id, _)| id), |id| id.fixed).len() > 1;
    let labelled = lines
        .into_iter()
        .map(|(id, points)| {
            let mut label = id.mechanism;
            if show_what {
                label += &format!(" {}", id.what);
            }
            if show_fixed {
                let v = id.fixed.map_or("-".to_string(), |v| v.to_string());
                label += &format!(" {fixed_name}={v}");
            }
            (label, points)
        })
        .collect();
    let unit = unit_desc(run, &results);
    Some(Curves {
        title: format!("ops-scaling: median against {x_name} ops — {unit}"),
        x_desc: format!("{x_name} ops"),
        unit,
        lines: labelled,
    })
}

/// `lo..hi` covering `values` and 0, with some headroom; never empty.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = ((hi - lo) * 0.08).max(1.0);
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

fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    bars: &Bars,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("plotting: {e:?}");
    // Group g spans x in [g * SLOT, (g + 1) * SLOT); its label sits at the centre.
    const SLOT: i64 = 1000;
    let n = bars.groups.len() as i64;
    let (lo, hi) = span(
        bars.series
            .iter()
            .flat_map(|(_, v)| v.iter().flatten().copied()),
    );
    let centers: Vec<i64> = (0..n).map(|g| g * SLOT + SLOT / 2).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(&bars.title, (FONT, 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d((0..n * SLOT).with_key_points(centers), lo..hi)
        .map_err(err)?;
    let groups = bars.groups.clone();
    let label = move |x: &i64| {
        usize::try_from(x / SLOT)
            .ok()
            .and_then(|g| groups.get(g))
            .cloned()
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&label)
        .y_label_formatter(&tick)
        .y_desc(&bars.unit)
        .draw()
        .map_err(err)?;
    let width = SLOT * 8 / 10 / bars.series.len() as i64;
    for (s, (name, values)) in bars.series.iter().enumerate() {
        let c = color(s);
        let rects = values.iter().zip(0i64..).filter_map(|(v, g)| {
            let x0 = g * SLOT + SLOT / 10 + s as i64 * width;
            v.map(|v| Rectangle::new([(x0, 0.0), (x0 + width * 9 / 10, v)], c.filled()))
        });
        chart
            .draw_series(rects)
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
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

fn draw_curves<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    curves: &Curves,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("plotting: {e:?}");
    let points = || curves.lines.iter().flat_map(|(_, p)| p.iter().copied());
    let (_, x_hi) = span(points().map(|p| p.0));
    let (y_lo, y_hi) = span(points().map(|p| p.1));
    let mut chart = ChartBuilder::on(area)
        .caption(&curves.title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_hi, y_lo..y_hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(&curves.x_desc)
        .y_desc(&curves.unit)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .draw()
        .map_err(err)?;
    for (i, (name, line)) in curves.lines.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(line.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], c.stroke_width(2)));
        chart
            .draw_series(line.iter().map(|p| Circle::new(*p, 3, c.filled())))
            .map_err(err)?;
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

/// Writes the plot of `run` to `path` (an SVG; a note if there is nothing to plot).
pub fn write_svg(run: &Run, path: &Path) -> Result<()> {
    let mut panels = Vec::new();
    panels.extend(overhead_bars(run).map(Panel::Bars));
    panels.extend(scaling_curves(run, Along::Irrelevant).map(Panel::Curves));
    panels.extend(scaling_curves(run, Along::Relevant).map(Panel::Curves));
    let height = PANEL_HEIGHT * panels.len().max(1) as u32;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    let err = |e| anyhow!("plotting {}: {e:?}", path.display());
    root.fill(&WHITE).map_err(err)?;
    if panels.is_empty() {
        root.draw(&Text::new(
            "no overhead or ops-scaling results to plot",
            (20, 40),
            (FONT, 20),
        ))
        .map_err(err)?;
    }
    let areas = root.split_evenly((panels.len().max(1), 1));
    for (panel, area) in panels.iter().zip(&areas) {
        match panel {
            Panel::Bars(bars) => draw_bars(area, bars)?,
            Panel::Curves(curves) => draw_curves(area, curves)?,
        }
    }
    root.present().map_err(err)?;
    Ok(())
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
        ];
        for l in lines {
            log += &format!("@bench {l}\n");
        }
        parse_log(&log)
    }

    #[test]
    fn panels_from_a_run() {
        let run = run();
        let bars = overhead_bars(&run).unwrap();
        assert_eq!(bars.groups, ["leaf", "args8"]);
        assert_eq!(bars.unit, "instructions (qemu-icount)");
        let names: Vec<&str> = bars.series.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["off", "fexit", "direct"]);
        assert_eq!(bars.series[2].1, [None, Some(-1.0)]);
        let along_irr = scaling_curves(&run, Along::Irrelevant).unwrap();
        let lines: Vec<_> = along_irr
            .lines
            .iter()
            .map(|(n, p)| (n.as_str(), p.len()))
            .collect();
        assert_eq!(
            lines,
            [("list", 2), ("call-ops", 2)],
            "relevant=4 has a single point"
        );
        let along_rel = scaling_curves(&run, Along::Relevant).unwrap();
        assert_eq!(along_rel.lines.len(), 1);
        assert_eq!(along_rel.lines[0].1, [(1.0, 30.0), (4.0, 60.0)]);
    }

    #[test]
    fn ticks() {
        assert_eq!(tick(&700.0), "700");
        assert_eq!(tick(&-0.0), "0");
        assert_eq!(tick(&2.5), "2.5");
        assert_eq!(tick(&(0.1 + 0.2)), "0.3");
    }

    #[test]
    fn writes_an_svg() {
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
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(!svg.contains("cycles"));
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
