//! Stop-the-world (issue 14): while one CPU runs the function, no other CPU makes progress; all
//! resume afterwards; nested use is refused; a CPU that does not arrive is a typed timeout
//! naming it. QEMU `virt` with 4 CPUs (or, built with `bsp_rpi3`, QEMU `raspi3b`).
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use patchbay_pure::insn;

use patchbay::{
    ipi::{self, CpuSet, Wait},
    kernel_test, ktest,
    patch::{
        batch::{Batch, Protocol},
        counter, poke, sites,
        text::text_hash,
    },
    percpu, smp,
    stop::{self, StopError},
    subjects,
};

#[cfg(feature = "bsp_qemu_virt")]
patchbay::qemu_directives!("smp=4", "timeout=90", "bootargs=patchbay.tick_hz=500");
#[cfg(not(feature = "bsp_qemu_virt"))]
patchbay::qemu_directives!("timeout=90", "bootargs=patchbay.tick_hz=500");

patchbay::test_kernel_main!();

static COUNTERS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static QUIT: AtomicBool = AtomicBool::new(false);

/// A secondary's busy work, in normal context: count until told to quit.
fn spin_count(cpu: u64) {
    while !QUIT.load(Ordering::Relaxed) {
        COUNTERS[cpu as usize].fetch_add(1, Ordering::Relaxed);
    }
}

fn snapshot() -> [u64; 4] {
    core::array::from_fn(|c| COUNTERS[c].load(Ordering::Relaxed))
}

#[kernel_test]
fn stopped_cpus_make_no_progress_and_resume_after() {
    QUIT.store(false, Ordering::Relaxed);
    for cpu in 1..4 {
        smp::run_on(cpu, spin_count, cpu as u64).unwrap();
    }
    let base = snapshot();
    ktest::wait_until("CPUs 1-3 to make progress", 5, || {
        (1..4).all(|c| snapshot()[c] > base[c] + 1000)
    });
    for _ in 0..5 {
        let frozen = stop::stop_machine(|| {
            let a = snapshot();
            // Long enough for a running CPU to count thousands of times.
            for _ in 0..200_000 {
                core::hint::spin_loop();
            }
            (a, snapshot())
        })
        .unwrap();
        assert_eq!(frozen.0, frozen.1, "a stopped CPU counted");
        ktest::wait_until("CPUs 1-3 to make progress", 5, || {
            (1..4).all(|c| snapshot()[c] > frozen.1[c] + 100)
        });
    }
    QUIT.store(true, Ordering::Relaxed);
    ktest::wait_until("CPUs 1-3 to be idle", 5, || (1..4).all(smp::idle_cpu));
}

#[kernel_test]
fn nested_stop_is_refused() {
    let inner = stop::stop_machine(|| stop::stop_machine(|| ())).unwrap();
    assert_eq!(inner, Err(StopError::Nested));
    // And the machine is usable again afterwards.
    assert_eq!(stop::stop_machine(|| 7), Ok(7));
}

static HOLD: AtomicBool = AtomicBool::new(false);

fn hold(_: u64) {
    while HOLD.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
}

#[kernel_test]
fn a_cpu_that_does_not_arrive_is_a_typed_timeout() {
    HOLD.store(true, Ordering::Release);
    ipi::call(CpuSet::one(2), hold, 0, Wait::Posted).unwrap();
    let ran = AtomicBool::new(false);
    assert_eq!(
        stop::stop_machine(|| ran.store(true, Ordering::Relaxed)),
        Err(StopError::Timeout { cpu: 2 })
    );
    assert!(
        !ran.load(Ordering::Relaxed),
        "the function ran without CPU 2 stopped"
    );
    HOLD.store(false, Ordering::Release);
    // CPUs 1 and 3 were released: the next stop works, and every CPU still answers.
    assert_eq!(stop::stop_machine(|| 1), Ok(1));
    ipi::call(CpuSet::others(), |_| {}, 0, Wait::Done).unwrap();
    assert_eq!(percpu::online(), 4);
}

/// A secondary calling the site while it is armed and restored.
fn call_leaf(_: u64) {
    while !QUIT.load(Ordering::Relaxed) {
        subjects::leaf();
    }
}

#[kernel_test]
fn entry_word_writes_run_with_the_other_cpus_stopped() {
    // `nop` <-> `mov x9, x30` is not CMODX-safe: with 4 CPUs online, unpreparing and preparing
    // a site stops the machine (and retries while a CPU sits inside the site) instead of
    // refusing. The arm is stopped too, on request: under multi-threaded TCG a live patch can
    // leave QEMU with a stale translation on the vCPU that translated the page meanwhile
    // (tests/live.rs), and this CPU must see the armed site at once.
    let boot = text_hash();
    let leaf = sites::by_name("patchbay::subjects::leaf").unwrap();
    let entry = || poke::read(leaf.entry(), poke::Width::Insn) as u32;
    QUIT.store(false, Ordering::Relaxed);
    for cpu in 1..4 {
        smp::run_on(cpu, call_leaf, 0).unwrap();
    }
    for _ in 0..10 {
        let mut b = Batch::new();
        b.arm(leaf, counter::target()).stop_machine();
        let armed = b.commit().unwrap();
        assert_eq!(armed.protocol, Protocol::StopMachine);
        assert_eq!(armed.poke.kicks, 0, "the stop synchronizes the others");
        counter::take();
        subjects::leaf();
        assert!(counter::take() >= 1, "the armed site calls the counter");
        let mut b = Batch::new();
        b.unprepare(leaf);
        assert_eq!(b.commit().unwrap().protocol, Protocol::StopMachine);
        assert_eq!(entry(), insn::NOP);
        let mut b = Batch::new();
        b.prepare(leaf);
        assert_eq!(b.commit().unwrap().protocol, Protocol::StopMachine);
        assert_eq!(entry(), insn::MOV_X9_X30);
    }
    QUIT.store(true, Ordering::Relaxed);
    ktest::wait_until("CPUs 1-3 to be idle", 5, || (1..4).all(smp::idle_cpu));
    assert_eq!(text_hash(), boot, "restored text is byte-identical");
}
