//! A Raspberry Pi 3 whose firmware leaves the kernel at EL3 with no DTB (no armstub, e.g.
//! `kernel_old=1` or a custom one): QEMU `raspi3b` starts the raw image at 0x80000 at EL3
//! (`boot=el3`). boot/start.s must drop to EL2 and on to EL1, and the RAM size must come from
//! the firmware's mailbox since there is no DTB.
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

use patchbay::{arch, bench::clock, boot_info, bsp::ClockMode, kernel_test};

patchbay::qemu_directives!(
    "boot=el3",
    "expect_console=entered at EL3, running at EL1",
    "expect_console=patchbay: halted with exit code 0",
);

patchbay::test_kernel_main!();

#[kernel_test]
fn entered_at_el3_runs_at_el1() {
    assert_eq!(boot_info::get().entry_el, 3);
    assert_eq!(arch::cpu::current_el(), 1);
    // The PMU and the counters do not trap after two drops (FP/SIMD does, by design: the kernel
    // is general-registers-only; tests/fault_fp).
    assert_eq!(clock::source(), clock::Source::Pmccntr);
    assert!(arch::pmu::counter_frequency() > 0);
}

#[kernel_test]
fn ram_comes_from_the_mailbox_without_a_dtb() {
    let info = boot_info::get();
    assert!(info.dtb_problem.is_some());
    assert!(!info.ram_from_dtb);
    // QEMU's firmware mailbox: 1 GiB minus 64 MiB for the GPU (the BSP's fallback would end
    // at 0x3b40_0000).
    assert_eq!((info.ram.start, info.ram.end), (0, 0x3c00_0000));
}

#[kernel_test]
fn without_boot_arguments_the_board_default_clock_applies() {
    // Nothing can pass boot arguments here, so this run shows the board's default: hardware.
    assert_eq!(clock::mode(), ClockMode::Hardware);
    assert_eq!(clock::unit(), "cycles");
}
