//! Grace-period latency records (issue 15), under icount (exact instruction counts on the
//! waiting CPU, deterministic: single-threaded TCG runs the vCPUs round-robin). One boot with 4
//! CPUs; the record's subject says how many of them take part:
//!
//! | subject | CPUs running | a grace period waits for |
//! |---|---|---|
//! | `cpus-1` | CPU 0 only (1–3 idle in `WFI`: an extended quiescent state) | nobody but the caller |
//! | `cpus-2` | CPU 0 and CPU 1, which calls traced `leaf` in a loop with `grace::quiescent` | CPU 1's next quiescent point |
//! | `cpus-4` | CPU 0 and CPUs 1–3, each such a loop | every one's next quiescent point |
//!
//! Records: suite `grace`, mechanism `synchronize`, metric `latency` — one `grace::synchronize`
//! call from start to return, nothing deferred (what a detach that waits pays). Under icount the
//! counter is virtual time, shared by the round-robin vCPUs: a grace period that waits for the
//! workers counts their instructions until each reached its next quiescent point.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use patchbay::{
    bench::{
        clock,
        record::{self, BenchResult},
    },
    grace, smp, subjects,
    trace::{self, Filter, FtraceRegs, Mode, Ops},
};

patchbay::qemu_directives!(
    "smp=4",
    "icount=1",
    "timeout=300",
    "expect_console=\"suite\":\"grace\",\"mechanism\":\"synchronize\",\"subject\":\"cpus-4\"",
);

const SAMPLES: usize = 51;

static QUIT: AtomicBool = AtomicBool::new(false);
static CALLS: AtomicU64 = AtomicU64::new(0);
/// Loop iterations per worker CPU.
static LOOPS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

extern "C" fn count(_: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {
    CALLS.fetch_add(1, Ordering::Relaxed);
}

fn worker(cpu: u64) {
    while !QUIT.load(Ordering::Acquire) {
        subjects::leaf();
        grace::quiescent();
        LOOPS[cpu as usize].fetch_add(1, Ordering::Relaxed);
    }
}

fn latency(cpus: usize) {
    QUIT.store(false, Ordering::Release);
    for cpu in 1..cpus {
        smp::run_on(cpu, worker, cpu as u64).unwrap();
    }
    // Every worker is in its loop (not still idle, which would end grace periods at once).
    let at: [u64; 4] = core::array::from_fn(|c| LOOPS[c].load(Ordering::Relaxed));
    while (1..cpus).any(|c| LOOPS[c].load(Ordering::Relaxed) < at[c] + 10) {
        core::hint::spin_loop();
    }
    for _ in 0..5 {
        grace::synchronize().unwrap();
    }
    let mut samples = [0u64; SAMPLES];
    for s in &mut samples {
        *s = clock::measure(|| grace::synchronize().unwrap());
    }
    QUIT.store(true, Ordering::Release);
    while !(1..cpus).all(smp::idle_cpu) {
        core::hint::spin_loop();
    }
    let summary = patchbay_pure::stats::summarize(&mut samples).unwrap();
    let subject = alloc::format!("cpus-{cpus}");
    record::emit(&BenchResult::new(
        "grace",
        "synchronize",
        &subject,
        "latency",
        summary,
    ));
}

extern crate alloc;

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    let id = trace::attach(
        Filter::Glob("patchbay::subjects::leaf".into()),
        count,
        0,
        Mode::CallOps,
    )
    .unwrap();
    record::header();
    for cpus in [1, 2, 4] {
        latency(cpus);
    }
    record::end();
    trace::detach(id).unwrap();
    patchbay::exit::exit(patchbay::exit::ExitCode::Success)
}
