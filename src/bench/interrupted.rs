//! The interrupted-call suite (`"suite":"irq"`): what a traced call costs when a timer interrupt
//! lands inside it, and what the interrupt itself costs.
//!
//! Each sample arms a one-shot timer interrupt ([`irq::one_shot`], [`LAND_NS`] ahead), then
//! times one call of the recursive subject with IRQs unmasked; the interrupt is taken inside the
//! call (checked: the CPU's tick count moved during the timed call, else the suite panics naming
//! the mechanism). Under icount the landing point and so every count is exact.
//!
//! | mechanism | subject | metric | what |
//! |---|---|---|---|
//! | every mechanism | `recursive` | `call-ticked` | the `mechanisms` suite's call, interrupted once; overhead against its baseline's interrupted call |
//! | `tick` | `recursive` | `interrupt` | the interrupt alone: each interrupted `twin` call minus the median uninterrupted one |
//!
//! Tracing's overhead in an interrupted call (`call-ticked` minus its baseline) is to be
//! compared with the `mechanisms` suite's `call` overhead: the interrupt path (the IRQ entry that
//! saves and clears the recursion guard, the GIC acknowledge and end, the tick) costs the same
//! whichever mechanism it interrupts, so the two overheads differ only by where it landed.
//! Needs a tick-less run (no `patchbay.tick_hz`) with an interrupt controller; without one the
//! suite emits nothing.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use patchbay_pure::stats::{self, Summary};

use super::{
    clock,
    harness::Iters,
    record::{self, BenchResult},
    suite::{MECHANISMS, Subject},
};
use crate::{arch, irq, percpu};

/// How far into the call the interrupt lands, in nanoseconds of the generic counter (under
/// icount with shift 0, one instruction is one nanosecond): early enough to be inside the
/// cheapest call measured (the recursive `twin`, about 400 instructions).
const LAND_NS: u64 = 100;

/// The subject every row measures.
const SUBJECT: Subject = Subject::Recursive;

/// Can this run interrupt a call on purpose?
fn available() -> bool {
    irq::tick_hz() == 0 && irq::controller_name() != "none"
}

/// Records [`run`] emits.
pub fn expected_records() -> usize {
    if available() { MECHANISMS.len() + 1 } else { 0 }
}

/// One call of `call`, interrupted once by the timer: its instruction count.
fn ticked(mechanism: &str, call: &mut impl FnMut()) -> u64 {
    let ticks = (arch::pmu::counter_frequency() * LAND_NS / 1_000_000_000).max(1);
    let cpu = percpu::this();
    let before = cpu.ticks.load(Ordering::Relaxed);
    assert!(irq::one_shot(ticks), "bench: no one-shot timer");
    let t = clock::measure(&mut *call);
    assert_eq!(
        cpu.ticks.load(Ordering::Relaxed),
        before + 1,
        "bench: the timer interrupt did not land inside the {mechanism} call"
    );
    t
}

fn samples(iters: Iters, mechanism: &str, mut call: impl FnMut()) -> Vec<u64> {
    for _ in 0..iters.warmup {
        ticked(mechanism, &mut call);
    }
    (0..iters.samples)
        .map(|_| ticked(mechanism, &mut call))
        .collect()
}

fn summary(mut samples: Vec<u64>) -> Summary {
    stats::summarize(&mut samples).expect("at least one sample")
}

/// Run the suite, emitting its records (nothing if [`expected_records`] is 0).
pub fn run(iters: Iters) {
    if !available() {
        return;
    }
    let mut medians: Vec<(&'static str, u64)> = Vec::new();
    let mut twin: Vec<u64> = Vec::new();
    let site = SUBJECT.site();
    for m in MECHANISMS {
        (m.attach)(site).unwrap_or_else(|e| panic!("bench: attaching {}: {e}", m.name));
        let s = if m.twin {
            samples(iters, m.name, || SUBJECT.call_twin())
        } else {
            samples(iters, m.name, || SUBJECT.call())
        };
        (m.detach)(site).unwrap_or_else(|e| panic!("bench: detaching {}: {e}", m.name));
        if m.twin {
            twin = s.clone();
        }
        let sum = summary(s);
        let mut r = BenchResult::new("irq", m.name, SUBJECT.name(), "call-ticked", sum);
        r.baseline = m.baseline_in(&medians);
        record::emit(&r);
        medians.push((m.name, sum.median));
    }
    // The interrupt alone: the interrupted twin calls against the uninterrupted one (IRQs
    // masked, as the mechanisms suite measures it).
    let plain = super::harness::measure(iters, || SUBJECT.call_twin()).median;
    let interrupt = summary(twin.iter().map(|t| t.saturating_sub(plain)).collect());
    record::emit(&BenchResult::new(
        "irq",
        "tick",
        SUBJECT.name(),
        "interrupt",
        interrupt,
    ));
}
