//! The SMP suite (`"suite":"smp"`): what costs more than one CPU, and the tracing costs seen from
//! a secondary CPU. Every record of the run's header names the clock, its mode and the CPUs
//! online; under icount each CPU's PMCCNTR counts that CPU's own instructions.
//!
//! | mechanism | subject | metric | what |
//! |---|---|---|---|
//! | `stop-machine` | `cpus-N` | `entry-exit` | `stop::stop_machine` of an empty function with N CPUs online (every run) |
//! | `grace-period` | `cpus-N` | `synchronize` | one `grace::synchronize` (nothing deferred: what a detach that waits pays) while CPUs 1..N call `leaf`, traced by a call-ops, in loops with `grace::quiescent` (every run; with one CPU, nobody to wait for) |
//! | `ipi` | `one-cpu` | `round-trip` | `ipi::call` of an empty function on CPU 1, waiting until it ran (N > 1) |
//! | every mechanism | every subject | `call-cpu1` | the `mechanisms` suite's call, measured on CPU 1 (N > 1) |
//!
//! The secondary-CPU rows must equal CPU 0's instruction for instruction: nothing on a traced
//! path depends on which CPU runs it beyond the per-CPU block's address. [`run`] measures CPU 0
//! beside each with the very same function and returns every difference; tests/bench_smp.rs
//! asserts there is none. (The `mechanisms` suite's own CPU 0 rows come from another function,
//! whose call set-up for `args8` and `recursive` the compiler allocated differently; their
//! overheads over `off` are the same as these.)
//!
//! Waiting for another CPU (the IPI's answer, the stop's arrivals, a grace period's quiescent
//! points) is counted in the waiting CPU's instructions: under icount's round-robin scheduling
//! that is deterministic, and it depends on the CPUs' time slices, so these rows compare runs
//! with the same `-smp`.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use patchbay_pure::stats::{self, Summary};

use super::{
    clock,
    harness::{self, Iters},
    record::{self, BenchResult},
    suite::{MECHANISMS, Subject},
};
use crate::{
    arch::{self, pmu},
    grace,
    ipi::{self, CpuSet, Wait},
    percpu, smp, stop,
    trace::{self, Filter, FtraceRegs, Ops},
};

/// The secondary the per-CPU rows are measured on.
const SECONDARY: usize = 1;

/// A secondary-CPU median that differs from CPU 0's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub mechanism: &'static str,
    pub subject: &'static str,
    pub cpu0: u64,
    pub secondary: u64,
}

/// Run the suite, emitting its records; returns the secondary-CPU rows that differ from CPU 0.
pub fn run(iters: Iters) -> Vec<Mismatch> {
    stop_machine(iters);
    grace_period(iters);
    if (percpu::online() as usize) <= SECONDARY {
        return Vec::new();
    }
    ipi_round_trip(iters);
    mechanisms_on_secondary(iters)
}

/// Records [`run`] emits with `cpus` CPUs online.
pub fn expected_records(cpus: usize) -> usize {
    if cpus <= SECONDARY {
        2
    } else {
        3 + MECHANISMS.len() * Subject::ALL.len()
    }
}

/// Like `harness::measure`, but with IRQs unmasked: the IPI and stop paths refuse to run
/// masked (the caller must be able to answer another CPU's IPI while it waits).
fn measure_unmasked(iters: Iters, mut f: impl FnMut()) -> Summary {
    for _ in 0..iters.warmup {
        f();
    }
    let mut samples = Vec::with_capacity(iters.samples as usize);
    for _ in 0..iters.samples {
        samples.push(clock::measure(&mut f));
    }
    stats::summarize(&mut samples).expect("at least one sample")
}

/// The `cpus-N` subject of this boot.
fn cpus_online() -> &'static str {
    match percpu::online() {
        1 => "cpus-1",
        2 => "cpus-2",
        3 => "cpus-3",
        4 => "cpus-4",
        _ => "cpus-more",
    }
}

fn stop_machine(iters: Iters) {
    let summary = measure_unmasked(iters, || {
        stop::stop_machine(|| ()).unwrap_or_else(|e| panic!("bench: stop_machine: {e}"))
    });
    record::emit(&BenchResult::new(
        "smp",
        "stop-machine",
        cpus_online(),
        "entry-exit",
        summary,
    ));
}

/// Set to make the grace-period workers return.
static GRACE_QUIT: AtomicBool = AtomicBool::new(false);
/// Loop iterations per grace-period worker.
static GRACE_LOOPS: [AtomicU64; percpu::MAX_CPUS] = [const { AtomicU64::new(0) }; percpu::MAX_CPUS];

extern "C" fn nothing(_: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {}

/// A secondary's part: call the traced `leaf` and pass a quiescent point, until told.
fn grace_worker(cpu: u64) {
    while !GRACE_QUIT.load(Ordering::Acquire) {
        crate::subjects::leaf();
        grace::quiescent();
        GRACE_LOOPS[cpu as usize].fetch_add(1, Ordering::Relaxed);
    }
}

fn grace_period(iters: Iters) {
    let id = trace::attach(
        Filter::Glob("patchbay::subjects::leaf".into()),
        nothing,
        0,
        trace::Mode::CallOps,
    )
    .unwrap_or_else(|e| panic!("bench: attaching call-ops to leaf: {e}"));
    let cpus = percpu::online() as usize;
    GRACE_QUIT.store(false, Ordering::Release);
    let at: Vec<u64> = (0..cpus)
        .map(|c| GRACE_LOOPS[c].load(Ordering::Relaxed))
        .collect();
    for cpu in 1..cpus {
        smp::run_on(cpu, grace_worker, cpu as u64)
            .unwrap_or_else(|e| panic!("bench: CPU {cpu}: {e:?}"));
    }
    // Every worker is in its loop, not still idle (which would end grace periods at once).
    while (1..cpus).any(|c| GRACE_LOOPS[c].load(Ordering::Relaxed) < at[c] + 10) {
        arch::cpu::relax();
    }
    let summary = measure_unmasked(iters, || {
        grace::synchronize().unwrap_or_else(|e| panic!("bench: grace::synchronize: {e}"))
    });
    GRACE_QUIT.store(true, Ordering::Release);
    while !(1..cpus).all(smp::idle_cpu) {
        arch::cpu::relax();
    }
    trace::detach(id).unwrap_or_else(|e| panic!("bench: detaching call-ops from leaf: {e}"));
    record::emit(&BenchResult::new(
        "smp",
        "grace-period",
        cpus_online(),
        "synchronize",
        summary,
    ));
}

fn ipi_round_trip(iters: Iters) {
    let summary = measure_unmasked(iters, || {
        ipi::call(CpuSet::one(SECONDARY), |_| {}, 0, Wait::Done)
            .unwrap_or_else(|e| panic!("bench: IPI to CPU {SECONDARY}: {e:?}"))
    });
    record::emit(&BenchResult::new(
        "smp",
        "ipi",
        "one-cpu",
        "round-trip",
        summary,
    ));
}

/// What the secondary measures next: indices into [`MECHANISMS`] and [`Subject::ALL`].
static MECHANISM: AtomicUsize = AtomicUsize::new(0);
static SUBJECT: AtomicUsize = AtomicUsize::new(0);
/// The secondary's result.
static RESULT: spin::Mutex<Option<Summary>> = spin::Mutex::new(None);

/// The measured call, the same function on both CPUs (inlined into two different callers, the
/// subject's argument set-up was allocated differently: +18 instructions for `args8` on one
/// side, for every mechanism including `twin`). Turns this CPU's cycle counter on first (PMU
/// enables are per CPU). `packed`: warm-up << 32 | samples.
#[inline(never)]
fn measure_here(packed: u64) {
    if pmu::pmu_present() {
        // SAFETY: a PMU is present (checked); the counter is this CPU's own.
        unsafe { pmu::enable_cycle_counter() };
    }
    let iters = Iters {
        warmup: (packed >> 32) as u32,
        samples: packed as u32,
    };
    let m = &MECHANISMS[MECHANISM.load(Ordering::Acquire)];
    let subject = Subject::ALL[SUBJECT.load(Ordering::Acquire)];
    let summary = if m.twin {
        harness::measure(iters, || subject.call_twin())
    } else {
        harness::measure(iters, || subject.call())
    };
    *RESULT.lock() = Some(summary);
}

/// [`measure_here`] on CPU 0 (`None`) or on `cpu`, for the mechanism and subject given.
fn measure_on(cpu: Option<usize>, iters: Iters, m: usize, subject: usize) -> Summary {
    MECHANISM.store(m, Ordering::Release);
    SUBJECT.store(subject, Ordering::Release);
    let packed = (u64::from(iters.warmup) << 32) | u64::from(iters.samples);
    match cpu {
        None => measure_here(packed),
        Some(cpu) => {
            smp::run_on(cpu, measure_here, packed)
                .unwrap_or_else(|e| panic!("bench: CPU {cpu}: {e:?}"));
            while !smp::idle_cpu(cpu) {
                arch::cpu::relax();
            }
        }
    }
    RESULT.lock().take().expect("measured")
}

fn mechanisms_on_secondary(iters: Iters) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    for (s, subject) in Subject::ALL.into_iter().enumerate() {
        let mut medians: Vec<(&'static str, u64)> = Vec::new();
        for (i, m) in MECHANISMS.iter().enumerate() {
            let site = subject.site();
            (m.attach)(site).unwrap_or_else(|e| panic!("bench: attaching {}: {e}", m.name));
            let here = measure_on(None, iters, i, s);
            let there = measure_on(Some(SECONDARY), iters, i, s);
            (m.detach)(site).unwrap_or_else(|e| panic!("bench: detaching {}: {e}", m.name));
            if here.median != there.median {
                mismatches.push(Mismatch {
                    mechanism: m.name,
                    subject: subject.name(),
                    cpu0: here.median,
                    secondary: there.median,
                });
            }
            let mut r = BenchResult::new("smp", m.name, subject.name(), "call-cpu1", there);
            r.baseline = m.baseline_in(&medians);
            record::emit(&r);
            medians.push((m.name, there.median));
        }
    }
    mismatches
}
