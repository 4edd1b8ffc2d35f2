//! The mechanisms suite: every mechanism × every subject (the whole run: `bench::all`).
//!
//! Mechanisms come from one registry, [`MECHANISMS`]: a new mechanism adds one entry (its name,
//! its baseline, how to attach it to a site and detach it) and the suite, the records and the
//! host tool's tables pick it up. Each result is compared with its baseline measured in the same
//! boot: `off` with the non-patchable `twin`, tracing mechanisms with `off`.

use alloc::vec::Vec;

use super::{
    harness::{self, Iters},
    mechanisms::{self as m, nothing},
    record::{self, BenchResult},
};
use crate::{patch::sites, subjects, trace::TraceError};

/// A function shape under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    Leaf,
    Args8,
    Recursive,
}

/// `fib(RECURSIVE_N)` is the recursive subject: 2 * fib(N + 1) - 1 = 25 calls through the site.
pub const RECURSIVE_N: u64 = 6;

impl Subject {
    pub const ALL: [Subject; 3] = [Subject::Leaf, Subject::Args8, Subject::Recursive];

    /// The name used in records.
    pub fn name(self) -> &'static str {
        match self {
            Subject::Leaf => "leaf",
            Subject::Args8 => "args8",
            Subject::Recursive => "recursive",
        }
    }

    /// The patch site of the patchable version.
    pub fn site(self) -> &'static sites::Site<'static> {
        let name = match self {
            Subject::Leaf => "patchbay::subjects::leaf",
            Subject::Args8 => "patchbay::subjects::args8",
            Subject::Recursive => "patchbay::subjects::fib",
        };
        sites::by_name(name).expect("subjects are patch sites")
    }

    /// One call of the patchable version.
    #[inline(always)]
    pub fn call(self) {
        use core::hint::black_box as bb;
        match self {
            Subject::Leaf => subjects::leaf(),
            Subject::Args8 => {
                bb(subjects::args8(
                    bb(1),
                    bb(2),
                    bb(3),
                    bb(4),
                    bb(5),
                    bb(6),
                    bb(7),
                    bb(8),
                ));
            }
            Subject::Recursive => {
                bb(subjects::fib(bb(RECURSIVE_N)));
            }
        }
    }

    /// One call of the non-patchable twin.
    #[inline(always)]
    pub fn call_twin(self) {
        use core::hint::black_box as bb;
        match self {
            Subject::Leaf => subjects::leaf_twin(),
            Subject::Args8 => {
                bb(subjects::args8_twin(
                    bb(1),
                    bb(2),
                    bb(3),
                    bb(4),
                    bb(5),
                    bb(6),
                    bb(7),
                    bb(8),
                ));
            }
            Subject::Recursive => {
                bb(subjects::fib_twin(bb(RECURSIVE_N)));
            }
        }
    }
}

/// One way of reaching (or not reaching) code at a function's entry.
pub struct Mechanism {
    /// Name in records (`twin`, `off`, `list`, `call-ops`, ...).
    pub name: &'static str,
    /// What its overhead is measured against.
    pub baseline: Option<&'static str>,
    /// Measure the non-patchable twin instead of the patchable subject.
    pub twin: bool,
    /// Put `site` into this mechanism's state.
    pub attach: fn(&sites::Site<'static>) -> Result<(), TraceError>,
    /// Undo [`Mechanism::attach`]: the site is back in its compiled state.
    pub detach: fn(&sites::Site<'static>) -> Result<(), TraceError>,
}

impl Mechanism {
    /// This mechanism's baseline and its median, from the medians measured so far in a table.
    pub fn baseline_in(&self, medians: &[(&'static str, u64)]) -> Option<(&'static str, u64)> {
        let b = self.baseline?;
        medians.iter().find(|(n, _)| *n == b).copied()
    }
}

/// Every mechanism the suite measures, in table order. Tracing mechanisms use the empty
/// counting handler ([`m::count`]).
pub static MECHANISMS: &[Mechanism] = &[
    Mechanism {
        name: "twin",
        baseline: None,
        twin: true,
        attach: nothing,
        detach: nothing,
    },
    Mechanism {
        name: "off",
        baseline: Some("twin"),
        twin: false,
        attach: nothing,
        detach: nothing,
    },
    Mechanism {
        name: "list",
        baseline: Some("off"),
        twin: false,
        attach: m::attach_list,
        detach: m::detach_ops,
    },
    Mechanism {
        name: "call-ops",
        baseline: Some("off"),
        twin: false,
        attach: m::attach_call_ops,
        detach: m::detach_ops,
    },
    Mechanism {
        name: "direct",
        baseline: Some("off"),
        twin: false,
        attach: m::attach_direct_near,
        detach: m::detach_ops,
    },
    Mechanism {
        name: "direct-lean",
        baseline: Some("off"),
        twin: false,
        attach: m::attach_direct_lean,
        detach: m::detach_ops,
    },
    Mechanism {
        name: "direct-far-ops",
        baseline: Some("off"),
        twin: false,
        attach: m::attach_direct_far_ops,
        detach: m::detach_ops,
    },
    Mechanism {
        name: "direct-far-veneer",
        baseline: Some("off"),
        twin: false,
        attach: m::attach_direct_far_veneer,
        detach: m::detach_ops,
    },
    Mechanism {
        name: "fexit",
        baseline: Some("off"),
        twin: false,
        attach: m::attach_fexit,
        detach: m::detach_ops,
    },
    Mechanism {
        name: "rethook",
        baseline: Some("off"),
        twin: false,
        attach: m::attach_rethook,
        detach: m::detach_ops,
    },
    Mechanism {
        name: "fprobe",
        baseline: Some("off"),
        twin: false,
        attach: m::attach_fprobe,
        detach: m::detach_fprobe,
    },
    Mechanism {
        name: "brk",
        baseline: Some("off"),
        twin: false,
        attach: m::attach_brk,
        detach: m::detach_probe,
    },
    Mechanism {
        name: "kretprobe",
        baseline: Some("off"),
        twin: false,
        attach: m::attach_kretprobe,
        detach: m::detach_probe,
    },
    // The recording function tracer: call-ops reaching `trace::recorder::record`, which writes
    // one event per call into this CPU's ring (compare with the counting handler of call-ops).
    // Last on purpose: beside call-ops, its attach/detach cycles changed the first-fit heap's
    // free list that the later patch-latency batches allocate from (+127 instructions per batch);
    // here every earlier record is unchanged.
    Mechanism {
        name: "call-ops+record",
        baseline: Some("off"),
        twin: false,
        attach: m::attach_call_ops_record,
        detach: m::detach_ops,
    },
];

/// Measure every mechanism on every subject and emit one record each.
pub fn run_mechanisms(iters: Iters) {
    run_mechanisms_where(iters, |_| true);
}

/// Measure the mechanisms `keep` selects (include their baselines to get overheads).
pub fn run_mechanisms_where(iters: Iters, keep: impl Fn(&Mechanism) -> bool) {
    for subject in Subject::ALL {
        let mut medians: Vec<(&'static str, u64)> = Vec::new();
        for m in MECHANISMS.iter().filter(|m| keep(m)) {
            let site = subject.site();
            if let Err(e) = (m.attach)(site) {
                crate::println!("bench: cannot attach {} to {}: {e}", m.name, subject.name());
                continue;
            }
            let summary = if m.twin {
                harness::measure(iters, || subject.call_twin())
            } else {
                harness::measure(iters, || subject.call())
            };
            (m.detach)(site).unwrap_or_else(|e| panic!("detaching {}: {e}", m.name));
            let mut r = BenchResult::new("mechanisms", m.name, subject.name(), "call", summary);
            r.baseline = m.baseline_in(&medians);
            record::emit(&r);
            medians.push((m.name, summary.median));
        }
    }
}
