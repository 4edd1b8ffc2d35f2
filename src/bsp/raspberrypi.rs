//! The Raspberry Pi 3 and 4, one module parameterised by the board the cargo feature selects
//! ([`patchbay_board::RPI3`] for `bsp_rpi3`, [`patchbay_board::RPI4`] for `bsp_rpi4`).
//!
//! Before the console: GPIO 14/15 are handed to the PL011. Where the DTB has no memory node, the
//! firmware's mailbox says how much RAM the ARM has.

use patchbay_board::{Board, RaspberryPi};
use patchbay_pure::layout::Range;

use crate::drivers::{gpio, mailbox};

#[cfg(feature = "bsp_rpi3")]
pub const PI: &RaspberryPi = &patchbay_board::RPI3;
#[cfg(feature = "bsp_rpi4")]
pub const PI: &RaspberryPi = &patchbay_board::RPI4;

pub const BOARD: &Board = &PI.board;

/// The Pi 3's BCM2836-style ARM-local block at 0x4000_0000 (QA7), which no DTB describes in a
/// form the kernel reads.
#[cfg(feature = "bsp_rpi3")]
pub const INTC: super::Intc = super::Intc::Bcm2836 { base: 0x4000_0000 };
/// The Pi 4's GIC-400 at 0xff84_1000 (distributor) / 0xff84_2000 (CPU interface): its DTB node
/// sits under /soc with bus addresses (0x4004_1000), which the kernel does not translate.
#[cfg(feature = "bsp_rpi4")]
pub const INTC: super::Intc = super::Intc::GicV2 {
    gicd: 0xff84_1000,
    gicc: 0xff84_2000,
};

/// Route GPIO 14/15 to the PL011 before the console programs it.
pub fn init_early() {
    // SAFETY: this SoC's GPIO block, MMU off, boot CPU only.
    let gpio = unsafe { gpio::Gpio::new(PI.gpio_base, PI.pulls) };
    gpio.route_uart0();
}

/// The ARM's RAM from the firmware's mailbox (used when the DTB has no memory node).
///
/// # Safety
/// Boot CPU, MMU off.
pub unsafe fn firmware_ram() -> Option<Range> {
    // SAFETY: the mailbox of this SoC; the caller guarantees boot CPU with the MMU off.
    let (base, size) = unsafe { mailbox::Mailbox::new(PI.mailbox_base).arm_memory() }?;
    Some(Range::new(base, base + size))
}
