//! The patch storm (issue 15; `support/storm.rs` describes it): 4 CPUs, multi-threaded TCG
//! without icount, the tick on; CPU 0 switches sites among every mode 10,000 times while CPUs
//! 1–3 call them. Zero faults, every result right, exact accounting, nothing leaked.
//!
//! First, two records (the clock is QEMU's host-time counter, mode `qemu`, unit `ticks`: noisy,
//! not cycles, and the header says so): suite `smp`, mechanism `call-ops`, subject `leaf`, the
//! cost of one traced call on CPU 0 while the other CPUs idle (metric `call-quiet`) and while
//! CPU 1 patches another site live in a loop (metric `call-while-patching`: attach and detach
//! of a second ops, each a live literal write with its cache maintenance, a published list and
//! deferred frees).
#![no_std]
#![no_main]

extern crate alloc;

#[path = "support/storm.rs"]
mod storm;

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use patchbay::{
    bench::{
        harness::{self, Iters},
        record::{self, BenchResult},
    },
    smp, subjects,
    trace::{self, Filter, FtraceRegs, Mode, Ops},
};

storm::directives!(
    "timeout=900",
    "bootargs=patchbay.tick_hz=250",
    "expect_console=\"suite\":\"smp\",\"mechanism\":\"call-ops\",\"subject\":\"leaf\",\"metric\":\"call-while-patching\"",
    "expect_console=storm: PASS seed ",
);

extern "C" fn nothing(_: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {}

static PATCHING: AtomicBool = AtomicBool::new(false);
static PATCHES: AtomicU64 = AtomicU64::new(0);

/// CPU 1: attach and detach a second ops on args8 (kept armed by another), live, until told.
fn patcher(_: u64) {
    let filter = || Filter::Glob("patchbay::subjects::args8".into());
    while PATCHING.load(Ordering::Acquire) {
        let id = trace::attach(filter(), nothing, 0, Mode::CallOps).unwrap();
        trace::detach(id).unwrap();
        PATCHES.fetch_add(1, Ordering::Relaxed);
    }
}

fn call_cost_records() {
    let glob = |name: &str| Filter::Glob(name.into());
    let leaf = trace::attach(glob("patchbay::subjects::leaf"), nothing, 0, Mode::CallOps).unwrap();
    let args8 =
        trace::attach(glob("patchbay::subjects::args8"), nothing, 0, Mode::CallOps).unwrap();
    record::header();
    let quiet = harness::measure(Iters::DEFAULT, subjects::leaf);
    record::emit(&BenchResult::new(
        "smp",
        "call-ops",
        "leaf",
        "call-quiet",
        quiet,
    ));
    PATCHING.store(true, Ordering::Release);
    smp::run_on(1, patcher, 0).unwrap();
    while PATCHES.load(Ordering::Relaxed) < 10 {
        core::hint::spin_loop();
    }
    let busy = harness::measure(Iters::DEFAULT, subjects::leaf);
    let patches = PATCHES.load(Ordering::Relaxed);
    PATCHING.store(false, Ordering::Release);
    while !smp::idle_cpu(1) {
        core::hint::spin_loop();
    }
    record::emit(&BenchResult::new(
        "smp",
        "call-ops",
        "leaf",
        "call-while-patching",
        busy,
    ));
    record::end();
    assert!(patches >= 10, "CPU 1 patched while CPU 0 measured");
    trace::detach(leaf).unwrap();
    trace::detach(args8).unwrap();
    patchbay::grace::synchronize().unwrap();
}

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    call_cost_records();
    storm::run();
    patchbay::exit::exit(patchbay::exit::ExitCode::Success)
}
