//! QEMU `virt` ([`patchbay_board::QEMU_VIRT`]): no bring-up before the console, no firmware.

use patchbay_board::Board;
use patchbay_pure::layout::Range;

pub const BOARD: &Board = &patchbay_board::QEMU_VIRT;

/// QEMU always describes its GIC in the DTB.
pub const INTC: super::Intc = super::Intc::None;

/// Nothing to bring up before the console: QEMU's PL011 needs no pin muxing.
pub fn init_early() {}

/// QEMU always passes a DTB with a memory node; there is no firmware to ask.
///
/// # Safety
/// None needed; `unsafe` only to match the other boards.
pub unsafe fn firmware_ram() -> Option<Range> {
    None
}
