//! The HTML report: one page with the run's facts, the verdict against the targets, every
//! table and every chart (`report.html` beside `latest.jsonl`; the charts in `charts/*.svg`).
//!
//! Plain HTML and CSS, no script and nothing fetched from elsewhere, so the page opens from the
//! file system in any browser. Its sections have stable ids — `run`, `verdict`, `tables`,
//! `charts`, `files` — which the headless-browser test (`tools/pb/tests/report.rs`) checks.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::plot;
use crate::records::Run;
use crate::table::{self, Align, Section};
use crate::targets;

/// The report's file name in the output directory.
pub const REPORT: &str = "report.html";
/// The charts' directory, beside the report.
pub const CHARTS: &str = "charts";
/// The report's sections, in order: id and heading (the page's navigation links them).
pub const SECTIONS: [(&str, &str); 5] = [
    ("run", "The run"),
    ("verdict", "Verdict"),
    ("tables", "Tables"),
    ("charts", "Charts"),
    ("files", "Files"),
];

/// Opens section `i` of [`SECTIONS`].
fn open_section(h: &mut String, i: usize) {
    let (id, title) = SECTIONS[i];
    let _ = writeln!(h, "<section id=\"{id}\">\n<h2>{title}</h2>");
}

/// `&`, `<`, `>`, `"` escaped for HTML text and attribute values.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A table section as HTML: heading, notes, `<table>`.
fn html_table(out: &mut String, s: &Section) {
    let heading = s.heading.trim_start_matches('[').replacen(']', "", 1);
    let _ = writeln!(out, "<h3>{}</h3>", esc(&heading));
    for n in &s.notes {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(n));
    }
    out.push_str("<table>\n<thead><tr>");
    for (name, align) in &s.grid.columns {
        let _ = write!(out, "<th class=\"{}\">{}</th>", class(*align), esc(name));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &s.grid.rows {
        out.push_str("<tr>");
        for (cell, (_, align)) in row.iter().zip(&s.grid.columns) {
            let extra = match cell.as_str() {
                "met" => " met",
                "NOT met" => " missed",
                _ => "",
            };
            let _ = write!(
                out,
                "<td class=\"{}{extra}\">{}</td>",
                class(*align),
                esc(cell)
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

fn class(a: Align) -> &'static str {
    match a {
        Align::Left => "l",
        Align::Right => "r",
    }
}

const STYLE: &str = "\
body { font-family: sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { padding: 0.2em 0.7em; border-bottom: 1px solid #e4e4e4; font-variant-numeric: tabular-nums; }
th { background: #f2f2f2; } td.r, th.r { text-align: right; } td.l, th.l { text-align: left; }
td.met { color: #186a1e; font-weight: bold; } td.missed { color: #b3261e; font-weight: bold; }
p.note { color: #555; margin: 0.2em 0; }
figure { margin: 1em 0 2em; } figcaption { font-weight: bold; margin-bottom: 0.4em; }
img { max-width: 100%; border: 1px solid #ddd; }
code { background: #f4f4f4; padding: 0 0.2em; }
nav { margin-bottom: 1em; }
";

/// Writes `dir/report.html` and `dir/charts/*.svg` for `run`, read from `source`; `files` are
/// the other files in `dir` (name, what it holds), linked from the page. Returns its path.
pub fn write(run: &Run, source: &str, files: &[(&str, &str)], dir: &Path) -> Result<PathBuf> {
    let charts = plot::write_charts(run, &dir.join(CHARTS))?;
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<title>patchbay benchmark report</title>\n<style>\n");
    h.push_str(STYLE);
    h.push_str("</style>\n</head>\n<body>\n<h1>patchbay benchmark report</h1>\n<nav>");
    for (i, (id, title)) in SECTIONS.iter().enumerate() {
        let sep = if i > 0 { " · " } else { "" };
        let _ = write!(h, "{sep}<a href=\"#{id}\">{title}</a>");
    }
    h.push_str("</nav>\n");

    open_section(&mut h, 0);
    let _ = writeln!(
        h,
        "<p>{}</p>",
        esc(table::summary(run).trim_end().trim_start_matches("run: "))
    );
    if let Some(hd) = &run.header {
        let _ = writeln!(
            h,
            "<p>clock <code>{}</code>, mode <code>{}</code>, unit <b>{}</b>{}. Records from <code>{}</code>.</p>",
            esc(&hd.clock),
            esc(&hd.mode),
            esc(&hd.unit),
            if hd.mode == "qemu-icount" {
                ": exact retired-instruction counts, identical on every run — not cycles"
            } else {
                ""
            },
            esc(source)
        );
    }
    h.push_str("</section>\n");

    open_section(&mut h, 1);
    html_table(&mut h, &targets::section(run));
    h.push_str("</section>\n");

    open_section(&mut h, 2);
    h.push_str(
        "<p class=\"note\">A mechanisms cell is the median cost of one call of the subject; \
         (+n) is the difference to the row's baseline measured in the same boot.</p>\n",
    );
    for s in table::sections(run) {
        html_table(&mut h, &s);
    }
    h.push_str("</section>\n");

    open_section(&mut h, 3);
    for (chart, path) in &charts {
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<figure id=\"chart-{0}\">\n<figcaption>{1}</figcaption>\n<img src=\"{2}/{3}\" alt=\"{1}\">\n</figure>",
            chart.name,
            esc(&chart.question),
            CHARTS,
            esc(&file)
        );
    }
    if charts.is_empty() {
        h.push_str("<p>No results to chart.</p>\n");
    }
    h.push_str("</section>\n");

    open_section(&mut h, 4);
    h.push_str("<ul>\n");
    for (f, what) in files {
        let _ = writeln!(h, "<li><a href=\"{f}\">{f}</a>: {what}</li>");
    }
    h.push_str("</ul>\n</section>\n</body>\n</html>\n");

    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(REPORT);
    fs::write(&path, h).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::parse_jsonl;

    #[test]
    fn escapes() {
        assert_eq!(esc("a<b>&\"c\""), "a&lt;b&gt;&amp;&quot;c&quot;");
    }

    #[test]
    fn the_report_of_the_baseline_has_every_section_and_chart() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/baseline.jsonl");
        let run = parse_jsonl(&fs::read_to_string(path).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let files = [("latest.jsonl", "every record")];
        let report = write(&run, "bench/baseline.jsonl", &files, dir.path()).unwrap();
        let html = fs::read_to_string(&report).unwrap();
        for (id, _) in SECTIONS {
            assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
        }
        let imgs: Vec<&str> = html
            .split("<img src=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
            .collect();
        assert_eq!(imgs.len(), 5);
        for img in imgs {
            assert!(dir.path().join(img).is_file(), "{img}");
        }
        assert!(
            html.contains("<td class=\"l\">call-ops</td>"),
            "a mechanisms row"
        );
        assert!(html.contains("targets met"));
        assert!(!html.contains("<script"));
        assert!(html.contains("<li><a href=\"latest.jsonl\">latest.jsonl</a>: every record</li>"));
    }
}
