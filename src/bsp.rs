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

/// One `key=value` line of the board facts.
pub enum Fact {
    Str(&'static str, &'static str),
    Hex(&'static str, u64),
    Dec(&'static str, u64),
    /// One `key=0xSTART-0xEND` line per range.
    Ranges(&'static str, &'static [patchbay_pure::layout::Range]),
}

const fn digits(mut v: u64, radix: u64) -> usize {
    let mut n = 1;
    while v >= radix {
        v /= radix;
        n += 1;
    }
    n
}

const fn fact_len(f: &Fact) -> usize {
    match f {
        Fact::Str(k, v) => k.len() + 1 + v.len() + 1,
        Fact::Hex(k, v) => k.len() + 3 + digits(*v, 16) + 1,
        Fact::Dec(k, v) => k.len() + 1 + digits(*v, 10) + 1,
        Fact::Ranges(k, rs) => {
            let mut n = 0;
            let mut i = 0;
            while i < rs.len() {
                n += k.len() + 3 + digits(rs[i].start, 16) + 3 + digits(rs[i].end, 16) + 1;
                i += 1;
            }
            n
        }
    }
}

/// Bytes of the text [`facts_text`] writes.
pub const fn facts_len(facts: &[Fact]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < facts.len() {
        n += fact_len(&facts[i]);
        i += 1;
    }
    n
}

const fn put(out: &mut [u8], mut at: usize, s: &[u8]) -> usize {
    let mut i = 0;
    while i < s.len() {
        out[at] = s[i];
        at += 1;
        i += 1;
    }
    at
}

const fn put_num(out: &mut [u8], at: usize, v: u64, radix: u64) -> usize {
    let n = digits(v, radix);
    let mut i = 0;
    let mut rest = v;
    while i < n {
        let d = (rest % radix) as u8;
        out[at + n - 1 - i] = if d < 10 { b'0' + d } else { b'a' + d - 10 };
        rest /= radix;
        i += 1;
    }
    at + n
}

/// The facts as `key=value` lines, built at compile time from the board's constants.
pub const fn facts_text<const N: usize>(facts: &[Fact]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    let mut i = 0;
    while i < facts.len() {
        match &facts[i] {
            Fact::Str(k, v) => {
                at = put(&mut out, at, k.as_bytes());
                at = put(&mut out, at, b"=");
                at = put(&mut out, at, v.as_bytes());
            }
            Fact::Hex(k, v) => {
                at = put(&mut out, at, k.as_bytes());
                at = put(&mut out, at, b"=0x");
                at = put_num(&mut out, at, *v, 16);
            }
            Fact::Dec(k, v) => {
                at = put(&mut out, at, k.as_bytes());
                at = put(&mut out, at, b"=");
                at = put_num(&mut out, at, *v, 10);
            }
            Fact::Ranges(k, rs) => {
                let mut r = 0;
                while r < rs.len() {
                    at = put(&mut out, at, k.as_bytes());
                    at = put(&mut out, at, b"=0x");
                    at = put_num(&mut out, at, rs[r].start, 16);
                    at = put(&mut out, at, b"-0x");
                    at = put_num(&mut out, at, rs[r].end, 16);
                    r += 1;
                    if r < rs.len() {
                        at = put(&mut out, at, b"\n");
                    }
                }
                if rs.is_empty() {
                    i += 1;
                    continue;
                }
            }
        }
        at = put(&mut out, at, b"\n");
        i += 1;
    }
    out
}

/// Write this board's facts into the kernel ELF's `.patchbay.qemu` section (not loaded), where
/// `pb` reads them next to the run directives: `board=NAME` and `board_*` keys.
#[macro_export]
macro_rules! board_facts {
    ($($fact:expr),* $(,)?) => {
        const __PATCHBAY_BOARD_FACTS: &[$crate::bsp::Fact] = &[$($fact),*];
        #[used]
        #[unsafe(link_section = ".patchbay.qemu")]
        static __PATCHBAY_BOARD: [u8; $crate::bsp::facts_len(__PATCHBAY_BOARD_FACTS)] =
            $crate::bsp::facts_text(__PATCHBAY_BOARD_FACTS);
    };
}

crate::board_facts!(
    Fact::Str("board", NAME),
    Fact::Str("board_machine", BOARD.machine),
    Fact::Hex("board_kernel_load", BOARD.kernel_load),
    Fact::Hex("board_uart_base", UART_BASE),
    Fact::Dec("board_uart_clock_hz", UART_CLOCK_HZ as u64),
    Fact::Dec("board_counter_hz", BOARD.counter_hz),
    Fact::Str("board_exit", EXIT.name()),
    Fact::Str("board_clock", DEFAULT_CLOCK_MODE.name()),
    Fact::Ranges("board_mmio", MMIO),
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel_test;

    #[kernel_test]
    fn board_facts_text_is_built_at_compile_time() {
        const F: &[Fact] = &[
            Fact::Str("board", "x"),
            Fact::Hex("a", 0x3f20_1000),
            Fact::Dec("b", 0),
            Fact::Hex("c", 0),
            Fact::Ranges(
                "m",
                &[
                    patchbay_pure::layout::Range::new(0xfc00_0000, 0x1_0000_0000),
                    patchbay_pure::layout::Range::new(0, 0x10),
                ],
            ),
            Fact::Ranges("none", &[]),
        ];
        const T: [u8; facts_len(F)] = facts_text(F);
        assert_eq!(
            &T,
            b"board=x\na=0x3f201000\nb=0\nc=0x0\nm=0xfc000000-0x100000000\nm=0x0-0x10\n"
        );
    }
}
