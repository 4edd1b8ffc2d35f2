//! Board support: addresses and bring-up that differ between boards, chosen by cargo feature
//! (`make BSP=<board>` passes `--features bsp_<board>`). Callers write `bsp::…`, so a reader
//! always sees where a call crosses into board-specific code.
//!
//! The facts of every board are a table in the `patchbay-board` crate, shared with the
//! chainloader and `pb`; the board module ([`qemu_virt`](board) or one `raspberrypi` module for
//! both Pis) picks its row ([`BOARD`]) and brings the board up. This module names the facts:
//!
//! | item | what |
//! |---|---|
//! | `NAME`, `DESCRIPTION` | `qemu_virt` / `rpi3` / `rpi4`, and a human name |
//! | `UART_BASE`, `UART_CLOCK_HZ` | the PL011 console and its reference clock |
//! | `MMIO` | ranges mapped as device memory |
//! | `FALLBACK_RAM` | RAM when neither the DTB nor the firmware says |
//! | `EXIT` | how a run ends ([`ExitMethod`]) |
//! | `INTC` | the interrupt controller when the DTB names none the kernel can use ([`Intc`]) |
//! | `DEFAULT_CLOCK_MODE` | the clock mode without a `patchbay.clock=` boot argument |
//! | `init_early()` | bring-up that must precede the console (pin muxing), MMU off |
//! | `firmware_ram()` | RAM from the firmware where the DTB has no memory node |
//!
//! The board's facts are also written into the kernel ELF for the host tool (`pb` reads them to
//! pick the QEMU machine, to write `config.txt`, and in tests).
//!
//! Board support imports nothing above arch and drivers.

#[cfg(feature = "bsp_qemu_virt")]
#[path = "bsp/qemu_virt.rs"]
mod board;

#[cfg(any(feature = "bsp_rpi3", feature = "bsp_rpi4"))]
#[path = "bsp/raspberrypi.rs"]
mod board;

pub use board::*;
pub use patchbay_board::{ClockMode, ExitMethod};
use patchbay_pure::layout::Range;

pub const NAME: &str = BOARD.name;
pub const DESCRIPTION: &str = BOARD.description;
/// PL011 UART0.
pub const UART_BASE: u64 = BOARD.uart_base;
pub const UART_CLOCK_HZ: u32 = BOARD.uart_clock_hz;
pub const MMIO: &[Range] = &MMIO_RANGES;
pub const FALLBACK_RAM: Range = Range::new(BOARD.fallback_ram.start, BOARD.fallback_ram.end);
pub const EXIT: ExitMethod = BOARD.exit;
pub const DEFAULT_CLOCK_MODE: ClockMode = BOARD.clock;

/// An interrupt controller and its physical addresses (identity-mapped as device memory, since
/// they lie in the board's MMIO ranges). From the DTB (`boot_info`), else the board's `INTC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intc {
    /// None known.
    None,
    /// GICv2 (`arm,cortex-a15-gic`, `arm,gic-400`): distributor and CPU interface.
    GicV2 { gicd: u64, gicc: u64 },
    /// GICv3 (`arm,gic-v3`): distributor and the first redistributor.
    GicV3 { gicd: u64, gicr: u64 },
    /// The BCM2836 ARM-local interrupt controller (Pi 2/3; QEMU `raspi3b` models it): per-core
    /// timer routing and IRQ source registers, and the core mailboxes.
    Bcm2836 { base: u64 },
}

/// The board's device memory as the kernel's [`Range`]s.
const MMIO_RANGES: [Range; BOARD.mmio.len()] = {
    let mut ranges = [Range::new(0, 0); BOARD.mmio.len()];
    let mut i = 0;
    while i < ranges.len() {
        ranges[i] = Range::new(BOARD.mmio[i].start, BOARD.mmio[i].end);
        i += 1;
    }
    ranges
};

/// This board's facts in the kernel ELF's run-directive section (not loaded), where `pb` reads
/// them next to the run directives (format: `patchbay_wire::facts`).
#[used]
#[unsafe(link_section = ".patchbay.qemu")]
static BOARD_FACTS: [u8; patchbay_wire::facts::len(BOARD)] = patchbay_wire::facts::text(BOARD);
