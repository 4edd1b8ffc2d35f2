//! Entered at EL2 (`-M virt,virtualization=on`, like the Raspberry Pi firmware): boot.s drops to
//! EL1 without leaving traps behind for FP/SIMD, the PMU or the counters; the secondary CPU,
//! started by PSCI through SMC, enters at EL2 too and drops to EL1 the same way.
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

use patchbay::{arch, bench::clock, boot_info, kernel_test};

patchbay::qemu_directives!(
    "machine=virt,virtualization=on",
    "smp=2",
    "expect_console=entered at EL2, running at EL1",
    "expect_console=cpus: 2 of 2 online: 0 (MPIDR 0x80000000) 1 (MPIDR 0x80000001)",
);

patchbay::test_kernel_main!();

#[kernel_test]
fn entered_at_el2_runs_at_el1() {
    assert_eq!(boot_info::get().entry_el, 2);
    assert_eq!(arch::cpu::current_el(), 1);
}

#[kernel_test]
fn psci_conduit_is_smc_when_el2_exists() {
    // QEMU's DTB says "smc" when the guest owns EL2: SYSTEM_OFF must use it to power off.
    assert_eq!(arch::psci::conduit(), arch::psci::Conduit::Smc);
}

#[kernel_test]
fn fp_simd_pmu_and_counters_do_not_trap() {
    let x = core::hint::black_box(1.5f64) * core::hint::black_box(2.0f64);
    assert_eq!(x, 3.0);
    assert_eq!(clock::source(), clock::Source::Pmccntr);
    let a = clock::now();
    let b = clock::now();
    assert!(b > a);
    let t0 = arch::pmu::cntvct();
    while arch::pmu::cntvct() == t0 {}
    assert!(arch::pmu::counter_frequency() > 0);
}
