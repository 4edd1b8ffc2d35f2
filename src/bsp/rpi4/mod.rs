//! Raspberry Pi 4 Model B / Pi 400 / CM4 (BCM2711, 4x Cortex-A72) in low-peripheral mode,
//! booted by the VideoCore firmware from `kernel8.img` at 0x80000, entered at EL2 (EL3 if no
//! armstub drops it, see boot/start.s), DTB in x0. QEMU 7.2 has no machine for it.
//!
//! The console is the PL011 on GPIO 14/15 (alternate function 0), with a fixed 48 MHz UART
//! clock (config.txt `init_uart_clock=48000000`). There is no PSCI and no semihosting on the
//! board: a run ends with a final line and a halt.

use patchbay_pure::layout::Range;

#[path = "map.rs"]
pub mod map;

use crate::drivers::{gpio, mailbox};

pub const NAME: &str = map::NAME;
pub const DESCRIPTION: &str = "Raspberry Pi 4 (BCM2711, Cortex-A72)";

/// PL011 UART0.
pub const UART_BASE: u64 = map::UART_BASE;
pub const UART_CLOCK_HZ: u32 = map::UART_CLOCK_HZ;

/// Device memory: the low-peripheral window (SoC peripherals, ARM-local block, GIC-400) up to
/// 4 GiB. The kernel's 39-bit VA space covers it.
pub const MMIO: &[Range] = &[Range::new(map::MMIO_BASE, map::MMIO_END)];

/// RAM assumed when neither the DTB nor the mailbox says.
pub const FALLBACK_RAM: Range = Range::new(0, map::FALLBACK_RAM_END);

/// No semihosting on the board: a clear final line, then a halt.
pub const EXIT: super::ExitMethod = super::ExitMethod::Halt;

/// Without a `patchbay.clock=` boot argument this is the real board: PMCCNTR counts cycles.
pub const DEFAULT_CLOCK_MODE: crate::bench::clock::Mode = crate::bench::clock::Mode::Hardware;

crate::common_board_facts!("none", map::KERNEL_LOAD, map::COUNTER_HZ);

/// Route GPIO 14/15 to the PL011 before the console programs it.
pub fn init_early() {
    // SAFETY: the BCM2711 GPIO block, MMU off, boot CPU only.
    let gpio = unsafe { gpio::Gpio::new(map::GPIO_BASE, gpio::PullScheme::Direct) };
    gpio.route_uart0();
}

/// The ARM's RAM from the firmware's mailbox (used when the DTB has no memory node).
///
/// # Safety
/// Boot CPU, MMU off.
pub unsafe fn firmware_ram() -> Option<Range> {
    // SAFETY: the mailbox of this SoC; the caller guarantees boot CPU with the MMU off.
    let (base, size) = unsafe { mailbox::Mailbox::new(map::MAILBOX_BASE).arm_memory() }?;
    Some(Range::new(base, base + size))
}
