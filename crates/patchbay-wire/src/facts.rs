//! Board facts: the kernel writes its board's row of the `patchbay-board` table into its ELF
//! (the run-directive section, [`directives::SECTION`](crate::directives::SECTION)) at compile
//! time; `pb` reads them to pick the QEMU machine, to write `config.txt`, and in tests.
//!
//! One `key=value` line per fact, numbers in hex (`0x…`, addresses) or decimal (frequencies),
//! one `board_mmio` line per device-memory range:
//!
//! ```text
//! board=rpi4
//! board_machine=none
//! board_kernel_load=0x80000
//! board_uart_base=0xfe201000
//! board_uart_clock_hz=48000000
//! board_counter_hz=54000000
//! board_exit=halt
//! board_clock=hardware
//! board_mmio=0xfc000000-0x100000000
//! ```

use core::{fmt, ops::Range};

use patchbay_board::{Board, ClockMode, ExitMethod};

/// The keys, all starting with `board`.
pub mod key {
    pub const BOARD: &str = "board";
    pub const MACHINE: &str = "board_machine";
    pub const KERNEL_LOAD: &str = "board_kernel_load";
    pub const UART_BASE: &str = "board_uart_base";
    pub const UART_CLOCK_HZ: &str = "board_uart_clock_hz";
    pub const COUNTER_HZ: &str = "board_counter_hz";
    pub const EXIT: &str = "board_exit";
    pub const CLOCK: &str = "board_clock";
    pub const MMIO: &str = "board_mmio";
}

/// One fact, as written and as parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fact<'a> {
    /// `qemu_virt`, `rpi3`, `rpi4`.
    Board(&'a str),
    /// The QEMU machine; `none` if QEMU has none.
    Machine(&'a str),
    KernelLoad(u64),
    UartBase(u64),
    UartClockHz(u64),
    CounterHz(u64),
    Exit(ExitMethod),
    /// The clock mode without a `patchbay.clock=` boot argument.
    Clock(ClockMode),
    /// One device-memory range `[start, end)`.
    Mmio(Range<u64>),
}

/// How a value is spelled.
enum Value<'a> {
    Str(&'a str),
    Hex(u64),
    Dec(u64),
    Range(u64, u64),
}

impl<'a> Fact<'a> {
    pub const fn key(&self) -> &'static str {
        match self {
            Fact::Board(_) => key::BOARD,
            Fact::Machine(_) => key::MACHINE,
            Fact::KernelLoad(_) => key::KERNEL_LOAD,
            Fact::UartBase(_) => key::UART_BASE,
            Fact::UartClockHz(_) => key::UART_CLOCK_HZ,
            Fact::CounterHz(_) => key::COUNTER_HZ,
            Fact::Exit(_) => key::EXIT,
            Fact::Clock(_) => key::CLOCK,
            Fact::Mmio(_) => key::MMIO,
        }
    }

    const fn value(&self) -> Value<'a> {
        match self {
            Fact::Board(s) | Fact::Machine(s) => Value::Str(s),
            Fact::KernelLoad(v) | Fact::UartBase(v) => Value::Hex(*v),
            Fact::UartClockHz(v) | Fact::CounterHz(v) => Value::Dec(*v),
            Fact::Exit(e) => Value::Str(e.name()),
            Fact::Clock(c) => Value::Str(c.name()),
            Fact::Mmio(r) => Value::Range(r.start, r.end),
        }
    }

    /// The fact `key=value` states; `Ok(None)` if `key` is not a board fact (the section holds
    /// run directives too). Numbers may be hex (`0x…`) or decimal.
    pub fn parse(key: &'a str, value: &'a str) -> Result<Option<Self>, FactError<'a>> {
        let num = || number(value).ok_or(FactError::NotANumber { key, value });
        Ok(Some(match key {
            key::BOARD => Fact::Board(value),
            key::MACHINE => Fact::Machine(value),
            key::KERNEL_LOAD => Fact::KernelLoad(num()?),
            key::UART_BASE => Fact::UartBase(num()?),
            key::UART_CLOCK_HZ => Fact::UartClockHz(num()?),
            key::COUNTER_HZ => Fact::CounterHz(num()?),
            key::EXIT => Fact::Exit(ExitMethod::from_name(value).ok_or(FactError::Exit(value))?),
            key::CLOCK => Fact::Clock(ClockMode::from_name(value).ok_or(FactError::Clock(value))?),
            key::MMIO => {
                let range = value
                    .split_once('-')
                    .and_then(|(a, b)| Some(number(a)?..number(b)?));
                Fact::Mmio(range.ok_or(FactError::NotARange(value))?)
            }
            _ => return Ok(None),
        }))
    }
}

fn number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// A board fact whose value could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FactError<'a> {
    NotANumber {
        key: &'a str,
        value: &'a str,
    },
    /// `board_mmio` is not `START-END`.
    NotARange(&'a str),
    /// `board_exit` names no [`ExitMethod`].
    Exit(&'a str),
    /// `board_clock` names no [`ClockMode`].
    Clock(&'a str),
}

impl fmt::Display for FactError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FactError::NotANumber { key, value } => {
                write!(f, "`{key}`: `{value}` is not a number")
            }
            FactError::NotARange(v) => write!(f, "`{}`: `{v}` is not START-END", key::MMIO),
            FactError::Exit(v) => write!(
                f,
                "`{}`: `{v}` is not an exit method ({} or {})",
                key::EXIT,
                ExitMethod::ALL[0].name(),
                ExitMethod::ALL[1].name()
            ),
            FactError::Clock(v) => write!(
                f,
                "`{}`: `{v}` is not a clock mode ({}, {} or {})",
                key::CLOCK,
                ClockMode::ALL[0].name(),
                ClockMode::ALL[1].name(),
                ClockMode::ALL[2].name()
            ),
        }
    }
}

impl core::error::Error for FactError<'_> {}

/// The board facts in a section's text, in order; lines that are not board facts (run
/// directives, comments, NUL padding) are skipped.
pub fn parse_text(text: &str) -> impl Iterator<Item = Result<Fact<'_>, FactError<'_>>> {
    crate::directives::lines(text)
        .filter_map(|(_, line)| crate::directives::key_value(line))
        .filter_map(|(k, v)| Fact::parse(k, v).transpose())
}

/// Every fact of `board` but its device-memory ranges, which follow them, one line each.
const fn scalar_facts(b: &Board) -> [Fact<'_>; 8] {
    [
        Fact::Board(b.name),
        Fact::Machine(b.machine),
        Fact::KernelLoad(b.kernel_load),
        Fact::UartBase(b.uart_base),
        Fact::UartClockHz(b.uart_clock_hz as u64),
        Fact::CounterHz(b.counter_hz),
        Fact::Exit(b.exit),
        Fact::Clock(b.clock),
    ]
}

/// Every fact of `board`, in the order [`text`] writes them.
pub fn facts(b: &Board) -> impl Iterator<Item = Fact<'_>> {
    scalar_facts(b)
        .into_iter()
        .chain(b.mmio.iter().map(|r| Fact::Mmio(r.clone())))
}

/// The most bytes [`text`] writes (a compile-time error beyond).
pub const MAX_LEN: usize = 1024;

/// Bytes of [`text`] for `board`: the length of the kernel's static.
pub const fn len(board: &Board) -> usize {
    write(&mut [0; MAX_LEN], board)
}

/// The facts of `board` as `key=value` lines, at compile time:
///
/// ```
/// use patchbay_wire::facts;
/// const B: &patchbay_board::Board = &patchbay_board::QEMU_VIRT;
/// static FACTS: [u8; facts::len(B)] = facts::text(B);
/// assert!(FACTS.starts_with(b"board=qemu_virt\nboard_machine=virt\n"));
/// ```
pub const fn text<const N: usize>(board: &Board) -> [u8; N] {
    let mut out = [0; N];
    assert!(write(&mut out, board) == N, "N must be facts::len(board)");
    out
}

/// Writes the lines into `out` and returns their length.
const fn write(out: &mut [u8], b: &Board) -> usize {
    let scalars = scalar_facts(b);
    let mut at = 0;
    let mut i = 0;
    while i < scalars.len() {
        at = write_fact(out, at, &scalars[i]);
        i += 1;
    }
    let mut r = 0;
    while r < b.mmio.len() {
        at = write_fact(out, at, &Fact::Mmio(b.mmio[r].start..b.mmio[r].end));
        r += 1;
    }
    at
}

const fn write_fact(out: &mut [u8], at: usize, fact: &Fact) -> usize {
    let mut at = put(out, at, fact.key().as_bytes());
    at = put(out, at, b"=");
    at = match fact.value() {
        Value::Str(s) => put(out, at, s.as_bytes()),
        Value::Hex(v) => put_hex(out, at, v),
        Value::Dec(v) => put_num(out, at, v, 10),
        Value::Range(start, end) => {
            let at = put_hex(out, at, start);
            let at = put(out, at, b"-");
            put_hex(out, at, end)
        }
    };
    put(out, at, b"\n")
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

const fn put_hex(out: &mut [u8], at: usize, v: u64) -> usize {
    let at = put(out, at, b"0x");
    put_num(out, at, v, 16)
}

/// `v` in `radix` (10 or 16, lower-case digits), without leading zeros.
const fn put_num(out: &mut [u8], at: usize, v: u64, radix: u64) -> usize {
    let mut digits = 1;
    let mut rest = v;
    while rest >= radix {
        rest /= radix;
        digits += 1;
    }
    let mut i = 0;
    rest = v;
    while i < digits {
        let d = (rest % radix) as u8;
        out[at + digits - 1 - i] = if d < 10 { b'0' + d } else { b'a' + d - 10 };
        rest /= radix;
        i += 1;
    }
    at + digits
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_board::{BOARDS, RPI4};

    const RPI4_TEXT: [u8; len(&RPI4.board)] = text(&RPI4.board);

    #[test]
    fn the_text_is_what_pb_has_always_read() {
        assert_eq!(
            core::str::from_utf8(&RPI4_TEXT).unwrap(),
            "board=rpi4\nboard_machine=raspi4b\nboard_kernel_load=0x80000\n\
             board_uart_base=0xfe201000\nboard_uart_clock_hz=48000000\n\
             board_counter_hz=54000000\nboard_exit=halt\nboard_clock=hardware\n\
             board_mmio=0xfc000000-0x100000000\n"
        );
    }

    #[test]
    fn round_trip_every_board() {
        for b in BOARDS {
            let mut buf = [0; MAX_LEN];
            let n = write(&mut buf, b);
            let text = core::str::from_utf8(&buf[..n]).unwrap();
            let parsed: Result<Vec<_>, _> = parse_text(text).collect();
            assert_eq!(parsed.unwrap(), facts(b).collect::<Vec<_>>(), "{}", b.name);
        }
    }

    #[test]
    fn numbers_at_the_edges() {
        let mut buf = [0; 64];
        let n = write_fact(&mut buf, 0, &Fact::Mmio(0..u64::MAX));
        assert_eq!(&buf[..n], b"board_mmio=0x0-0xffffffffffffffff\n");
        let n = write_fact(&mut buf, 0, &Fact::CounterHz(0));
        assert_eq!(&buf[..n], b"board_counter_hz=0\n");
        let text = core::str::from_utf8(&buf[..n]).unwrap();
        assert_eq!(parse_text(text).next(), Some(Ok(Fact::CounterHz(0))));
    }

    #[test]
    fn other_keys_are_not_facts() {
        assert_eq!(Fact::parse("machine", "virt"), Ok(None));
        let text = "timeout=5\0\0board=rpi3\n# board=x\nboard_kernel_load=524288\n";
        let facts: Vec<_> = parse_text(text).collect();
        assert_eq!(
            facts,
            [Ok(Fact::Board("rpi3")), Ok(Fact::KernelLoad(0x80000))]
        );
    }

    #[test]
    fn malformed_values_are_typed_errors() {
        let err = |k, v| Fact::parse(k, v).unwrap_err();
        assert_eq!(
            err(key::UART_BASE, "zz"),
            FactError::NotANumber {
                key: key::UART_BASE,
                value: "zz"
            }
        );
        assert_eq!(
            err(key::KERNEL_LOAD, "0x"),
            FactError::NotANumber {
                key: key::KERNEL_LOAD,
                value: "0x"
            }
        );
        assert_eq!(err(key::MMIO, "0x1"), FactError::NotARange("0x1"));
        assert_eq!(err(key::MMIO, "0x1-zz"), FactError::NotARange("0x1-zz"));
        assert_eq!(err(key::EXIT, "reboot"), FactError::Exit("reboot"));
        assert_eq!(err(key::CLOCK, "cycles"), FactError::Clock("cycles"));
        assert_eq!(
            err(key::CLOCK, "cycles").to_string(),
            "`board_clock`: `cycles` is not a clock mode (qemu-icount, qemu or hardware)"
        );
        assert_eq!(
            err(key::UART_BASE, "x").to_string(),
            "`board_uart_base`: `x` is not a number"
        );
    }
}
