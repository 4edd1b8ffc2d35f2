//! `pb compare A B`: compare the medians of two runs (JSON lines or console logs) record by
//! record, A being the reference.
//!
//! A record of B regresses when its median exceeds A's by more than the threshold:
//! `B > A * (1 + PCT/100)`; it is better when `B < A * (1 - PCT/100)`. Under `qemu-icount` (both
//! headers) instruction counts are exact and the threshold defaults to 0; otherwise it must be
//! given.
//!
//! Exit status: 0 if nothing regressed and every record of A is in B; 1 otherwise; 2 if the runs
//! cannot be compared (different units, no threshold for noisy numbers, unreadable files).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::outputs;
use crate::records::{self, BenchResult, Key, Run, num};
use crate::table::{Align, Grid};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Records are matched on (suite, mechanism, subject, metric, relevant, irrelevant, batch). A \
median regresses when B > A * (1 + PCT/100) and is better when B < A * (1 - PCT/100).

Exit status: 0 if nothing regressed and every record of A is in B; 1 otherwise; 2 if the runs \
have different units, if --threshold is needed but missing, or a file cannot be read.")]
pub struct Args {
    /// The reference run (JSON lines or console log)
    #[arg(value_name = "A")]
    pub a: PathBuf,
    /// The run to judge against A
    #[arg(value_name = "B")]
    pub b: PathBuf,
    /// Tolerated increase of a median, in percent [default: 0 if both runs are qemu-icount;
    /// required otherwise]
    #[arg(long, value_name = "PCT", value_parser = parse_pct)]
    pub threshold: Option<f64>,
}

fn parse_pct(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p),
        _ => Err(format!("{s:?} is not a percentage >= 0")),
    }
}

/// How one record fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Better,
    Regression,
    /// In A, not in B.
    Missing,
    /// In B, not in A.
    New,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Ok => "ok",
            Verdict::Better => "better",
            Verdict::Regression => "REGRESSION",
            Verdict::Missing => "missing",
            Verdict::New => "new",
        })
    }
}

/// Judges medians `a` (reference) and `b` with a tolerance of `pct` percent.
pub fn judge(a: f64, b: f64, pct: f64) -> Verdict {
    let factor = pct / 100.0;
    if b > a * (1.0 + factor) {
        Verdict::Regression
    } else if b < a * (1.0 - factor) {
        Verdict::Better
    } else {
        Verdict::Ok
    }
}

/// One line of the comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub key: Key,
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub verdict: Verdict,
}

/// The comparison of two runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The threshold used, in percent.
    pub threshold: f64,
    /// A's records in A's order, then those only in B.
    pub rows: Vec<Row>,
}

/// Why two runs are not compared (exit status 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The runs (or one record) measure in different units.
    DifferentUnits { a: String, b: String, what: String },
    /// Not both `qemu-icount` and no `--threshold`.
    NeedThreshold,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::DifferentUnits { a, b, what } => write!(
                f,
                "cannot compare {what}: A is in {a}, B in {b} (different units)"
            ),
            Refusal::NeedThreshold => {
                f.write_str("hardware/qemu numbers are noisy: pass --threshold PCT")
            }
        }
    }
}

/// Two runs whose headers name different emulators (or one names none): instruction counts
/// around TLB and cache maintenance differ between QEMU versions, so a change in the numbers
/// may be the emulator's, not the code's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmulatorChange {
    pub a: String,
    pub b: String,
}

impl EmulatorChange {
    /// The change between the runs' headers, if any. A header older than the `emulator` field
    /// counts as `unknown`.
    pub fn between(a: &Run, b: &Run) -> Option<EmulatorChange> {
        let name = |r: &Run| {
            r.header
                .as_ref()
                .and_then(|h| h.emulator.clone())
                .unwrap_or_else(|| "unknown".into())
        };
        let (a, b) = (name(a), name(b));
        (a != b).then_some(EmulatorChange { a, b })
    }

    /// With the emulator changed, any moved record fails the comparison: the runs are not like
    /// for like, and passing would hide which of the two moved the numbers.
    pub fn fails(&self, comparison: &Comparison) -> bool {
        comparison.rows.iter().any(|r| r.verdict != Verdict::Ok)
    }
}

impl fmt::Display for EmulatorChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "A was measured under {}, B under {}", self.a, self.b)
    }
}

/// Whether a run's header says its numbers are exact instruction counts.
fn exact(run: &Run) -> bool {
    run.header.as_ref().is_some_and(|h| h.mode == "qemu-icount")
}

/// Compares `b` against `a`; `threshold` in percent, `None` for the default.
pub fn compare(a: &Run, b: &Run, threshold: Option<f64>) -> Result<Comparison, Refusal> {
    if let (Some(ha), Some(hb)) = (&a.header, &b.header)
        && ha.unit != hb.unit
    {
        return Err(Refusal::DifferentUnits {
            a: ha.unit.clone(),
            b: hb.unit.clone(),
            what: "the runs".to_string(),
        });
    }
    let in_b: HashMap<Key, &BenchResult> = b.results.iter().map(|r| (r.key(), r)).collect();
    for ra in &a.results {
        if let Some(rb) = in_b.get(&ra.key())
            && ra.unit != rb.unit
        {
            return Err(Refusal::DifferentUnits {
                a: ra.unit.clone(),
                b: rb.unit.clone(),
                what: ra.key().to_string(),
            });
        }
    }
    let threshold = match threshold {
        Some(t) => t,
        None if exact(a) && exact(b) => 0.0,
        None => return Err(Refusal::NeedThreshold),
    };
    let mut rows: Vec<Row> = a
        .results
        .iter()
        .map(|ra| {
            let key = ra.key();
            let (b, verdict) = match in_b.get(&key) {
                Some(rb) => (Some(rb.median), judge(ra.median, rb.median, threshold)),
                None => (None, Verdict::Missing),
            };
            Row {
                key,
                a: Some(ra.median),
                b,
                verdict,
            }
        })
        .collect();
    let in_a: HashMap<Key, ()> = a.results.iter().map(|r| (r.key(), ())).collect();
    rows.extend(
        b.results
            .iter()
            .filter(|rb| !in_a.contains_key(&rb.key()))
            .map(|rb| Row {
                key: rb.key(),
                a: None,
                b: Some(rb.median),
                verdict: Verdict::New,
            }),
    );
    Ok(Comparison { threshold, rows })
}

impl Comparison {
    /// The rows with verdict `v`.
    pub fn with(&self, v: Verdict) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(move |r| r.verdict == v)
    }

    /// 1 if a record regressed or is missing from B, else 0.
    pub fn exit_code(&self) -> u8 {
        let bad = self.with(Verdict::Regression).next().is_some()
            || self.with(Verdict::Missing).next().is_some();
        u8::from(bad)
    }

    /// The per-record table: key, A median, B median, delta, delta %, verdict.
    pub fn render(&self) -> String {
        let mut grid = Grid::new(&[
            ("record", Align::Left),
            ("A", Align::Right),
            ("B", Align::Right),
            ("delta", Align::Right),
            ("delta %", Align::Right),
            ("verdict", Align::Left),
        ]);
        let dash = || "-".to_string();
        for row in &self.rows {
            let (delta, pct) = match (row.a, row.b) {
                (Some(a), Some(b)) => {
                    let d = b - a;
                    let sign = if d > 0.0 { "+" } else { "" };
                    let pct = if a != 0.0 {
                        format!("{sign}{:.1}%", d / a * 100.0)
                    } else if d == 0.0 {
                        "0.0%".to_string()
                    } else {
                        dash()
                    };
                    (format!("{sign}{}", num(d)), pct)
                }
                _ => (dash(), dash()),
            };
            grid.rows.push(vec![
                row.key.to_string(),
                row.a.map_or_else(dash, num),
                row.b.map_or_else(dash, num),
                delta,
                pct,
                row.verdict.to_string(),
            ]);
        }
        grid.render()
    }

    /// One line: how many records of each verdict.
    pub fn summary(&self) -> String {
        let count = |v| self.with(v).count();
        format!(
            "{} records: {} ok, {} better, {} REGRESSION, {} missing, {} new (threshold {}%)",
            self.rows.len(),
            count(Verdict::Ok),
            count(Verdict::Better),
            count(Verdict::Regression),
            count(Verdict::Missing),
            count(Verdict::New),
            num(self.threshold)
        )
    }
}

/// Reads a run and warns (on stderr) about what is wrong with it.
fn load(label: &str, path: &std::path::Path) -> Result<Run> {
    let run = records::load(path)?;
    let source = format!("{label} ({})", path.display());
    outputs::print_problems(&run, &source);
    for failure in run.failures() {
        eprintln!("pb: warning: {source}: {failure}");
    }
    Ok(run)
}

pub fn main(args: Args) -> Result<ExitCode> {
    let a = load("A", &args.a)?;
    let b = load("B", &args.b)?;
    let comparison = match compare(&a, &b, args.threshold) {
        Ok(c) => c,
        Err(refusal) => bail!("{refusal}"),
    };
    if let (Some(ha), Some(hb)) = (&a.header, &b.header)
        && ha.mode != hb.mode
    {
        eprintln!(
            "pb: warning: A was measured in mode {}, B in mode {}",
            ha.mode, hb.mode
        );
    }
    let emulator = EmulatorChange::between(&a, &b);
    if let Some(change) = &emulator {
        println!(
            "pb: note: {change}: counts around TLB and cache maintenance differ between versions"
        );
    }
    print!("{}", comparison.render());
    println!("{}", comparison.summary());
    if let Some(change) = emulator.filter(|c| c.fails(&comparison)) {
        eprintln!(
            "pb: FAIL: the emulator changed ({change}) and records moved: the runs are not like \
             for like. Re-measure the baseline under one emulator (make bench && make \
             bench-baseline) and say in the commit why the numbers moved."
        );
        return Ok(ExitCode::from(1));
    }
    for row in comparison.with(Verdict::Regression) {
        let (a, b) = (row.a.unwrap_or(0.0), row.b.unwrap_or(0.0));
        eprintln!(
            "pb: REGRESSION {}: median {} -> {}",
            row.key,
            num(a),
            num(b)
        );
    }
    for row in comparison.with(Verdict::Missing) {
        eprintln!("pb: missing from B: {}", row.key);
    }
    Ok(ExitCode::from(comparison.exit_code()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::parse_log;
    use crate::records::tests::{HEADER, result};

    /// A run of `mode` and `unit` with results (mechanism, median) on subject `leaf`.
    fn run(mode: &str, unit: &str, results: &[(&str, u64)]) -> Run {
        let header = HEADER
            .replace("qemu-icount", mode)
            .replace("\"unit\":\"instructions\"", &format!("\"unit\":\"{unit}\""));
        let mut log = format!("@bench {header}\n");
        for (m, median) in results {
            let r = result("mechanisms", m, "leaf", *median, "").replace("instructions", unit);
            log += &format!("@bench {r}\n");
        }
        log += &format!(
            "@bench {{\"type\":\"end\",\"records\":{}}}\n",
            results.len()
        );
        let run = parse_log(&log);
        assert_eq!(run.failures(), Vec::<String>::new());
        run
    }

    /// `run` with `"emulator":E` in its header.
    fn under(emulator: &str, results: &[(&str, u64)]) -> Run {
        let mut r = run("qemu-icount", "instructions", results);
        let h = r.header.as_mut().unwrap();
        h.emulator = Some(emulator.into());
        r
    }

    #[test]
    fn a_changed_emulator_is_said_and_fails_once_numbers_move() {
        let a = under("qemu-7.2.0", &[("off", 12), ("call-ops", 58)]);
        let same = under("qemu-7.2.0", &[("off", 12), ("call-ops", 58)]);
        assert_eq!(EmulatorChange::between(&a, &same), None);

        let b = under("qemu-10.0.2", &[("off", 12), ("call-ops", 58)]);
        let change = EmulatorChange::between(&a, &b).expect("a change");
        assert_eq!(
            change.to_string(),
            "A was measured under qemu-7.2.0, B under qemu-10.0.2"
        );
        // Identical numbers: said, but not a failure.
        assert!(!change.fails(&compare(&a, &b, None).unwrap()));

        // Any moved record (better as well as worse) fails: not like for like.
        for moved in [57, 59] {
            let b = under("qemu-10.0.2", &[("off", 12), ("call-ops", moved)]);
            let change = EmulatorChange::between(&a, &b).unwrap();
            assert!(
                change.fails(&compare(&a, &b, None).unwrap()),
                "call-ops {moved}"
            );
        }

        // A header from before the field names no emulator.
        let old = run("qemu-icount", "instructions", &[("off", 12)]);
        let change = EmulatorChange::between(&old, &b).unwrap();
        assert_eq!(change.a, "unknown");
    }

    fn verdicts(c: &Comparison) -> Vec<(String, Verdict)> {
        c.rows
            .iter()
            .map(|r| (r.key.mechanism.clone(), r.verdict))
            .collect()
    }

    #[test]
    fn judge_thresholds() {
        assert_eq!(judge(100.0, 100.0, 0.0), Verdict::Ok);
        assert_eq!(judge(100.0, 101.0, 0.0), Verdict::Regression);
        assert_eq!(judge(100.0, 99.0, 0.0), Verdict::Better);
        assert_eq!(judge(100.0, 105.0, 5.0), Verdict::Ok);
        assert_eq!(judge(100.0, 105.5, 5.0), Verdict::Regression);
        assert_eq!(judge(100.0, 95.0, 5.0), Verdict::Ok);
        assert_eq!(judge(100.0, 94.0, 5.0), Verdict::Better);
        assert_eq!(judge(0.0, 0.0, 0.0), Verdict::Ok);
        assert_eq!(judge(0.0, 1.0, 50.0), Verdict::Regression);
    }

    #[test]
    fn identical_runs_pass() {
        let a = run("qemu-icount", "instructions", &[("twin", 7), ("off", 9)]);
        let c = compare(&a, &a.clone(), None).unwrap();
        assert_eq!(c.threshold, 0.0);
        assert_eq!(
            verdicts(&c),
            [("twin".into(), Verdict::Ok), ("off".into(), Verdict::Ok)]
        );
        assert_eq!(c.exit_code(), 0);
    }

    #[test]
    fn one_more_instruction_fails_under_icount() {
        let a = run("qemu-icount", "instructions", &[("twin", 7), ("off", 9)]);
        let b = run("qemu-icount", "instructions", &[("twin", 6), ("off", 10)]);
        let c = compare(&a, &b, None).unwrap();
        assert_eq!(
            verdicts(&c),
            [
                ("twin".into(), Verdict::Better),
                ("off".into(), Verdict::Regression)
            ]
        );
        assert_eq!(c.exit_code(), 1);
        assert_eq!(
            c.render(),
            "\
record                     A   B  delta  delta %  verdict
-------------------------  -  --  -----  -------  ----------
mechanisms/twin/leaf/call  7   6     -1   -14.3%  better
mechanisms/off/leaf/call   9  10     +1   +11.1%  REGRESSION
"
        );
        assert_eq!(
            c.summary(),
            "2 records: 0 ok, 1 better, 1 REGRESSION, 0 missing, 0 new (threshold 0%)"
        );
        // An explicit threshold applies under icount too.
        assert_eq!(compare(&a, &b, Some(20.0)).unwrap().exit_code(), 0);
    }

    #[test]
    fn hardware_needs_a_threshold_and_tolerates_within_it() {
        let a = run("hardware", "cycles", &[("off", 100)]);
        let b = run("hardware", "cycles", &[("off", 104)]);
        assert_eq!(compare(&a, &b, None), Err(Refusal::NeedThreshold));
        assert_eq!(
            Refusal::NeedThreshold.to_string(),
            "hardware/qemu numbers are noisy: pass --threshold PCT"
        );
        let c = compare(&a, &b, Some(5.0)).unwrap();
        assert_eq!(verdicts(&c), [("off".into(), Verdict::Ok)]);
        assert_eq!(c.exit_code(), 0);
        let c = compare(&a, &b, Some(3.0)).unwrap();
        assert_eq!(c.exit_code(), 1);
        // Plain QEMU (no icount) is noisy too, even against an icount run.
        let q = run("qemu", "instructions", &[("off", 9)]);
        let i = run("qemu-icount", "instructions", &[("off", 9)]);
        assert_eq!(compare(&i, &q, None), Err(Refusal::NeedThreshold));
    }

    #[test]
    fn missing_record_fails_new_record_does_not() {
        let a = run("qemu-icount", "instructions", &[("twin", 7), ("off", 9)]);
        let b = run("qemu-icount", "instructions", &[("off", 9), ("fexit", 60)]);
        let c = compare(&a, &b, None).unwrap();
        assert_eq!(
            verdicts(&c),
            [
                ("twin".into(), Verdict::Missing),
                ("off".into(), Verdict::Ok),
                ("fexit".into(), Verdict::New)
            ]
        );
        assert_eq!(c.exit_code(), 1);
        let c = compare(
            &b,
            &run(
                "qemu-icount",
                "instructions",
                &[("off", 9), ("fexit", 60), ("twin", 1)],
            ),
            None,
        )
        .unwrap();
        assert_eq!(c.exit_code(), 0, "a new record alone passes");
        let text = c.render();
        assert!(
            text.contains("mechanisms/twin/leaf/call    -   1      -        -  new"),
            "{text}"
        );
    }

    #[test]
    fn different_units_are_refused() {
        let a = run("qemu-icount", "instructions", &[("off", 9)]);
        let b = run("hardware", "cycles", &[("off", 9)]);
        let refusal = compare(&a, &b, Some(10.0)).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "cannot compare the runs: A is in instructions, B in cycles (different units)"
        );
        // Also per record, e.g. when a header is missing.
        let mut b2 = b.clone();
        b2.header = None;
        let refusal = compare(&a, &b2, Some(10.0)).unwrap_err();
        assert!(matches!(refusal, Refusal::DifferentUnits { .. }));
        assert!(refusal.to_string().contains("mechanisms/off/leaf/call"));
    }

    #[test]
    fn threshold_option() {
        assert_eq!(parse_pct("2.5"), Ok(2.5));
        assert!(parse_pct("-1").is_err());
        assert!(parse_pct("x").is_err());
        assert!(parse_pct("inf").is_err());
    }
}
