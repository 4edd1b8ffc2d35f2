//! Patching while other CPUs run the code (issue 15): CMODX-safe changes are written live and
//! followed by a kick, the rest under stop-the-world; patchers on several CPUs are serialized.
//! QEMU `virt` with 4 CPUs, multi-threaded TCG (one host thread per vCPU: real races).
//!
//! Under the stale-I-cache model (`make test-kernel` runs every kernel test with it) the live
//! tests are also the model's multi-CPU check: another CPU runs the patched line right after the
//! patch call returns, so a missing kick is a violation (`make test-icache` boots this binary
//! with `icache.break=kick`). Built with the `smp-teeth` feature and booted with
//! `smp.break=stop-machine`, [`stop_the_world_changes_are_never_seen_half_written`] fails with a
//! report naming the torn site when CPU 1 runs the site inside the pause (not reliably yet, so
//! `make test-icache` does not run it; README, "Patch protocols").
//!
//! QEMU 10 under multi-threaded TCG invalidates translations *before* it performs a store to
//! code, so a vCPU that retranslates the page in between keeps the old code until the page is
//! written again (README, "Patch protocols"). Assertions that the patching CPU sees a change
//! right away are therefore made while no other CPU runs the patched page.
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use patchbay::{
    exit, kernel_test, ktest,
    patch::{
        batch::{self, Batch, Protocol},
        counter, poke, sites,
        text::text_hash,
    },
    percpu, println, smp,
    subjects::{self, generated},
    trace::{self, Filter, FtraceRegs, Mode},
};
use patchbay_pure::insn;

// No timer tick: its exception entries would synchronize the other CPUs now and then, and hide a
// missing kick from the stale-I-cache model.
patchbay::qemu_directives!("smp=4", "tcg=multi", "timeout=180");

patchbay::test_kernel_main!(BOOT.store(text_hash(), Ordering::Relaxed));

/// Text as boot left it (every site prepared).
static BOOT: AtomicU64 = AtomicU64::new(0);
static QUIT: AtomicBool = AtomicBool::new(false);
/// Calls made by the secondaries (progress).
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Start `work` on CPUs `cpus`, run `main` here, then stop them and wait until they are idle.
fn with_secondaries(cpus: &[usize], work: fn(u64), main: impl FnOnce()) {
    QUIT.store(false, Ordering::Relaxed);
    CALLS.store(0, Ordering::Relaxed);
    for &cpu in cpus {
        smp::run_on(cpu, work, cpu as u64).unwrap();
    }
    // Every secondary is running before the patching starts.
    ktest::wait_until("the secondaries to call the sites", 60, || {
        CALLS.load(Ordering::Relaxed) > 1000
    });
    main();
    QUIT.store(true, Ordering::Relaxed);
    ktest::wait_until("the secondaries to be idle", 60, || {
        cpus.iter().all(|&c| smp::idle_cpu(c))
    });
}

fn leaf() -> &'static sites::Site<'static> {
    sites::by_name("patchbay::subjects::leaf").unwrap()
}

/// A secondary: call `leaf` until told to quit.
fn call_leaf(_: u64) {
    while !QUIT.load(Ordering::Relaxed) {
        subjects::leaf();
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Wait until the secondaries have run the sites again (after a change: without the kick, the
/// stale-I-cache model reports the first of those calls).
fn others_ran() {
    let before = CALLS.load(Ordering::Relaxed);
    ktest::wait_until("the secondaries to call the sites", 60, || {
        CALLS.load(Ordering::Relaxed) > before + 30
    });
}

#[kernel_test]
fn cmodx_safe_changes_are_live_and_kick_every_other_cpu() {
    let site = leaf();
    // After each change the others run the changed line again, and the statistics are checked
    // only at the end.
    let mut stats = Vec::new();
    with_secondaries(&[1, 2, 3], call_leaf, || {
        for _ in 0..50 {
            stats.push(batch::arm(site, counter::target()).unwrap());
            others_ran();
            stats.push(batch::disarm(site).unwrap());
            others_ran();
        }
        // A literal alone is data: no instruction line changed, no kick.
        let mut b = Batch::new();
        b.set_literal(site, 0x1234);
        assert_eq!(b.commit().unwrap().poke.kicks, 0);
        batch::restore(site).unwrap();
    });
    for s in &stats {
        assert_eq!(s.protocol, Protocol::Live);
        assert_eq!(s.poke.kicks, 1, "one phase with instructions: one kick");
    }
    assert_eq!(text_hash(), BOOT.load(Ordering::Relaxed));
    // Nobody else runs the page now: the patching CPU sees every change at once.
    batch::arm(site, counter::target()).unwrap();
    counter::take();
    subjects::leaf();
    assert_eq!(counter::take(), 1, "armed");
    batch::restore(site).unwrap();
    subjects::leaf();
    assert_eq!(counter::take(), 0, "at rest");
}

/// Secondaries running the generated functions, each result checked.
fn call_generated(cpu: u64) {
    let mut i = cpu as usize;
    while !QUIT.load(Ordering::Relaxed) {
        let f = generated::ALL[i % generated::ALL.len()];
        assert_eq!(
            f(i as u64),
            generated::expected(i % generated::ALL.len(), i as u64)
        );
        CALLS.fetch_add(1, Ordering::Relaxed);
        i += 7;
    }
}

/// Sites the patcher on CPU `cpu` arms and disarms: every other generated site, so the two
/// patchers share every page.
fn patcher_sites(cpu: u64) -> Vec<&'static sites::Site<'static>> {
    sites::glob("gen_*")
        .skip(cpu as usize % 2)
        .step_by(2)
        .take(512)
        .collect()
}

/// Batches done by the patcher on CPU 1.
static PATCHED: AtomicU64 = AtomicU64::new(0);

/// A patcher: arm and disarm its half of the generated sites in batches, `ROUNDS` times.
fn patch_rounds(cpu: u64) {
    let mine = patcher_sites(cpu);
    for _ in 0..ROUNDS {
        let mut b = Batch::with_capacity(mine.len());
        for s in &mine {
            b.arm(s, counter::target());
        }
        assert_eq!(b.commit().unwrap().poke.writes as usize, mine.len());
        let mut b = Batch::with_capacity(mine.len());
        for s in &mine {
            b.disarm(s);
        }
        b.commit().unwrap();
        PATCHED.fetch_add(1, Ordering::Relaxed);
    }
}

const ROUNDS: u64 = 20;

#[kernel_test]
fn two_cpus_patching_at_once_never_interleave() {
    // CPUs 0 and 1 arm and disarm interleaved halves of the generated sites (sharing every
    // page, the alias slots' pages and the engine) while CPU 2 calls them. An interleaved
    // validation and write would trip over the other's words (a `Mismatch`, an unwrap here) or
    // leave a site in a state its engine entry does not describe.
    PATCHED.store(0, Ordering::Relaxed);
    QUIT.store(false, Ordering::Relaxed);
    CALLS.store(0, Ordering::Relaxed);
    smp::run_on(2, call_generated, 2).unwrap();
    ktest::wait_until("the secondaries to call the sites", 60, || {
        CALLS.load(Ordering::Relaxed) > 100
    });
    smp::run_on(1, patch_rounds, 1).unwrap();
    patch_rounds(0);
    ktest::wait_until("CPU 1 to be idle", 60, || smp::idle_cpu(1));
    assert_eq!(PATCHED.load(Ordering::Relaxed), 2 * ROUNDS);
    QUIT.store(true, Ordering::Relaxed);
    ktest::wait_until("CPU 2 to be idle", 60, || smp::idle_cpu(2));
    for s in sites::glob("gen_*") {
        assert_eq!(batch::state(s), batch::SiteState::BOOT, "{}", s.name);
        assert_eq!(
            poke::read(s.call(), poke::Width::Insn) as u32,
            insn::NOP,
            "{}",
            s.name
        );
    }
    assert_eq!(text_hash(), BOOT.load(Ordering::Relaxed));
}

static TRACE_HITS: AtomicU64 = AtomicU64::new(0);
extern "C" fn count(_: u64, _: u64, _: &trace::Ops, _: &mut FtraceRegs) {
    TRACE_HITS.fetch_add(1, Ordering::Relaxed);
}

/// Attaches done by the tracer on CPU 1.
static ATTACHED: AtomicU64 = AtomicU64::new(0);

/// A tracer: attach to and detach from overlapping site sets, in both modes.
fn attach_rounds(cpu: u64) {
    let globs = ["gen_00*", "gen_0*", "gen_000*"];
    for r in 0..ROUNDS as usize {
        let mode = if (r + cpu as usize).is_multiple_of(2) {
            Mode::CallOps
        } else {
            Mode::List
        };
        let id = trace::attach(Filter::Glob(globs[r % 3].into()), count, cpu, mode).unwrap();
        trace::detach(id).unwrap();
        ATTACHED.fetch_add(1, Ordering::Relaxed);
    }
}

#[kernel_test]
fn two_cpus_attaching_at_once_are_serialized() {
    // Attach and detach from CPUs 0 and 1 at once, on overlapping sites (nobody calls them:
    // freeing an ops safely while it runs is the grace period's job, not this test's).
    ATTACHED.store(0, Ordering::Relaxed);
    smp::run_on(1, attach_rounds, 1).unwrap();
    attach_rounds(0);
    ktest::wait_until("CPU 1 to be idle", 60, || smp::idle_cpu(1));
    assert_eq!(ATTACHED.load(Ordering::Relaxed), 2 * ROUNDS);
    assert_eq!(trace::attach::attached(), 0);
    for s in sites::glob("gen_0*") {
        assert!(batch::state(s).at_rest(), "{}", s.name);
    }
    assert_eq!(text_hash(), BOOT.load(Ordering::Relaxed));
    // And the traced path works afterwards, from this CPU.
    let id = trace::attach(Filter::Glob("gen_0001".into()), count, 0, Mode::CallOps).unwrap();
    TRACE_HITS.store(0, Ordering::Relaxed);
    assert_eq!(generated::ALL[1](5), generated::expected(1, 5));
    assert_eq!(TRACE_HITS.load(Ordering::Relaxed), 1);
    trace::detach(id).unwrap();
}

/// Where a torn site returns: the guarded call below set x9 to this function's address, and
/// only a site that ran its `bl` without the `mov x9, x30` before it (`nop; bl`) returns here.
extern "C" fn torn() -> ! {
    println!(
        "torn site: CPU {} ran `nop; bl` at {}: a change that needs stop-the-world (the entry \
         word) was written while it ran the site",
        percpu::this().id,
        leaf().name
    );
    exit::exit(exit::ExitCode::Failure)
}

/// Call `leaf` with x9 = [`torn`]: an intact site overwrites x9 (`mov x9, x30`) before its
/// `bl`, so only a torn one (`nop; bl counter`) makes the counter return into `torn`.
#[unsafe(naked)]
extern "C" fn call_leaf_guarded() {
    core::arch::naked_asm!(
        "stp x29, x30, [sp, #-16]!",
        "mov x29, sp",
        "adrp x9, {torn}",
        "add  x9, x9, :lo12:{torn}",
        "bl   {leaf}",
        "ldp  x29, x30, [sp], #16",
        "ret",
        torn = sym torn,
        leaf = sym subjects::leaf,
    )
}

fn call_leaf_guarded_loop(_: u64) {
    while !QUIT.load(Ordering::Relaxed) {
        call_leaf_guarded();
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
}

#[kernel_test]
fn stop_the_world_changes_are_never_seen_half_written() {
    // Unpreparing an armed site writes `nop` over `mov x9, x30` and over the `bl`: one stopped
    // pass. Written live (the `smp-teeth` switch, with a pause between the words) CPU 1 runs
    // `nop; bl` and lands in `torn`.
    let site = leaf();
    with_secondaries(&[1], call_leaf_guarded_loop, || {
        for _ in 0..20 {
            batch::arm(site, counter::target()).unwrap();
            let mut b = Batch::new();
            b.unprepare(site);
            assert_eq!(b.commit().unwrap().protocol, Protocol::StopMachine);
            let mut b = Batch::new();
            b.prepare(site);
            b.commit().unwrap();
            let before = CALLS.load(Ordering::Relaxed);
            ktest::wait_until("the secondaries to call the sites", 60, || {
                CALLS.load(Ordering::Relaxed) > before + 10
            });
        }
    });
    assert_eq!(text_hash(), BOOT.load(Ordering::Relaxed));
}

/// A second target for retargets: back into the function body at once, with the caller's return
/// address in x30 again (the entry contract of `counter::count_hit`, counting nothing).
#[unsafe(naked)]
extern "C" fn pass_through() {
    core::arch::naked_asm!("mov x17, x30", "mov x30, x9", "ret x17")
}

#[kernel_test]
fn live_retargets_after_a_stop_the_world_change_of_the_line() {
    // A stop-the-world change of the entry word (not CMODX-safe), then `bl` -> `bl` retargets of
    // the same site written live while CPUs 1-3 call it. Each parked CPU executed an ISB before
    // it left the park, so the entry word is published everywhere, and the stale-I-cache model
    // judges each retarget by its own word (CMODX-safe until its kick; without the kick, the
    // next call on another CPU would be a violation).
    let site = leaf();
    let mut stats = Vec::new();
    with_secondaries(&[1, 2, 3], call_leaf, || {
        for _ in 0..10 {
            let mut b = Batch::new();
            b.unprepare(site);
            stats.push(b.commit().unwrap());
            // Arming an unprepared site writes the entry word again: stop-the-world too.
            stats.push(batch::arm(site, counter::target()).unwrap());
            for _ in 0..5 {
                let live = batch::arm(site, pass_through as *const () as u64).unwrap();
                assert_eq!(live.protocol, Protocol::Live);
                others_ran();
                let live = batch::arm(site, counter::target()).unwrap();
                assert_eq!(live.protocol, Protocol::Live);
                others_ran();
            }
        }
        batch::restore(site).unwrap();
    });
    for s in &stats {
        assert_eq!(s.protocol, Protocol::StopMachine);
    }
    assert_eq!(text_hash(), BOOT.load(Ordering::Relaxed));
    // Armed to the counter, the site counts; retargeted, it does not.
    batch::arm(site, counter::target()).unwrap();
    counter::take();
    subjects::leaf();
    assert_eq!(counter::take(), 1, "armed to the counter");
    batch::arm(site, pass_through as *const () as u64).unwrap();
    subjects::leaf();
    assert_eq!(counter::take(), 0, "retargeted");
    batch::restore(site).unwrap();
}
