//! Grace periods (issue 15): what unpublished tracing state is freed after, on 4 CPUs with the
//! tick on. Idle CPUs and worker loops that call `grace::quiescent` end a grace period; a CPU
//! inside a handler — interrupts or not — holds it up until the timeout names it; deferred frees
//! wait for it; freed trampoline memory holds the trap pattern.
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use patchbay::{
    grace::{self, GraceError},
    ipi::{self, CpuSet, Wait},
    kernel_test, ktest, memory,
    patch::{poke, sites},
    smp, subjects,
    trace::{self, DirectCtx, DirectKind, Filter, FtraceRegs, Mode, Ops, Reach},
};
use patchbay_pure::batch::Width;

#[cfg(feature = "bsp_qemu_virt")]
patchbay::qemu_directives!("smp=4", "timeout=120", "bootargs=patchbay.tick_hz=500");
#[cfg(not(feature = "bsp_qemu_virt"))]
patchbay::qemu_directives!("timeout=120", "bootargs=patchbay.tick_hz=500");

patchbay::test_kernel_main!();

static QUIT: AtomicBool = AtomicBool::new(false);

/// Trace the subject `name` with `handler` in `mode`.
fn trace_subject(name: &str, handler: trace::Handler, mode: Mode) -> trace::OpsId {
    trace::attach(
        Filter::Glob(alloc::format!("patchbay::subjects::{name}")),
        handler,
        0,
        mode,
    )
    .unwrap()
}
static CALLS: AtomicU64 = AtomicU64::new(0);

fn stop_workers() {
    QUIT.store(true, Ordering::Release);
    ktest::wait_until("the workers to finish", 10, || (1..4).all(smp::idle_cpu));
    QUIT.store(false, Ordering::Release);
}

#[kernel_test]
fn idle_cpus_end_a_grace_period_at_once() {
    // Idle means in the idle loop: a CPU still returning from an earlier test's work is not.
    ktest::wait_until("every other CPU to be idle", 10, || {
        (1..4).all(smp::idle_cpu)
    });
    // The nudge is sent after 1 ms of host time: a host that deschedules this vCPU that long
    // (a loaded machine) nudges without any CPU being at fault, so one of a few tries must do
    // without.
    let mut nudged = 0;
    for _ in 0..5 {
        let before = grace::stats();
        grace::synchronize().unwrap();
        let after = grace::stats();
        assert!(after.completed > before.completed);
        if after.nudges == before.nudges {
            return;
        }
        nudged += 1;
    }
    panic!("idle CPUs needed an IPI in each of {nudged} grace periods");
}

/// A worker loop that calls a traced function and passes a quiescent point between calls.
fn quiescent_worker(_: u64) {
    while !QUIT.load(Ordering::Acquire) {
        subjects::leaf();
        CALLS.fetch_add(1, Ordering::Relaxed);
        assert!(grace::quiescent(), "a worker loop is outside tracing");
    }
}

extern "C" fn count(_: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {
    CALLS.fetch_add(1, Ordering::Relaxed);
}

#[kernel_test]
fn busy_workers_pass_quiescent_points_between_calls() {
    let id = trace_subject("leaf", count, Mode::CallOps);
    for cpu in 1..4 {
        smp::run_on(cpu, quiescent_worker, 0).unwrap();
    }
    let c = CALLS.load(Ordering::Relaxed);
    ktest::wait_until("the workers to call", 10, || {
        CALLS.load(Ordering::Relaxed) > c + 1000
    });
    for _ in 0..20 {
        grace::synchronize().unwrap();
    }
    trace::detach(id).unwrap();
    stop_workers();
}

/// A loop that never calls `grace::quiescent`: only its interrupts can find it quiescent.
fn plain_worker(_: u64) {
    while !QUIT.load(Ordering::Acquire) {
        subjects::leaf();
    }
}

#[kernel_test]
fn an_interrupt_outside_tracing_is_a_quiescent_point() {
    let id = trace_subject("leaf", count, Mode::List);
    for cpu in 1..4 {
        smp::run_on(cpu, plain_worker, 0).unwrap();
    }
    let before = grace::stats();
    for _ in 0..5 {
        grace::synchronize().unwrap();
    }
    assert!(grace::stats().irq_quiescent > before.irq_quiescent);
    trace::detach(id).unwrap();
    stop_workers();
}

static HOLD: AtomicBool = AtomicBool::new(false);
static HELD: AtomicU64 = AtomicU64::new(0);

/// A handler that stays until released: its CPU is inside tracing all that time, and takes the
/// tick (IRQs are unmasked in handlers the trampolines run).
fn hold_here() {
    HELD.fetch_add(1, Ordering::AcqRel);
    while HOLD.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
}

extern "C" fn holding_ops(_: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {
    hold_here();
}

extern "C" fn holding_direct(_: &DirectCtx, _: *mut u64) {
    hold_here();
}

fn call_observe_once(_: u64) {
    subjects::observe(1);
}

/// Dropped when its grace period has passed.
struct Flag(&'static AtomicBool);

impl Drop for Flag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

static FREED: AtomicBool = AtomicBool::new(false);

/// CPU 2 sits in a handler reached through `attach`; a grace period cannot end, and what was
/// deferred is not freed, until it leaves — although it takes interrupts all along.
fn a_cpu_inside_a_handler_holds_the_grace_period(attach: impl FnOnce() -> trace::OpsId) {
    HOLD.store(true, Ordering::Release);
    HELD.store(0, Ordering::Release);
    FREED.store(false, Ordering::Release);
    let id = attach();
    smp::run_on(2, call_observe_once, 0).unwrap();
    ktest::wait_until("CPU 2 to enter the handler", 10, || {
        HELD.load(Ordering::Acquire) == 1
    });
    trace::detach(id).unwrap();
    grace::defer(Flag(&FREED));
    let ticks = patchbay::percpu::CPUS[2].ticks.load(Ordering::Relaxed);
    assert_eq!(grace::synchronize(), Err(GraceError::Timeout { cpu: 2 }));
    assert!(
        patchbay::percpu::CPUS[2].ticks.load(Ordering::Relaxed) > ticks,
        "CPU 2 took interrupts inside the handler"
    );
    assert!(
        !FREED.load(Ordering::Acquire),
        "freed during the grace period"
    );
    HOLD.store(false, Ordering::Release);
    ktest::wait_until("CPU 2 to return", 10, || smp::idle_cpu(2));
    grace::synchronize().unwrap();
    assert!(
        FREED.load(Ordering::Acquire),
        "freed after the grace period"
    );
}

#[kernel_test]
fn a_cpu_inside_an_ops_handler_holds_the_grace_period() {
    a_cpu_inside_a_handler_holds_the_grace_period(|| {
        trace_subject("observe", holding_ops, Mode::CallOps)
    });
}

#[kernel_test]
fn a_cpu_inside_a_direct_handler_holds_the_grace_period() {
    // No recursion guard on a direct trampoline: only the frame walk sees it.
    a_cpu_inside_a_handler_holds_the_grace_period(|| {
        let obs = sites::by_name("patchbay::subjects::observe").unwrap();
        trace::attach_direct(obs, DirectKind::Entry(holding_direct), 0, Reach::Near).unwrap()
    });
}

/// Set by [`masked_spin`] once it runs on its CPU.
static SPINNING: AtomicBool = AtomicBool::new(false);

fn masked_spin(_: u64) {
    SPINNING.store(true, Ordering::Release);
    while HOLD.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
}

#[kernel_test]
fn a_cpu_that_passes_no_quiescent_point_is_a_typed_timeout() {
    // CPU 3 spins in an IPI handler, IRQs masked: neither its interrupts nor the nudge reach it.
    HOLD.store(true, Ordering::Release);
    SPINNING.store(false, Ordering::Release);
    ipi::call(CpuSet::one(3), masked_spin, 0, Wait::Posted).unwrap();
    // Posted returns before CPU 3 runs it: a grace period begun while CPU 3 was still idle (an
    // extended quiescent state) would rightly end at once.
    while !SPINNING.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
    let e = grace::synchronize().unwrap_err();
    assert_eq!(e, GraceError::Timeout { cpu: 3 });
    assert!(alloc::format!("{e}").contains("CPU 3 passed no quiescent point"));
    HOLD.store(false, Ordering::Release);
    grace::synchronize().unwrap();
}

#[kernel_test]
fn freed_trampoline_memory_holds_the_trap_pattern() {
    let obs = sites::by_name("patchbay::subjects::observe").unwrap();
    let id = trace::attach_direct(
        obs,
        DirectKind::Entry(holding_direct),
        0,
        Reach::FarViaVeneer,
    )
    .unwrap();
    let (tramp, veneer) = trace::direct::trampoline_of(id).unwrap();
    let veneer = veneer.unwrap();
    let word = |a: u64| poke::read(a, Width::Insn) as u32;
    assert_ne!(word(tramp), memory::POOL_FILL);
    assert_ne!(word(veneer), memory::POOL_FILL);
    trace::detach(id).unwrap();
    grace::synchronize().unwrap();
    for a in [tramp, veneer] {
        for i in 0..4 {
            assert_eq!(word(a + 4 * i), memory::POOL_FILL, "{a:#x} + {}", 4 * i);
        }
    }
}

#[kernel_test]
fn synchronize_from_a_handler_is_refused() {
    static GOT: spin::Mutex<Option<Result<(), GraceError>>> = spin::Mutex::new(None);
    extern "C" fn sync_inside(_: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {
        *GOT.lock() = Some(grace::synchronize());
    }
    let id = trace_subject("observe", sync_inside, Mode::CallOps);
    subjects::observe(3);
    trace::detach(id).unwrap();
    assert_eq!(*GOT.lock(), Some(Err(GraceError::WrongContext)));
    let before = grace::stats().refused;
    let id = trace_subject("observe", refuse_inside, Mode::CallOps);
    subjects::observe(3);
    trace::detach(id).unwrap();
    assert_eq!(grace::stats().refused, before + 1);
}

extern "C" fn refuse_inside(_: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {
    assert!(!grace::quiescent(), "a handler is not a quiescent point");
}
