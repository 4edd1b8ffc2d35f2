// The body of the cross-CPU call tests (tests/ipi.rs, tests/ipi_gicv3.rs).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use patchbay::{
    arch,
    ipi::{self, CpuSet, IpiError, Wait},
    kernel_test, percpu,
};

patchbay::test_kernel_main!();

static RAN: [AtomicU64; percpu::MAX_CPUS] = [const { AtomicU64::new(0) }; percpu::MAX_CPUS];

/// Adds `arg` to the running CPU's counter, and checks it runs in interrupt context.
fn count(arg: u64) {
    let cpu = percpu::this();
    assert_eq!(cpu.irq_depth.load(Ordering::Relaxed), 1);
    RAN[cpu.id as usize].fetch_add(arg, Ordering::Relaxed);
}

fn snapshot() -> [u64; 4] {
    core::array::from_fn(|c| RAN[c].load(Ordering::Relaxed))
}

#[kernel_test]
fn one_several_and_all_run_exactly_where_asked() {
    let before = snapshot();
    ipi::call(CpuSet::one(2), count, 1, Wait::Done).unwrap();
    ipi::call(CpuSet(0b1010), count, 10, Wait::Done).unwrap();
    ipi::call(CpuSet::others(), count, 100, Wait::Done).unwrap();
    let after = snapshot();
    let delta: [u64; 4] = core::array::from_fn(|c| after[c] - before[c]);
    assert_eq!(delta, [0, 110, 101, 110]);
}

#[kernel_test]
fn posted_calls_run_soon_after() {
    let before = snapshot();
    for _ in 0..20 {
        ipi::call(CpuSet::others(), count, 1, Wait::Posted).unwrap();
    }
    // A later waited call to the same CPUs completes only after the posted ones.
    ipi::call(CpuSet::others(), count, 0, Wait::Done).unwrap();
    let after = snapshot();
    for c in 1..4 {
        assert_eq!(after[c] - before[c], 20, "CPU {c}");
    }
}

static HOLD: AtomicBool = AtomicBool::new(false);

/// Keeps its CPU in interrupt context, IRQs masked, until HOLD is cleared.
fn hold(_: u64) {
    while HOLD.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
}

#[kernel_test]
fn a_cpu_that_does_not_answer_is_a_typed_timeout() {
    HOLD.store(true, Ordering::Release);
    ipi::call(CpuSet::one(3), hold, 0, Wait::Posted).unwrap();
    let t0 = arch::pmu::cntvct();
    assert_eq!(
        ipi::call(CpuSet::one(3), count, 1, Wait::Done),
        Err(IpiError::Timeout { cpu: 3 })
    );
    let waited_ms = (arch::pmu::cntvct() - t0) * 1000 / arch::pmu::counter_frequency();
    assert!(waited_ms >= ipi::TIMEOUT_MS, "gave up after {waited_ms} ms");
    // The others still answer meanwhile.
    ipi::call(CpuSet(0b0110), count, 0, Wait::Done).unwrap();
    HOLD.store(false, Ordering::Release);
    ipi::call(CpuSet::one(3), count, 0, Wait::Done).unwrap();
}

#[kernel_test]
fn bad_targets_and_contexts_are_refused() {
    assert_eq!(
        ipi::call(CpuSet::one(0), count, 1, Wait::Done),
        Err(IpiError::NotATarget { cpu: 0 })
    );
    assert_eq!(
        ipi::call(CpuSet::one(5), count, 1, Wait::Done),
        Err(IpiError::NotATarget { cpu: 5 })
    );
    let daif = arch::cpu::mask_all();
    let r = ipi::call(CpuSet::one(1), count, 1, Wait::Done);
    arch::cpu::restore_daif(daif);
    assert_eq!(r, Err(IpiError::WrongContext));
}
