//! The Raspberry Pi 3 board support, booted under QEMU `raspi3b` the way the firmware boots a
//! Pi 3: raw `kernel8.img` at 0x80000, entered at EL2, DTB in x0 (written by `pb run`). Checks
//! the BSP's constants, the UART pins and divisor it programmed, and the board's exit (a final
//! line and a halt, which `pb run` turns into the exit code).
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

use patchbay::{
    bsp::{self, ClockMode, ExitMethod},
    kernel_test,
};

patchbay::qemu_directives!(
    "expect_console=on Raspberry Pi 3 (BCM2837, Cortex-A53) -- entered at EL2, running at EL1",
    "expect_console=patchbay: halted with exit code 0",
    "reject_console=semihosting",
);

mod pi;

patchbay::test_kernel_main!();

#[kernel_test]
fn bsp_constants_are_the_bcm2837s() {
    assert_eq!(bsp::NAME, "rpi3");
    assert_eq!(bsp::UART_BASE, 0x3F20_1000);
    assert_eq!(bsp::UART_CLOCK_HZ, 48_000_000);
    assert!(
        bsp::MMIO
            .iter()
            .any(|m| m.contains(0x3F00_0000) && m.contains(0x3FFF_FFFF))
    );
    assert!(
        bsp::MMIO.iter().any(|m| m.contains(0x4000_0000)),
        "ARM-local block"
    );
    assert_eq!(bsp::EXIT, ExitMethod::Halt);
    assert_eq!(bsp::DEFAULT_CLOCK_MODE, ClockMode::Hardware);
    assert_eq!(bsp::BOARD.kernel_load, 0x8_0000);
}
