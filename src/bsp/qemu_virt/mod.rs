//! QEMU `virt` (`-M virt`, optionally `virtualization=on`): PL011 at 0x0900_0000, RAM at 1 GiB,
//! PSCI through HVC or SMC, semihosting for the exit code.

use patchbay_pure::layout::Range;

pub const NAME: &str = "qemu_virt";
pub const DESCRIPTION: &str = "QEMU virt";

/// PL011 UART0.
pub const UART_BASE: u64 = 0x0900_0000;
/// UARTCLK QEMU reports in the DTB (the baud divisor is ignored by QEMU anyway).
pub const UART_CLOCK_HZ: u32 = 24_000_000;

/// Device memory: everything below RAM (flash, GIC, UART, RTC, virtio-mmio...).
pub const MMIO: &[Range] = &[Range::new(0, 0x4000_0000)];

/// RAM assumed when no DTB is passed (QEMU's default for `virt` is 128 MiB).
pub const FALLBACK_RAM: Range = Range::new(0x4000_0000, 0x4800_0000);

pub const EXIT: super::ExitMethod = super::ExitMethod::Semihosting;

/// Clock mode when the runner passed no `patchbay.clock=` boot argument: this machine only
/// exists in an emulator, so its counter never counts real cycles.
pub const DEFAULT_CLOCK_MODE: crate::bench::clock::Mode = crate::bench::clock::Mode::Qemu;

crate::common_board_facts!("virt", 0x4008_0000, 62_500_000);

/// Nothing to bring up before the console: QEMU's PL011 needs no pin muxing.
pub fn init_early() {}

/// QEMU always passes a DTB with a memory node; there is no firmware to ask.
///
/// # Safety
/// None needed; `unsafe` only to match the other boards.
pub unsafe fn firmware_ram() -> Option<Range> {
    None
}
