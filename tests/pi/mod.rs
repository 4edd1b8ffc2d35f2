//! What the Raspberry Pi 3 and 4 board tests share (`tests/board_rpi3.rs`, `tests/board_rpi4.rs`,
//! each `mod pi;`): the UART the BSP programmed, and the clock mode `pb run` passed.

use patchbay::{bench::clock, boot_info, bsp, bsp::ClockMode, kernel_test};

/// A 32-bit device register.
pub fn read32(addr: u64) -> u32 {
    // SAFETY: `addr` is a register in the BSP's MMIO ranges, mapped as device memory; reading
    // these registers has no side effects.
    unsafe { (addr as *const u32).read_volatile() }
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
fn the_runner_says_this_is_qemu_so_no_cycles() {
    // pb run passes patchbay.clock=qemu and names the emulator: the board's default (hardware)
    // must not apply.
    let info = boot_info::get();
    assert_eq!(info.bootarg("patchbay.clock"), Some("qemu"));
    assert!(
        info.bootarg("patchbay.emulator")
            .is_some_and(|e| e.starts_with("qemu-"))
    );
    assert_eq!(clock::mode(), ClockMode::Qemu);
    assert_ne!(clock::unit(), "cycles");
}
