//! The one table: every patchbay mechanism beside Linux's nearest equivalent, from two sets of
//! `@bench` records — patchbay's (`pb bench`) and Linux's (`pb linux-compare`) — with the ratio
//! of their overheads and whether the pair is like for like.
//!
//! Pure: records in, text out. The Linux header's extra fields (`function`, `call_ops`,
//! `unavailable`, `pmu`) are read from its raw JSON: `records::Header` does not carry them.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use super::console::{BASELINE, METRIC_CLOCK, METRIC_PMU, SUITE, variant};
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
        patchbay: Patchbay::NotYet,
        linux: "function",
        like: Like::Alone,
        why: "one ring-buffer event per call; patchbay has no recording tracer yet",
        without_call_ops: None,
    },
    Pair {
        patchbay: Patchbay::NotYet,
        linux: "kprobe",
        like: Like::Alone,
        why: "one ring-buffer event per call; patchbay has no recording tracer yet",
        without_call_ops: None,
    },
    Pair {
        patchbay: Patchbay::NotYet,
        linux: "kretprobe",
        like: Like::Alone,
        why: "one ring-buffer event per call; patchbay has no recording tracer yet",
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
    Ok(out)
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
