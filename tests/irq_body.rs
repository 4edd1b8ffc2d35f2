// The body of the interrupt tests (tests/irq.rs: GICv2 or the Pi 3's BCM2836 local controller;
// tests/irq_gicv3.rs): every online CPU takes its own timer ticks, and a hook called from the
// timer interrupt runs on every CPU in interrupt context.

use core::sync::atomic::{AtomicU64, Ordering};

use patchbay::{arch, irq, kernel_test, percpu};

patchbay::test_kernel_main!();

const CPUS: usize = 4;

/// Spin until `done()` or `ms` milliseconds of the generic counter have passed.
fn wait_for(ms: u64, done: impl Fn() -> bool) -> bool {
    let start = arch::pmu::cntvct();
    let limit = arch::pmu::counter_frequency() * ms / 1000;
    while !done() {
        if arch::pmu::cntvct() - start > limit {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

#[kernel_test]
fn every_cpu_takes_its_own_ticks() {
    assert_eq!(irq::tick_hz(), 1000);
    assert_eq!(percpu::online() as usize, CPUS);
    let start: [u64; CPUS] =
        core::array::from_fn(|c| percpu::CPUS[c].ticks.load(Ordering::Relaxed));
    let ticked = wait_for(5000, || {
        (0..CPUS).all(|c| percpu::CPUS[c].ticks.load(Ordering::Relaxed) >= start[c] + 5)
    });
    for (c, first) in start.iter().enumerate() {
        let t = percpu::CPUS[c].ticks.load(Ordering::Relaxed);
        assert!(ticked, "CPU {c}: {} ticks in 5 s", t - first);
        assert!(percpu::CPUS[c].irqs.load(Ordering::Relaxed) >= t);
        // Interrupt context is left on every exit: no CPU is inside a handler when not ticking.
        assert!(percpu::CPUS[c].irq_depth.load(Ordering::Relaxed) <= 1);
    }
    assert_eq!(percpu::this().irq_depth.load(Ordering::Relaxed), 0);
}

static HOOK_CALLS: [AtomicU64; percpu::MAX_CPUS] = [const { AtomicU64::new(0) }; percpu::MAX_CPUS];
static HOOK_DEPTH_WRONG: AtomicU64 = AtomicU64::new(0);

fn hook() {
    let cpu = percpu::this();
    if cpu.irq_depth.load(Ordering::Relaxed) != 1 {
        HOOK_DEPTH_WRONG.fetch_add(1, Ordering::Relaxed);
    }
    HOOK_CALLS[cpu.id as usize].fetch_add(1, Ordering::Relaxed);
}

#[kernel_test]
fn the_tick_hook_runs_on_every_cpu_in_interrupt_context() {
    irq::set_tick_hook(Some(hook));
    let ran = wait_for(5000, || {
        HOOK_CALLS[..CPUS]
            .iter()
            .all(|c| c.load(Ordering::Relaxed) >= 3)
    });
    irq::set_tick_hook(None);
    let calls: [u64; CPUS] = core::array::from_fn(|c| HOOK_CALLS[c].load(Ordering::Relaxed));
    assert!(ran, "hook calls per CPU: {calls:?}");
    assert_eq!(HOOK_DEPTH_WRONG.load(Ordering::Relaxed), 0);
    for c in HOOK_CALLS[CPUS..].iter() {
        assert_eq!(c.load(Ordering::Relaxed), 0, "an offline CPU ticked");
    }
}
