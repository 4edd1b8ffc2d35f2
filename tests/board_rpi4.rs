//! The Raspberry Pi 4 board support, booted under QEMU `raspi4b` (QEMU >= 9.0) the way the
//! firmware boots a Pi 4: raw `kernel8.img` at 0x80000, entered at EL2, DTB in x0 (written by
//! `pb run`, with the Pi 4's two memory banks and its GIC-400). Checks the BSP's constants, the
//! UART pins and divisor it programmed, the clock mode, and the board's exit (the final line,
//! after which the run under QEMU ends through semihosting instead of halting).
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

use patchbay::{
    boot_info,
    bsp::{self, ClockMode, ExitMethod},
    kernel_test,
};

patchbay::qemu_directives!(
    "expect_console=on Raspberry Pi 4 (BCM2711, Cortex-A72) -- entered at EL2, running at EL1",
    "expect_console=model \"Raspberry Pi 4 Model B (QEMU raspi4b, DTB by pb)\"",
    "expect_console=patchbay: halted with exit code 0",
);

mod pi;

patchbay::test_kernel_main!();

#[kernel_test]
fn bsp_constants_are_the_bcm2711s() {
    assert_eq!(bsp::NAME, "rpi4");
    assert_eq!(bsp::UART_BASE, 0xFE20_1000);
    assert_eq!(bsp::UART_CLOCK_HZ, 48_000_000);
    assert!(
        bsp::MMIO
            .iter()
            .any(|m| m.contains(0xFE00_0000) && m.contains(0xFF84_1000))
    );
    assert_eq!(bsp::EXIT, ExitMethod::Halt);
    assert_eq!(bsp::DEFAULT_CLOCK_MODE, ClockMode::Hardware);
    assert_eq!(bsp::BOARD.kernel_load, 0x8_0000);
    assert_eq!(bsp::BOARD.machine, "raspi4b");
}

#[kernel_test]
fn the_dtb_is_the_pi_4s() {
    let info = boot_info::get();
    assert!(info.ram_from_dtb);
    // The first bank: up to the GPU's 64 MiB below 1 GiB.
    assert_eq!((info.ram.start, info.ram.end), (0, 0x3c00_0000));
}
