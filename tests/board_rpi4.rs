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
    bench::clock,
    boot_info,
    bsp::{self, ClockMode, ExitMethod},
    kernel_test,
};

patchbay::qemu_directives!(
    "expect_console=on Raspberry Pi 4 (BCM2711, Cortex-A72) -- entered at EL2, running at EL1",
    "expect_console=model \"Raspberry Pi 4 Model B (QEMU raspi4b, DTB by pb)\"",
    "expect_console=patchbay: halted with exit code 0",
);

patchbay::test_kernel_main!();

fn read32(addr: u64) -> u32 {
    // SAFETY: `addr` is a register in the BSP's MMIO ranges, mapped as device memory; reading
    // these registers has no side effects.
    unsafe { (addr as *const u32).read_volatile() }
}

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
fn uart_pins_and_divisor_are_programmed() {
    // GPFSEL1: GPIO 14 (bits 12-14) and 15 (bits 15-17) in alternate function 0 (0b100).
    let fsel1 = read32(bsp::PI.gpio_base + 0x04);
    assert_eq!((fsel1 >> 12) & 0o77, 0o44, "GPFSEL1 {fsel1:#x}");
    // 115200 baud from 48 MHz: divisor 26 + 3/64.
    assert_eq!(read32(bsp::UART_BASE + 0x24), 26, "IBRD");
    assert_eq!(read32(bsp::UART_BASE + 0x28), 3, "FBRD");
}

#[kernel_test]
fn the_dtb_is_the_pi_4s() {
    let info = boot_info::get();
    assert!(info.ram_from_dtb);
    // The first bank: up to the GPU's 64 MiB below 1 GiB.
    assert_eq!((info.ram.start, info.ram.end), (0, 0x3c00_0000));
}

#[kernel_test]
fn the_runner_says_this_is_qemu_so_no_cycles() {
    assert_eq!(boot_info::get().bootarg("patchbay.clock"), Some("qemu"));
    assert!(
        boot_info::get()
            .bootarg("patchbay.emulator")
            .is_some_and(|e| e.starts_with("qemu-"))
    );
    assert_eq!(clock::mode(), ClockMode::Qemu);
    assert_ne!(clock::unit(), "cycles");
}
