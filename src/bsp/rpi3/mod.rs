//! Raspberry Pi 3 Model B/B+ (BCM2837, 4x Cortex-A53), booted by the VideoCore firmware from
//! `kernel8.img` at 0x80000, entered at EL2 (EL3 if no armstub drops it, see boot/start.s), DTB
//! in x0. Also QEMU `-M raspi3b` (with a DTB from `pb run`).
//!
//! The console is the PL011 on GPIO 14/15 (alternate function 0), with a fixed 48 MHz UART
//! clock (config.txt `init_uart_clock=48000000`). There is no PSCI and no semihosting on the
//! board: a run ends with a final line and a halt.

use patchbay_pure::layout::Range;

#[path = "map.rs"]
pub mod map;

use crate::drivers::{gpio, mailbox};

pub const NAME: &str = map::NAME;
pub const DESCRIPTION: &str = "Raspberry Pi 3 (BCM2837, Cortex-A53)";

/// PL011 UART0.
pub const UART_BASE: u64 = map::UART_BASE;
pub const UART_CLOCK_HZ: u32 = map::UART_CLOCK_HZ;

/// Device memory: the SoC peripherals and the ARM-local block.
pub const MMIO: &[Range] = &[
    Range::new(map::PERIPHERAL_BASE, map::PERIPHERAL_END),
    Range::new(map::LOCAL_BASE, map::LOCAL_END),
];

/// RAM assumed when neither the DTB nor the mailbox says.
pub const FALLBACK_RAM: Range = Range::new(0, map::FALLBACK_RAM_END);

/// No semihosting on the board: a clear final line, then a halt.
pub const EXIT: super::ExitMethod = super::ExitMethod::Halt;

/// Without a `patchbay.clock=` boot argument this is the real board: PMCCNTR counts cycles.
pub const DEFAULT_CLOCK_MODE: crate::bench::clock::Mode = crate::bench::clock::Mode::Hardware;

crate::common_board_facts!("raspi3b", map::KERNEL_LOAD, map::COUNTER_HZ);

/// Route GPIO 14/15 to the PL011 before the console programs it.
pub fn init_early() {
    // SAFETY: the BCM2837 GPIO block, MMU off, boot CPU only.
    let gpio = unsafe { gpio::Gpio::new(map::GPIO_BASE, gpio::PullScheme::Clocked) };
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
