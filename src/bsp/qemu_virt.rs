//! QEMU `virt` ([`patchbay_board::QEMU_VIRT`]): no bring-up before the console, no firmware.

use patchbay_board::Board;
use patchbay_pure::layout::Range;

pub const BOARD: &Board = &patchbay_board::QEMU_VIRT;

/// The hardened build runs on a CPU with BTI and pointer authentication: QEMU's `max`, with the
/// implementation-defined signing algorithm (cheap to emulate; the architected QARMA5 costs
/// host time, not guest instructions). A run directive (`pb run` reads it), so every hardened
/// kernel and test binary boots there without being told.
#[cfg(feature = "harden")]
#[used]
#[unsafe(link_section = ".patchbay.qemu")]
static HARDEN_CPU: [u8; 24] = *b"cpu=max,pauth-impdef=on\n";

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
