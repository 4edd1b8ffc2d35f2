//! What `pb bench` and `pb parse` make of a [`Run`]: the problems, tables and verdict on the
//! terminal, and `latest.jsonl`, `latest.csv`, `latest.svg` and the HTML report (`report.html`,
//! `charts/`) in the output directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::plot;
use crate::records::{Run, num};
use crate::report;
use crate::table;
use crate::targets;

/// The files written for a good run, in the output directory.
pub const JSONL: &str = "latest.jsonl";
pub const CSV: &str = "latest.csv";
pub const SVG: &str = "latest.svg";

/// The header, then every result, one JSON object per line, exactly as the kernel wrote them.
pub fn jsonl(run: &Run) -> String {
    let mut out = String::new();
    for raw in run
        .header
        .iter()
        .map(|h| &h.raw)
        .chain(run.results.iter().map(|r| &r.raw))
    {
        out += raw;
        out += "\n";
    }
    out
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: &str = "suite,mechanism,subject,metric,unit,iters,min,median,mean,p99,max,\
baseline,overhead,relevant,irrelevant,batch";

/// A CSV field, quoted when it needs to be (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row per result; a null or absent value is an empty field.
pub fn csv(run: &Run) -> String {
    let mut out = format!("{CSV_COLUMNS}\n");
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in &run.results {
        let row = [
            field(&r.suite),
            field(&r.mechanism),
            field(&r.subject),
            field(&r.metric),
            field(&r.unit),
            r.iters.to_string(),
            num(r.min),
            num(r.median),
            num(r.mean),
            num(r.p99),
            num(r.max),
            r.baseline.as_deref().map(field).unwrap_or_default(),
            r.overhead.map(num).unwrap_or_default(),
            opt(r.relevant),
            opt(r.irrelevant),
            opt(r.batch),
        ];
        out += &row.join(",");
        out += "\n";
    }
    out
}

/// Prints each problem of `run` on stderr, `pb: <source>: line N: reason: text`.
pub fn print_problems(run: &Run, source: &str) {
    for problem in &run.problems {
        eprintln!("pb: {source}: {problem}");
    }
}

fn paths(dir: &Path) -> [PathBuf; 4] {
    [JSONL, CSV, SVG, report::REPORT].map(|name| dir.join(name))
}

/// Writes the three files into `dir` (created if needed).
pub fn write(run: &Run, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let [jsonl_path, csv_path, svg_path, _] = paths(dir);
    fs::write(&jsonl_path, jsonl(run))
        .with_context(|| format!("cannot write {}", jsonl_path.display()))?;
    fs::write(&csv_path, csv(run))
        .with_context(|| format!("cannot write {}", csv_path.display()))?;
    plot::write_svg(run, &svg_path)?;
    let files = [
        (
            JSONL,
            "every record, one JSON object per line, as the kernel wrote it",
        ),
        (CSV, "the results as CSV"),
        (SVG, "every chart in one SVG"),
    ];
    report::write(run, &jsonl_path.display().to_string(), &files, dir)?;
    Ok(())
}

/// Removes the files of an earlier run from `dir`, so that they are not mistaken for this one's.
pub fn remove_stale(dir: &Path) -> Result<()> {
    for path in paths(dir) {
        match fs::remove_file(&path) {
            Ok(()) => eprintln!("pb: removed {} (of an earlier run)", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
    }
    Ok(())
}

/// The end of `pb bench` and `pb parse`: prints the problems of `run` (read from `source`) and
/// its tables; if the run is complete and clean, writes the files into `dir` and succeeds, else
/// says why, removes the files of an earlier run and fails.
pub fn finish(run: &Run, source: &str, dir: &Path) -> Result<ExitCode> {
    print_problems(run, source);
    if !run.results.is_empty() {
        print!("{}", table::render(run));
        print!("{}", targets::section(run).text());
    }
    let failures = run.failures();
    if failures.is_empty() {
        write(run, dir)?;
        eprintln!(
            "pb: {} result records; wrote {}/{{{JSONL},{CSV},{SVG},{}}}",
            run.results.len(),
            dir.display(),
            report::REPORT
        );
        Ok(ExitCode::SUCCESS)
    } else {
        for failure in &failures {
            eprintln!("pb: {source}: {failure}");
        }
        remove_stale(dir)?;
        eprintln!(
            "pb: not writing {JSONL}, {CSV}, {SVG} or {}: the run is unusable",
            report::REPORT
        );
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::small_log;
    use crate::records::{parse_jsonl, parse_log};

    #[test]
    fn jsonl_is_header_then_results_verbatim() {
        let run = parse_log(&small_log());
        let text = jsonl(&run);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], run.header.as_ref().unwrap().raw);
        assert!(lines[2].contains(r#""mechanism":"off""#));
        // And it reads back to the same records.
        let back = parse_jsonl(&text);
        assert_eq!(back.problems, []);
        assert_eq!(back.failures(), Vec::<String>::new());
        assert_eq!(
            back.header.map(|h| h.raw),
            run.header.as_ref().map(|h| h.raw.clone())
        );
        let keys = |r: &Run| r.results.iter().map(|r| r.key()).collect::<Vec<_>>();
        assert_eq!(keys(&parse_jsonl(&text)), keys(&run));
    }

    #[test]
    fn csv_content() {
        let mut run = parse_log(&small_log());
        run.results[0].mechanism = "odd,\"name\"".into();
        run.results[1].mean = 9.25;
        assert_eq!(
            csv(&run),
            "\
suite,mechanism,subject,metric,unit,iters,min,median,mean,p99,max,baseline,overhead,relevant,irrelevant,batch
mechanisms,\"odd,\"\"name\"\"\",leaf,call,instructions,1000,7,7,7,7,7,,,,,
mechanisms,off,leaf,call,instructions,1000,9,9,9.25,9,9,twin,2,,,
ops-scaling,list,leaf,call,instructions,1000,40,40,40,40,40,,,1,8,
"
        );
    }

    #[test]
    fn finish_writes_or_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("bench");
        let code = finish(&parse_log(&small_log()), "test", &out).unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        for name in [JSONL, CSV, SVG, report::REPORT] {
            assert!(fs::metadata(out.join(name)).unwrap().len() > 0, "{name}");
        }
        let log = small_log();
        let truncated = &log[..log.find("@bench {\"type\":\"end\"").unwrap()];
        let code = finish(&parse_log(truncated), "test", &out).unwrap();
        assert_eq!(code, ExitCode::FAILURE);
        for name in [JSONL, CSV, SVG, report::REPORT] {
            assert!(!out.join(name).exists(), "stale {name} left behind");
        }
    }
}
