//! The verdict: the run's numbers against the targets the issues set (README, "Against the
//! targets"). Targets are retired-instruction counts under QEMU icount, so only a run whose unit
//! is `instructions` is judged; other runs show the numbers without a verdict.

use crate::records::{BenchResult, Run, num};
use crate::table::{Align, Grid, Section};

/// How a number is compared with its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Exactly(i64),
    AtMost(i64),
    /// A spread in percent, at most this.
    SpreadAtMost(i64),
}

/// One target and what the run measured for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub measure: &'static str,
    pub target: String,
    /// `None`: the run has no record for it.
    pub now: Option<f64>,
    /// `None`: not judged (not measured, or not an icount run).
    pub met: Option<bool>,
    rule: Rule,
}

fn find<'a>(
    run: &'a Run,
    suite: &str,
    mechanism: &str,
    subject: &str,
    metric: &str,
) -> impl Iterator<Item = &'a BenchResult> {
    let (suite, mechanism, subject, metric) = (
        suite.to_string(),
        mechanism.to_string(),
        subject.to_string(),
        metric.to_string(),
    );
    run.results.iter().filter(move |r| {
        r.suite == suite && r.mechanism == mechanism && r.subject == subject && r.metric == metric
    })
}

/// The overhead of `mechanism` on `leaf` in the mechanisms suite.
fn leaf_overhead(run: &Run, mechanism: &str) -> Option<f64> {
    find(run, "mechanisms", mechanism, "leaf", "call").find_map(|r| r.overhead)
}

fn batch_4096(run: &Run, metric: &str) -> Option<f64> {
    find(run, "patch-latency", "batch", "gen", metric)
        .find(|r| r.batch == Some(4096))
        .map(|r| r.median)
}

/// How much call-ops' median varies as irrelevant ops are added to one relevant ops, in
/// percent of the smallest.
fn call_ops_spread(run: &Run) -> Option<f64> {
    let medians: Vec<f64> = find(run, "ops-scaling", "call-ops", "leaf", "call")
        .filter(|r| r.relevant == Some(1))
        .map(|r| r.median)
        .collect();
    let lo = medians.iter().copied().reduce(f64::min)?;
    let hi = medians.iter().copied().reduce(f64::max)?;
    (medians.len() >= 2 && lo > 0.0).then(|| (hi - lo) / lo * 100.0)
}

/// What recording adds over the counting handler, on `leaf` (call-ops both).
fn recording_cost(run: &Run) -> Option<f64> {
    let median = |m: &str| {
        find(run, "mechanisms", m, "leaf", "call")
            .next()
            .map(|r| r.median)
    };
    Some(median("call-ops+record")? - median("call-ops")?)
}

/// Every target with the run's number: the current ones, issue 13's where it tightened the
/// earlier ones (call-ops <= 30, list <= 45, direct <= 16, fprobe <= 100, first arm <= 200,
/// call-ops exactly flat).
pub fn checks(run: &Run) -> Vec<Check> {
    let judged = run.results.iter().all(|r| r.unit == "instructions") && !run.results.is_empty();
    let rows: [(&str, Rule, Option<f64>); 15] = [
        (
            "site off vs twin (leaf)",
            Rule::Exactly(2),
            leaf_overhead(run, "off"),
        ),
        (
            "single poke, per site (alias map/unmap + TLBI)",
            Rule::AtMost(1000),
            run.results
                .iter()
                .find(|r| {
                    r.suite == "patch-latency" && r.mechanism == "poke" && r.metric == "per-site"
                })
                .map(|r| r.median),
        ),
        (
            "batch arm, per site at 4096",
            Rule::AtMost(150),
            batch_4096(run, "arm"),
        ),
        (
            "batch disarm, per site at 4096",
            Rule::AtMost(150),
            batch_4096(run, "disarm"),
        ),
        (
            "batch first arm, per site at 4096",
            Rule::AtMost(200),
            batch_4096(run, "arm-first"),
        ),
        (
            "call-ops, empty handler, incl. guard (leaf)",
            Rule::AtMost(30),
            leaf_overhead(run, "call-ops"),
        ),
        (
            "list, 1 ops (leaf)",
            Rule::AtMost(45),
            leaf_overhead(run, "list"),
        ),
        (
            "call-ops flat as irrelevant ops grow",
            Rule::SpreadAtMost(0),
            call_ops_spread(run),
        ),
        (
            "direct near, empty handler (leaf)",
            Rule::AtMost(16),
            leaf_overhead(run, "direct"),
        ),
        (
            "direct far via ops (leaf)",
            Rule::AtMost(30),
            leaf_overhead(run, "direct-far-ops"),
        ),
        (
            "fexit (leaf)",
            Rule::AtMost(40),
            leaf_overhead(run, "fexit"),
        ),
        (
            "rethook entry + exit (leaf)",
            Rule::AtMost(80),
            leaf_overhead(run, "rethook"),
        ),
        (
            "fprobe entry + exit (leaf)",
            Rule::AtMost(100),
            leaf_overhead(run, "fprobe"),
        ),
        (
            "BRK probe (leaf)",
            Rule::AtMost(200),
            leaf_overhead(run, "brk"),
        ),
        (
            "recording over counting (call-ops+record − call-ops, leaf)",
            Rule::AtMost(40),
            recording_cost(run),
        ),
    ];
    rows.into_iter()
        .map(|(measure, rule, now)| {
            let met = now.filter(|_| judged).map(|v| match rule {
                Rule::Exactly(t) => v == t as f64,
                Rule::AtMost(t) | Rule::SpreadAtMost(t) => v <= t as f64,
            });
            let target = match rule {
                Rule::Exactly(t) => format!("+{t}"),
                Rule::AtMost(t) => format!("≤ {t}"),
                Rule::SpreadAtMost(t) => format!("within {t}%"),
            };
            Check {
                measure,
                target,
                now,
                met,
                rule,
            }
        })
        .collect()
}

impl Check {
    /// The measured value as the table shows it.
    pub fn now_text(&self) -> String {
        match (self.now, self.rule) {
            (None, _) => "-".into(),
            (Some(v), Rule::SpreadAtMost(_)) => format!("{v:.1}%"),
            (Some(v), Rule::Exactly(_)) if v >= 0.0 => format!("+{}", num(v)),
            (Some(v), _) => num(v),
        }
    }

    pub fn met_text(&self) -> &'static str {
        match self.met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "-",
        }
    }
}

/// The verdict as a table section: one line of summary, one row per target.
pub fn section(run: &Run) -> Section {
    let checks = checks(run);
    let judged = checks.iter().filter(|c| c.met.is_some()).count();
    let met = checks.iter().filter(|c| c.met == Some(true)).count();
    let summary = if judged == 0 {
        "not judged: targets are instruction counts under QEMU icount (make qemu, make bench)"
            .to_string()
    } else {
        let missed: Vec<&str> = checks
            .iter()
            .filter(|c| c.met == Some(false))
            .map(|c| c.measure)
            .collect();
        if missed.is_empty() {
            format!("{met} of {judged} targets met")
        } else {
            format!(
                "{met} of {judged} targets met; not met: {}",
                missed.join("; ")
            )
        }
    };
    let mut grid = Grid::new(&[
        ("measure", Align::Left),
        ("target", Align::Right),
        ("now", Align::Right),
        ("verdict", Align::Left),
    ]);
    for c in &checks {
        grid.rows.push(vec![
            c.measure.to_string(),
            c.target.clone(),
            c.now_text(),
            c.met_text().to_string(),
        ]);
    }
    Section {
        heading:
            "[verdict] against the targets (instruction counts under icount; mechanisms over off)"
                .into(),
        notes: vec![summary],
        grid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::parse_jsonl;

    fn baseline() -> Run {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/baseline.jsonl");
        parse_jsonl(&std::fs::read_to_string(path).unwrap())
    }

    #[test]
    fn the_committed_baseline_is_judged() {
        let run = baseline();
        let checks = checks(&run);
        let get = |m: &str| checks.iter().find(|c| c.measure.starts_with(m)).unwrap();
        assert_eq!(get("site off").now, Some(2.0));
        assert_eq!(get("site off").met, Some(true));
        assert_eq!(get("site off").now_text(), "+2");
        assert_eq!(get("call-ops flat").now_text(), "0.0%");
        assert_eq!(get("call-ops flat").met, Some(true));
        let poke = run.results.iter().find(|r| r.mechanism == "poke").unwrap();
        assert_eq!(get("single poke").now, Some(poke.median));
        assert_eq!(get("single poke").met, Some(poke.median <= 1000.0));
        let call_ops = get("call-ops, empty");
        assert_eq!(call_ops.met, Some(call_ops.now.unwrap() <= 30.0));
        let fprobe = get("fprobe entry");
        assert_eq!(fprobe.met, Some(fprobe.now.unwrap() <= 100.0));
        let s = section(&run);
        assert!(s.notes[0].contains(" targets met"), "{}", s.notes[0]);
        assert_eq!(s.grid.rows.len(), 15);
    }

    #[test]
    fn runs_in_cycles_are_not_judged() {
        let mut run = baseline();
        for r in &mut run.results {
            r.unit = "cycles".into();
        }
        assert!(checks(&run).iter().all(|c| c.met.is_none()));
        assert!(section(&run).notes[0].starts_with("not judged"));
    }

    #[test]
    fn missing_records_are_dashes() {
        let run = parse_jsonl("");
        let s = section(&run);
        assert!(s.grid.rows.iter().all(|r| r[2] == "-" && r[3] == "-"));
    }
}
