//! The one table: every patchbay mechanism beside Linux's nearest equivalent, from two sets of
//! `@bench` records — patchbay's (`pb bench`) and Linux's (`pb linux-compare`) — with the ratio
//! of their overheads and whether the pair is like for like.
//!
//! Pure: records in, text out. The Linux header's extra fields (`function`, `call_ops`,
//! `unavailable`, `pmu`) are read from its raw JSON: `records::Header` does not carry them.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use super::console::{BASELINE, METRIC_CLOCK, METRIC_PMU, SUITE, Spread, variant};
use crate::records::{BenchResult, Run, num};
use crate::table::{Align, Grid};

/// The patchbay subject whose numbers stand beside Linux's function.
pub const SUBJECT: &str = "leaf";

/// Where a row's patchbay number comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Patchbay {
    /// Suite `mechanisms`, subject [`SUBJECT`].
    Mechanism(&'static str),
    /// Suite `ops-scaling`, subject [`SUBJECT`], this many relevant ops and no irrelevant one.
    Ops {
        mechanism: &'static str,
        relevant: u64,
    },
    /// patchbay has no such mechanism yet.
    NotYet,
}

/// How close a pair is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Like {
    /// The same mechanism; the handlers differ (Linux's do more than count).
    Near,
    /// Different mechanisms or different work.
    No,
    /// Only Linux has it.
    Alone,
}

impl fmt::Display for Like {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Like::Near => "near",
            Like::No => "no",
            Like::Alone => "-",
        })
    }
}

/// One row: a patchbay mechanism and Linux's nearest equivalent.
struct Pair {
    patchbay: Patchbay,
    /// The Linux variant (`console::VARIANTS`).
    linux: &'static str,
    like: Like,
    why: &'static str,
    /// `like` and `why` on a kernel without CALL_OPS, if they differ.
    without_call_ops: Option<(Like, &'static str)>,
}

const PAIRS: [Pair; 11] = [
    Pair {
        patchbay: Patchbay::Mechanism("off"),
        linux: BASELINE,
        like: Like::No,
        why: "Linux's number is a whole raw getpid syscall (svc, el0_svc, the syscall table, the \
              handler, eret), patchbay's a direct call of leaf(); both functions start with the \
              same two patchable NOPs, which Linux cannot take out to measure apart",
        without_call_ops: None,
    },
    Pair {
        patchbay: Patchbay::Mechanism("call-ops"),
        linux: "function-off",
        like: Like::Near,
        why: "both reach the one ops through the call site's literal (CALL_OPS: flag O in \
              enabled_functions); Linux's function_trace_call then takes a recursion lock, \
              disables preemption and finds the ring buffer off, patchbay's handler only counts",
        without_call_ops: Some((
            Like::No,
            "this kernel has no CALL_OPS: every site calls ftrace_caller, which calls the one \
             ops's function through a global pointer; Linux's function_trace_call then takes a \
             recursion lock, disables preemption and finds the ring buffer off, patchbay's \
             handler only counts",
        )),
    },
    Pair {
        patchbay: Patchbay::Ops {
            mechanism: "list",
            relevant: 2,
        },
        linux: "function-x2-off",
        like: Like::Near,
        why: "two ops on one function: both walk the ops list and run two callbacks (Linux: \
              ftrace_ops_list_func, two function_trace_call; patchbay: ops-scaling, 2 relevant \
              ops, 0 irrelevant)",
        without_call_ops: None,
    },
    Pair {
        patchbay: Patchbay::Mechanism("fprobe"),
        linux: "function-graph",
        like: Like::No,
        why: "both hook entry and return through ftrace, but function_graph records an entry \
              and a return event in the ring buffer; patchbay's fprobe handlers only count",
        without_call_ops: None,
    },
    Pair {
        patchbay: Patchbay::Mechanism("fprobe"),
        linux: "fprobe",
        like: Like::Near,
        why: "both fprobe (ftrace entry + return hook), but Linux's fprobe events record two \
              events in the ring buffer; patchbay's handlers only count",
        without_call_ops: None,
    },
    Pair {
        patchbay: Patchbay::Mechanism("rethook"),
        linux: "kretprobe-off",
        like: Like::No,
        why: "both swap the return address for a return trampoline, but Linux's kretprobe \
              enters through a BRK exception, patchbay's rethook through the ftrace trampoline",
        without_call_ops: None,
    },
    Pair {
        patchbay: Patchbay::Mechanism("kretprobe"),
        linux: "kretprobe-off",
        like: Like::Near,
        why: "both a BRK at the entry plus a return trampoline; Linux's dispatcher also looks up \
              the event and finds the ring buffer off",
        without_call_ops: None,
    },
    Pair {
        patchbay: Patchbay::Mechanism("brk"),
        linux: "kprobe-off",
        like: Like::Near,
        why: "both a BRK at the entry, handled in the synchronous exception path; Linux's \
              dispatcher also looks up the event and finds the ring buffer off",
        without_call_ops: None,
    },
    Pair {
        patchbay: Patchbay::Mechanism("call-ops+record"),
        linux: "function",
        like: Like::Near,
        why: "one event per call into a per-CPU ring buffer through the call site's ops (Linux: \
              the function tracer recording ip and parent with a timestamp; patchbay: call-ops \
              with the recording handler writing CPU, timestamp, function, caller and \
              mechanism); Linux also takes a recursion lock and disables preemption",
        without_call_ops: None,
    },
    Pair {
        patchbay: Patchbay::NotYet,
        linux: "kprobe",
        like: Like::Alone,
        why: "one ring-buffer event per call; patchbay records only through call-ops so far",
        without_call_ops: None,
    },
    Pair {
        patchbay: Patchbay::NotYet,
        linux: "kretprobe",
        like: Like::Alone,
        why: "one ring-buffer event per call; patchbay records only through call-ops so far",
        without_call_ops: None,
    },
];

/// Why the table cannot be drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableError {
    /// A run has no header record.
    NoHeader { which: &'static str },
    /// The Linux records are not a `pb linux-compare` run.
    NotLinux { reason: String },
    /// The two runs do not count the same thing.
    Units { patchbay: String, linux: String },
    /// A Linux variant is neither measured nor reported unavailable.
    Missing { variant: &'static str },
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableError::NoHeader { which } => write!(f, "the {which} records have no header"),
            TableError::NotLinux { reason } => write!(
                f,
                "not the records of `pb linux-compare`: {reason} (the Linux file comes first)"
            ),
            TableError::Units { patchbay, linux } => write!(
                f,
                "patchbay's records are in {patchbay}, Linux's in {linux}: only the same unit \
                 compares (run patchbay under icount: `make bench`)"
            ),
            TableError::Missing { variant } => write!(
                f,
                "the Linux records have no result for variant {variant} and do not say it is \
                 unavailable"
            ),
        }
    }
}

impl std::error::Error for TableError {}

/// The Linux header's own fields.
#[derive(Clone, Debug, Deserialize)]
struct LinuxHeader {
    function: String,
    call_ops: bool,
    pmu: String,
    #[serde(default)]
    unavailable: BTreeMap<String, String>,
    #[serde(default)]
    spread: Option<Spread>,
}

fn linux_header(run: &Run) -> Result<LinuxHeader, TableError> {
    let header = run
        .header
        .as_ref()
        .ok_or(TableError::NoHeader { which: "Linux" })?;
    serde_json::from_str(&header.raw).map_err(|e| TableError::NotLinux {
        reason: format!("its header: {e}"),
    })
}

/// A result of `run`.
fn find(run: &Run, f: impl Fn(&BenchResult) -> bool) -> Option<&BenchResult> {
    run.results.iter().find(|r| f(r))
}

/// A number as the table shows it: to one decimal, without a trailing `.0`.
fn short(x: f64) -> String {
    num((x * 10.0).round() / 10.0)
}

/// `median (+overhead)`.
fn cell(r: &BenchResult) -> String {
    match r.overhead {
        Some(o) if o < 0.0 => format!("{} ({})", short(r.median), short(o)),
        Some(o) => format!("{} (+{})", short(r.median), short(o)),
        None => short(r.median),
    }
}

/// The table, its notes and the PMU cross-check. `patchbay_name` and `linux_name` say where
/// the records came from.
pub fn render(
    linux: &Run,
    linux_name: &str,
    patchbay: &Run,
    patchbay_name: &str,
) -> Result<String, TableError> {
    let info = linux_header(linux)?;
    let lh = linux.header.as_ref().expect("checked by linux_header");
    let ph = patchbay
        .header
        .as_ref()
        .ok_or(TableError::NoHeader { which: "patchbay" })?;
    if ph.unit != lh.unit {
        return Err(TableError::Units {
            patchbay: format!("{} ({})", ph.unit, ph.mode),
            linux: format!("{} ({})", lh.unit, lh.mode),
        });
    }
    let linux_result = |v: &str, metric: &str| {
        find(linux, |r| {
            r.suite == SUITE && r.mechanism == v && r.metric == metric
        })
    };
    let mut grid = Grid::new(&[
        ("patchbay", Align::Left),
        (SUBJECT, Align::Left),
        ("Linux", Align::Left),
        (&info.function, Align::Left),
        ("ratio", Align::Right),
        ("like for like", Align::Left),
    ]);
    let mut notes: Vec<String> = Vec::new();
    for pair in &PAIRS {
        let linux_variant = variant(pair.linux).expect("PAIRS names known variants");
        let (like, why) = match (pair.without_call_ops, info.call_ops) {
            (Some(alt), false) => alt,
            _ => (pair.like, pair.why),
        };
        let (pb_name, pb) = match pair.patchbay {
            Patchbay::Mechanism(m) => (
                m.to_string(),
                find(patchbay, |r| {
                    r.suite == "mechanisms"
                        && r.mechanism == m
                        && r.subject == SUBJECT
                        && r.metric == "call"
                }),
            ),
            Patchbay::Ops {
                mechanism,
                relevant,
            } => (
                format!("{mechanism}, {relevant} ops"),
                find(patchbay, |r| {
                    r.suite == "ops-scaling"
                        && r.mechanism == mechanism
                        && r.subject == SUBJECT
                        && r.relevant == Some(relevant)
                        && r.irrelevant == Some(0)
                }),
            ),
            Patchbay::NotYet => ("n/a (patchbay: not yet)".to_string(), None),
        };
        let pb_cell = match (pair.patchbay, pb) {
            (Patchbay::NotYet, _) => "-".to_string(),
            (_, Some(r)) => cell(r),
            (_, None) => "- (not in the records)".to_string(),
        };
        let mut unavailable = None;
        let (linux_cell, ratio) = match linux_result(pair.linux, METRIC_CLOCK) {
            Some(l) => {
                let ratio = match (l.overhead, pb.and_then(|p| p.overhead)) {
                    (Some(lo), Some(po)) if po > 0.0 => format!("{:.1}×", lo / po),
                    _ => "-".to_string(),
                };
                (cell(l), ratio)
            }
            None => match info.unavailable.get(pair.linux) {
                Some(reason) => {
                    unavailable = Some(reason.as_str());
                    ("unavailable".to_string(), "-".to_string())
                }
                None => {
                    return Err(TableError::Missing {
                        variant: linux_variant.name,
                    });
                }
            },
        };
        let note = match unavailable {
            Some(reason) => format!("{why}; unavailable on this kernel: {reason}"),
            None => why.to_string(),
        };
        // Rows that say the same share a note.
        let number = match notes.iter().position(|n| *n == note) {
            Some(i) => i + 1,
            None => {
                notes.push(note);
                notes.len()
            }
        };
        grid.rows.push(vec![
            pb_name,
            pb_cell,
            linux_variant.label.to_string(),
            linux_cell,
            ratio,
            format!("{like} ({number})"),
        ]);
    }
    let mut out = format!(
        "[linux vs patchbay] unit: {} ({}) — medians per call; (+n) = over the unhooked call; \
         ratio = Linux's +n / patchbay's +n\n",
        lh.unit, lh.mode
    );
    out += &format!(
        "patchbay: {patchbay_name} (board {}): {SUBJECT}() called directly, empty counting \
         handlers\n",
        ph.board.as_deref().unwrap_or("?")
    );
    out += &format!(
        "Linux:    {linux_name} (board {}, {}): {} reached by a raw getpid syscall, clock {}{}\n",
        lh.board.as_deref().unwrap_or("?"),
        if info.call_ops {
            "CALL_OPS"
        } else {
            "no CALL_OPS"
        },
        info.function,
        lh.clock,
        if lh.mode == "qemu-icount" {
            " (1 ns = 1 instruction)"
        } else {
            ""
        }
    );
    out += &grid.render();
    for (i, why) in notes.iter().enumerate() {
        out += &format!("({}) {why}\n", i + 1);
    }
    out += &cross_check(linux, &info);
    if let Some(s) = &info.spread {
        out += &repeat_line(s);
    }
    Ok(out)
}

/// How far repeated runs were apart.
fn repeat_line(s: &Spread) -> String {
    match &s.widest {
        None => format!("repeat: {} runs, identical medians\n", s.runs),
        Some(widest) => format!(
            "repeat: {} runs, medians at most {} (clock){} instructions per call apart, widest \
             {widest}\n",
            s.runs,
            num(s.call),
            s.call_pmu
                .map(|p| format!(" and {} (PMU)", num(p)))
                .unwrap_or_default()
        ),
    }
}

/// How far the PMU's medians are from the clock's, over every variant both measured.
fn cross_check(linux: &Run, info: &LinuxHeader) -> String {
    let mut worst: Option<f64> = None;
    for clock in linux
        .results
        .iter()
        .filter(|r| r.suite == SUITE && r.metric == METRIC_CLOCK)
    {
        if let Some(pmu) = find(linux, |r| {
            r.suite == SUITE && r.metric == METRIC_PMU && r.mechanism == clock.mechanism
        }) {
            let d = (pmu.median - clock.median).abs();
            worst = Some(worst.map_or(d, |w: f64| w.max(d)));
        }
    }
    match worst {
        Some(w) => format!(
            "cross-check: the PMU's instruction counter ({}) puts every median within {} \
             instructions per call of the clock's\n",
            info.pmu,
            num((w * 1000.0).round() / 1000.0)
        ),
        None => format!("cross-check: none, the PMU is {}\n", info.pmu),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::console::tests::{RESULTS_61, RESULTS_612};
    use crate::records::tests::{HEADER, result};
    use crate::records::{parse_jsonl, parse_log};

    /// patchbay's records for the rows of the table, with the committed baseline's numbers.
    fn patchbay(header: &str) -> Run {
        let mech = |m: &str, median: u64, base: &str, overhead: u64| {
            result(
                "mechanisms",
                m,
                SUBJECT,
                median,
                &format!(r#","baseline":"{base}","overhead":{overhead}"#),
            )
        };
        let lines = [
            header.to_string(),
            mech("off", 12, "twin", 2),
            mech("call-ops", 58, "off", 46),
            mech("fprobe", 218, "off", 206),
            mech("rethook", 180, "off", 168),
            mech("kretprobe", 299, "off", 287),
            mech("brk", 208, "off", 196),
            mech("call-ops+record", 81, "off", 69),
            result(
                "ops-scaling",
                "list",
                SUBJECT,
                119,
                r#","baseline":"off","overhead":112,"relevant":2,"irrelevant":0"#,
            ),
        ];
        parse_log(&lines.map(|l| format!("@bench {l}\n")).concat())
    }

    fn render_612(pb: &Run) -> Result<String, TableError> {
        render(
            &parse_jsonl(RESULTS_612),
            "bench/linux-6.12.95+deb12-arm64.jsonl",
            pb,
            "bench/baseline.jsonl",
        )
    }

    #[test]
    fn the_table_of_the_committed_612_run() {
        let table = render_612(&patchbay(HEADER)).unwrap();
        let expected = "\
[linux vs patchbay] unit: instructions (qemu-icount) — medians per call; (+n) = over the unhooked call; ratio = Linux's +n / patchbay's +n
patchbay: bench/baseline.jsonl (board qemu_virt): leaf() called directly, empty counting handlers
Linux:    bench/linux-6.12.95+deb12-arm64.jsonl (board linux-6.12.95+deb12-arm64, CALL_OPS): __arm64_sys_getpid reached by a raw getpid syscall, clock clock_monotonic (1 ns = 1 instruction)
patchbay                 leaf        Linux                                __arm64_sys_getpid  ratio  like for like
-----------------------  ----------  -----------------------------------  ------------------  -----  -------------
off                      12 (+2)     no tracing                           439.4                   -  no (1)
call-ops                 58 (+46)    function tracer, tracing_on=0        615.4 (+176)         3.8×  near (2)
list, 2 ops              119 (+112)  two function tracers, tracing_on=0   909.4 (+470)         4.2×  near (3)
fprobe                   218 (+206)  function_graph, recording            2157.4 (+1718)       8.3×  no (4)
fprobe                   218 (+206)  fprobe events entry+exit, recording  unavailable             -  near (5)
rethook                  180 (+168)  kretprobe event, tracing_on=0        1621.4 (+1182)       7.0×  no (6)
kretprobe                299 (+287)  kretprobe event, tracing_on=0        1621.4 (+1182)       4.1×  near (7)
brk                      208 (+196)  kprobe event, tracing_on=0           1173.4 (+734)        3.7×  near (8)
call-ops+record          81 (+69)    function tracer, recording           1057.6 (+618.2)      9.0×  near (9)
n/a (patchbay: not yet)  -           kprobe event, recording              1658.9 (+1219.5)        -  - (10)
n/a (patchbay: not yet)  -           kretprobe event, recording           2113.8 (+1674.4)        -  - (10)
";
        assert!(table.starts_with(expected), "{table}");
        let notes: Vec<&str> = table[expected.len()..].lines().collect();
        assert_eq!(notes.len(), 12, "{notes:?}");
        assert!(notes[1].starts_with("(2) both reach the one ops through the call site's literal"));
        assert!(notes[4].ends_with(
            "unavailable on this kernel: tracefs README has no fprobe event syntax (kernel built \
             without CONFIG_FPROBE_EVENTS)"
        ));
        assert!(notes[8].starts_with("(9) one event per call into a per-CPU ring buffer"));
        assert_eq!(
            notes[9],
            "(10) one ring-buffer event per call; patchbay records only through call-ops so far"
        );
        assert_eq!(
            notes[10],
            "cross-check: the PMU's instruction counter (perf_event_open \
             PERF_COUNT_HW_INSTRUCTIONS) puts every median within 0.008 instructions per call of \
             the clock's"
        );
        assert_eq!(
            notes[11],
            "repeat: 3 runs, medians at most 2.48 (clock) and 2.464 (PMU) instructions per call \
             apart, widest kretprobe/call"
        );
    }

    #[test]
    fn without_call_ops_the_pair_is_not_like_for_like() {
        let table = render(&parse_jsonl(RESULTS_61), "61", &patchbay(HEADER), "pb").unwrap();
        assert!(
            table.contains("(board linux-6.1.0-50-arm64, no CALL_OPS)"),
            "{table}"
        );
        let row = table.lines().find(|l| l.starts_with("call-ops ")).unwrap();
        assert!(row.ends_with("  no (2)"), "{row}");
        assert!(
            table.contains("\n(2) this kernel has no CALL_OPS: every site calls ftrace_caller")
        );
    }

    #[test]
    fn a_missing_patchbay_record_is_shown_not_invented() {
        let mut pb = patchbay(HEADER);
        pb.results.retain(|r| r.mechanism != "brk");
        let table = render_612(&pb).unwrap();
        let row = table.lines().find(|l| l.starts_with("brk ")).unwrap();
        assert!(row.contains("- (not in the records)"), "{row}");
        assert!(row.contains("1173.4 (+734)"), "{row}");
        assert!(!row.contains('×'), "no ratio without both numbers: {row}");
    }

    #[test]
    fn refusals() {
        let cycles = HEADER
            .replace("\"unit\":\"instructions\"", "\"unit\":\"cycles\"")
            .replace("qemu-icount", "hardware");
        assert_eq!(
            render_612(&patchbay(&cycles)).unwrap_err().to_string(),
            "patchbay's records are in cycles (hardware), Linux's in instructions (qemu-icount): \
             only the same unit compares (run patchbay under icount: `make bench`)"
        );
        let pb = patchbay(HEADER);
        let err = render(&pb, "baseline", &pb, "baseline").unwrap_err();
        assert!(matches!(err, TableError::NotLinux { .. }), "{err}");
        let mut linux = parse_jsonl(RESULTS_612);
        linux.results.retain(|r| r.mechanism != "kprobe-off");
        assert_eq!(
            render(&linux, "l", &pb, "p"),
            Err(TableError::Missing {
                variant: "kprobe-off"
            })
        );
        let mut no_header = pb.clone();
        no_header.header = None;
        assert_eq!(
            render_612(&no_header),
            Err(TableError::NoHeader { which: "patchbay" })
        );
    }
}
