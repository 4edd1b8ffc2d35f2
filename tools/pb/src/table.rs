//! Plain-text tables of a [`Run`]: one per suite (and metric), aligned columns.
//!
//! * `mechanisms`: rows = mechanisms, columns = subjects, cells `median (+overhead)`.
//! * `ops-scaling`: rows = (relevant, irrelevant), columns = mechanisms, cells = median.
//! * `patch-latency`: rows = (mechanism, subject, metric, batch), columns = per-site median, min,
//!   max.
//! * any other suite: one row per result.
//!
//! The unit always comes from the records; clock and mode from the header.

use crate::records::{BenchResult, Run, distinct, num};

/// How a column's cells line up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table to render: a header row and data rows of the same width.
#[derive(Clone, Debug, Default)]
pub struct Grid {
    pub columns: Vec<(String, Align)>,
    pub rows: Vec<Vec<String>>,
}

impl Grid {
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Grid {
            columns: columns.iter().map(|(c, a)| (c.to_string(), *a)).collect(),
            rows: Vec::new(),
        }
    }

    /// The header, a rule of dashes, the rows; columns two spaces apart, no trailing blanks.
    pub fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                let cells = self.rows.iter().filter_map(|r| r.get(i));
                cells
                    .map(|c| width(c))
                    .chain([width(&self.columns[i].0)])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[&str]| {
            let mut s = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                let cell = match self.columns[i].1 {
                    Align::Left => format!("{cell:<w$}"),
                    Align::Right => format!("{cell:>w$}"),
                };
                s.push_str(&cell);
            }
            s.trim_end().to_string() + "\n"
        };
        let names: Vec<&str> = self.columns.iter().map(|(n, _)| n.as_str()).collect();
        let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let mut out = line(&names);
        out += &line(&rules.iter().map(String::as_str).collect::<Vec<_>>());
        for row in &self.rows {
            out += &line(&row.iter().map(String::as_str).collect::<Vec<_>>());
        }
        out
    }
}

/// One table with its heading and the lines between heading and grid: what the text output
/// prints and what the HTML report (`report.rs`) renders as a `<table>`.
#[derive(Clone, Debug)]
pub struct Section {
    /// `[mechanisms] metric call`.
    pub heading: String,
    /// The unit line and notes.
    pub notes: Vec<String>,
    pub grid: Grid,
}

impl Section {
    /// Heading, notes, the grid and a blank line.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n", self.heading);
        for n in &self.notes {
            out += n;
            out += "\n";
        }
        out + &self.grid.render() + "\n"
    }
}

/// Sections as text, one after the other.
fn text(sections: &[Section]) -> String {
    sections.iter().map(Section::text).collect()
}

/// `unit: instructions (qemu-icount, pmccntr)`: the unit(s) of `results`, mode and clock.
fn unit_line(run: &Run, results: &[&BenchResult]) -> String {
    let units = distinct(results.iter().copied(), |r| r.unit.clone());
    let units = if units.is_empty() {
        "?".to_string()
    } else {
        units.join("/")
    };
    let (mode, clock) = match &run.header {
        Some(h) => (h.mode.as_str(), h.clock.as_str()),
        None => ("mode unknown: no header", "clock unknown"),
    };
    format!("unit: {units} ({mode}, {clock})")
}

/// The results of `suite`, grouped: by metric for `mechanisms` (subjects are columns), by
/// (subject, metric) for the others; in order of first appearance.
fn groups<'a>(run: &'a Run, suite: &str) -> Vec<(String, Vec<&'a BenchResult>)> {
    let in_suite: Vec<&BenchResult> = run.results.iter().filter(|r| r.suite == suite).collect();
    let by_subject = suite != "mechanisms";
    let label = |r: &BenchResult| {
        if by_subject {
            format!("subject {}, metric {}", r.subject, r.metric)
        } else {
            format!("metric {}", r.metric)
        }
    };
    distinct(in_suite.iter().copied(), label)
        .into_iter()
        .map(|l| {
            let members = in_suite.iter().copied().filter(|r| label(r) == l).collect();
            (l, members)
        })
        .collect()
}

/// Medians right-aligned within the cell, then ` (+overhead)` if there is one.
fn overhead_cells(results: &[Option<&BenchResult>]) -> Vec<String> {
    let medians: Vec<Option<String>> = results.iter().map(|r| r.map(|r| num(r.median))).collect();
    let w = medians.iter().flatten().map(String::len).max().unwrap_or(0);
    results
        .iter()
        .zip(&medians)
        .map(|(r, m)| match (r, m) {
            (Some(r), Some(m)) => match r.overhead {
                Some(o) if o < 0.0 => format!("{m:>w$} ({})", num(o)),
                Some(o) => format!("{m:>w$} (+{})", num(o)),
                None => format!("{m:>w$}"),
            },
            _ => format!("{:>w$}", "-"),
        })
        .collect()
}

/// The `mechanisms` table(s).
#[cfg(test)]
pub fn mechanisms(run: &Run) -> String {
    text(&mechanisms_sections(run))
}

fn mechanisms_sections(run: &Run) -> Vec<Section> {
    let mut out = Vec::new();
    for (label, results) in groups(run, "mechanisms") {
        let mechanisms = distinct(results.iter().copied(), |r| r.mechanism.clone());
        let subjects = distinct(results.iter().copied(), |r| r.subject.clone());
        let find = |m: &str, s: &str| {
            results
                .iter()
                .copied()
                .find(|r| r.mechanism == m && r.subject == s)
        };
        let columns: Vec<Vec<String>> = subjects
            .iter()
            .map(|s| overhead_cells(&mechanisms.iter().map(|m| find(m, s)).collect::<Vec<_>>()))
            .collect();
        let mut grid = Grid::new(&[("mechanism", Align::Left)]);
        grid.columns
            .extend(subjects.iter().map(|s| (s.clone(), Align::Left)));
        for (i, m) in mechanisms.iter().enumerate() {
            let mut row = vec![m.clone()];
            row.extend(columns.iter().map(|c| c[i].clone()));
            grid.rows.push(row);
        }
        let baselines = distinct(results.iter().copied(), |r| r.baseline.clone());
        let baselines: Vec<&String> = baselines.iter().flatten().collect();
        let over = match baselines.as_slice() {
            [only] => format!("over baseline {only}"),
            _ => "over baseline".to_string(),
        };
        let mut notes = vec![format!(
            "{} — medians; (+n) = {over}",
            unit_line(run, &results)
        )];
        if baselines.len() > 1 {
            let per: Vec<String> = mechanisms
                .iter()
                .filter_map(|m| {
                    let b = results
                        .iter()
                        .find(|r| &r.mechanism == m && r.baseline.is_some())?;
                    Some(format!("{m} vs {}", b.baseline.as_deref().unwrap_or("")))
                })
                .collect();
            notes.push(format!("baselines: {}", per.join(", ")));
        }
        out.push(Section {
            heading: format!("[mechanisms] {label}"),
            notes,
            grid,
        });
    }
    out
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".to_string(), |v| v.to_string())
}

/// The `ops-scaling` table(s).
#[cfg(test)]
pub fn ops_scaling(run: &Run) -> String {
    text(&ops_scaling_sections(run))
}

fn ops_scaling_sections(run: &Run) -> Vec<Section> {
    let mut out = Vec::new();
    for (label, results) in groups(run, "ops-scaling") {
        let mechanisms = distinct(results.iter().copied(), |r| r.mechanism.clone());
        let mut points = distinct(results.iter().copied(), |r| (r.relevant, r.irrelevant));
        points.sort();
        let mut grid = Grid::new(&[("relevant", Align::Right), ("irrelevant", Align::Right)]);
        grid.columns
            .extend(mechanisms.iter().map(|m| (m.clone(), Align::Right)));
        for (relevant, irrelevant) in points {
            let mut row = vec![opt(relevant), opt(irrelevant)];
            row.extend(mechanisms.iter().map(|m| {
                results
                    .iter()
                    .find(|r| {
                        &r.mechanism == m && r.relevant == relevant && r.irrelevant == irrelevant
                    })
                    .map_or("-".to_string(), |r| num(r.median))
            }));
            grid.rows.push(row);
        }
        out.push(Section {
            heading: format!("[ops-scaling] {label}"),
            notes: vec![format!("{} — medians", unit_line(run, &results))],
            grid,
        });
    }
    out
}

/// The `patch-latency` table: one row per (mechanism, subject, metric, batch), per-site
/// statistics; the batches of one (mechanism, subject, metric) together.
#[cfg(test)]
pub fn patch_latency(run: &Run) -> String {
    patch_latency_section(run).text()
}

fn patch_latency_section(run: &Run) -> Section {
    let mut results: Vec<&BenchResult> = run
        .results
        .iter()
        .filter(|r| r.suite == "patch-latency")
        .collect();
    // Rows of one (mechanism, subject, metric) together, in order of first appearance.
    let order = distinct(results.iter().copied(), |r| {
        (r.mechanism.clone(), r.subject.clone(), r.metric.clone())
    });
    results.sort_by_key(|r| {
        order
            .iter()
            .position(|k| (&k.0, &k.1, &k.2) == (&r.mechanism, &r.subject, &r.metric))
    });
    let mut grid = Grid::new(&[
        ("mechanism", Align::Left),
        ("subject", Align::Left),
        ("metric", Align::Left),
        ("batch", Align::Right),
        ("median", Align::Right),
        ("min", Align::Right),
        ("max", Align::Right),
    ]);
    for r in &results {
        grid.rows.push(vec![
            r.mechanism.clone(),
            r.subject.clone(),
            r.metric.clone(),
            opt(r.batch),
            num(r.median),
            num(r.min),
            num(r.max),
        ]);
    }
    Section {
        heading: "[patch-latency]".into(),
        notes: vec![format!("{} — per site", unit_line(run, &results))],
        grid,
    }
}

/// A suite `pb` has no layout for: one row per result.
fn generic_section(run: &Run, suite: &str) -> Section {
    let results: Vec<&BenchResult> = run.results.iter().filter(|r| r.suite == suite).collect();
    let mut grid = Grid::new(&[
        ("mechanism", Align::Left),
        ("subject", Align::Left),
        ("metric", Align::Left),
        ("median", Align::Right),
        ("min", Align::Right),
        ("max", Align::Right),
        ("overhead", Align::Right),
    ]);
    for r in &results {
        grid.rows.push(vec![
            r.mechanism.clone(),
            r.subject.clone(),
            r.metric.clone(),
            num(r.median),
            num(r.min),
            num(r.max),
            r.overhead.map_or("-".to_string(), num),
        ]);
    }
    Section {
        heading: format!("[{suite}]"),
        notes: vec![format!("{} — medians", unit_line(run, &results))],
        grid,
    }
}

/// One line about the run from the header, e.g.
/// `run: git 7e91686, board qemu_virt, cpu Cortex-A72 (midr 0x410fd083), read cost 6 instructions`.
pub fn summary(run: &Run) -> String {
    let Some(h) = &run.header else {
        return "run: no header record\n".to_string();
    };
    let mut parts = Vec::new();
    if let Some(git) = &h.git {
        parts.push(format!("git {git}"));
    }
    if let Some(board) = &h.board {
        parts.push(format!("board {board}"));
    }
    match (&h.cpu, &h.midr) {
        (Some(cpu), Some(midr)) => parts.push(format!("cpu {cpu} (midr {midr})")),
        (Some(cpu), None) => parts.push(format!("cpu {cpu}")),
        (None, Some(midr)) => parts.push(format!("midr {midr}")),
        (None, None) => {}
    }
    if let Some(cost) = h.read_cost {
        parts.push(format!("read cost {} {}", num(cost), h.unit));
    }
    parts.push(format!("{} results", run.results.len()));
    format!("run: {}\n", parts.join(", "))
}

/// Every table of the run, suites in order of first appearance.
pub fn sections(run: &Run) -> Vec<Section> {
    let mut out = Vec::new();
    for suite in distinct(&run.results, |r| r.suite.clone()) {
        match suite.as_str() {
            "mechanisms" => out.extend(mechanisms_sections(run)),
            "ops-scaling" => out.extend(ops_scaling_sections(run)),
            "patch-latency" => out.push(patch_latency_section(run)),
            other => out.push(generic_section(run, other)),
        }
    }
    out
}

/// Every table of the run, suites in order of first appearance, after the summary line.
pub fn render(run: &Run) -> String {
    summary(run) + "\n" + &text(&sections(run))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::parse_log;
    use crate::records::tests::{HEADER, result};

    fn log(lines: &[String]) -> Run {
        let mut text = format!("@bench {HEADER}\n");
        for l in lines {
            text += &format!("@bench {l}\n");
        }
        parse_log(&text)
    }

    fn mech(m: &str, s: &str, median: u64, base: Option<(&str, i64)>) -> String {
        let extra = match base {
            Some((b, o)) => format!(r#","baseline":"{b}","overhead":{o}"#),
            None => r#","baseline":null,"overhead":null"#.to_string(),
        };
        result("mechanisms", m, s, median, &extra)
    }

    #[test]
    fn grid_aligns() {
        let mut g = Grid::new(&[("name", Align::Left), ("n", Align::Right)]);
        g.rows.push(vec!["a".into(), "10".into()]);
        g.rows.push(vec!["longer".into(), "7".into()]);
        assert_eq!(
            g.render(),
            "name     n\n------  --\na       10\nlonger   7\n"
        );
    }

    #[test]
    fn mechanisms_table() {
        let run = log(&[
            mech("twin", "leaf", 7, None),
            mech("off", "leaf", 9, Some(("twin", 2))),
            mech("twin", "args8", 9, None),
            mech("off", "args8", 11, Some(("twin", 2))),
            mech("fexit", "leaf", 112, Some(("twin", 105))),
            mech("direct", "args8", 8, Some(("twin", -1))),
        ]);
        assert_eq!(
            mechanisms(&run),
            "\
[mechanisms] metric call
unit: instructions (qemu-icount, pmccntr) — medians; (+n) = over baseline twin
mechanism  leaf        args8
---------  ----------  -------
twin         7          9
off          9 (+2)    11 (+2)
fexit      112 (+105)   -
direct       -          8 (-1)

"
        );
    }

    #[test]
    fn mixed_baselines_are_listed() {
        let run = log(&[
            mech("off", "leaf", 9, Some(("twin", 2))),
            mech("list", "leaf", 20, Some(("off", 11))),
        ]);
        let text = mechanisms(&run);
        assert!(
            text.contains("— medians; (+n) = over baseline\nbaselines: off vs twin, list vs off\n"),
            "{text}"
        );
    }

    #[test]
    fn unit_comes_from_the_records() {
        let text = format!(
            "@bench {}\n@bench {}\n",
            r#"{"type":"header","version":1,"clock":"cntvct","mode":"hardware","unit":"ticks"}"#,
            mech("off", "leaf", 9, None).replace("instructions", "ticks")
        );
        let table = mechanisms(&parse_log(&text));
        assert!(
            table.contains("unit: ticks (hardware, cntvct) — medians"),
            "{table}"
        );
        assert!(!table.contains("cycles"));
        let table = mechanisms(&parse_log(&format!(
            "@bench {}\n",
            mech("off", "leaf", 9, None)
        )));
        assert!(
            table.contains("unit: instructions (mode unknown: no header, clock unknown)"),
            "{table}"
        );
    }

    #[test]
    fn ops_scaling_table() {
        let ops = |m: &str, rel: u64, irr: u64, median: u64| {
            result(
                "ops-scaling",
                m,
                "leaf",
                median,
                &format!(r#","relevant":{rel},"irrelevant":{irr}"#),
            )
        };
        let run = log(&[
            ops("list", 1, 0, 30),
            ops("list", 1, 64, 1030),
            ops("call-ops", 1, 0, 12),
            ops("call-ops", 1, 64, 12),
            ops("list", 4, 0, 95),
        ]);
        assert_eq!(
            ops_scaling(&run),
            "\
[ops-scaling] subject leaf, metric call
unit: instructions (qemu-icount, pmccntr) — medians
relevant  irrelevant  list  call-ops
--------  ----------  ----  --------
       1           0    30        12
       1          64  1030        12
       4           0    95         -

"
        );
    }

    #[test]
    fn patch_latency_table() {
        let pl = |m: &str, subject: &str, metric: &str, batch: u64, median: u64| {
            result(
                "patch-latency",
                m,
                subject,
                median,
                &format!(r#","batch":{batch}"#),
            )
            .replace("\"metric\":\"call\"", &format!("\"metric\":\"{metric}\""))
            .replace(
                &format!("\"max\":{median}"),
                &format!("\"max\":{}", median * 2),
            )
        };
        let run = log(&[
            pl("poke", "leaf", "per-site", 1, 4000),
            pl("batch", "gen", "arm-first", 16, 800),
            pl("batch", "gen", "disarm", 16, 750),
            pl("batch", "gen", "arm-first", 256, 90),
        ]);
        assert_eq!(
            patch_latency(&run),
            "\
[patch-latency]
unit: instructions (qemu-icount, pmccntr) — per site
mechanism  subject  metric     batch  median   min   max
---------  -------  ---------  -----  ------  ----  ----
poke       leaf     per-site       1    4000  4000  8000
batch      gen      arm-first     16     800   800  1600
batch      gen      arm-first    256      90    90   180
batch      gen      disarm        16     750   750  1500

"
        );
    }

    #[test]
    fn render_everything() {
        let run = log(&[
            mech("off", "leaf", 9, Some(("twin", 2))),
            result("odd-suite", "brk", "leaf", 500, r#","overhead":490"#),
        ]);
        assert_eq!(
            render(&run),
            "\
run: git 7e91686, board qemu_virt, cpu Cortex-A72 (midr 0x410fd083), read cost 6 instructions, 2 results

[mechanisms] metric call
unit: instructions (qemu-icount, pmccntr) — medians; (+n) = over baseline twin
mechanism  leaf
---------  ------
off        9 (+2)

[odd-suite]
unit: instructions (qemu-icount, pmccntr) — medians
mechanism  subject  metric  median  min  max  overhead
---------  -------  ------  ------  ---  ---  --------
brk        leaf     call       500  500  500       490

"
        );
    }
}
