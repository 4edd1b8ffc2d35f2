//! The console: `print!`/`println!`, the `log` backend, and a lock-free path for crash reports.
//!
//! Output goes to the board's PL011. Normal output takes a spin lock so lines from different CPUs
//! do not interleave; the crash reporter uses [`emergency`], which ignores the lock (the fault
//! may have happened while it was held) and must only be used on the way to ending the run.

use core::fmt::{self, Write};

use crate::{bsp, drivers::pl011::Pl011};

// SAFETY: the BSP names the board's PL011, which the memory map maps as device memory; all
// normal writers serialise through `LOCK`.
static UART: Pl011 = unsafe { Pl011::new(bsp::UART_BASE) };
static LOCK: spin::Mutex<()> = spin::Mutex::new(());

struct Writer;

impl Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        UART.write_str(s);
        Ok(())
    }
}

/// Program the UART (baud rate etc.). QEMU's PL011 works without it; boards need it.
pub fn init() {
    UART.init(bsp::UART_CLOCK_HZ, 115_200);
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    let _g = LOCK.lock();
    let _ = Writer.write_fmt(args);
}

/// The next byte the UART received, if any (the serial console's input; polled).
pub fn try_read_byte() -> Option<u8> {
    UART.try_read_byte()
}

/// A writer that bypasses the console lock. Only for the crash path.
pub fn emergency() -> impl Write {
    Writer
}

/// Wait until all output has left the UART (before powering off).
pub fn flush() {
    UART.flush();
}

/// Print to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::console::_print(format_args!($($arg)*)));
}

/// Print to the console, with a newline.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::console::_print(format_args!("{}\n", format_args!($($arg)*))));
}

/// The `log` backend: `[    0.001234] I message`, timestamp from the generic timer.
struct Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, r: &log::Record) {
        let ticks = crate::arch::pmu::cntvct();
        let hz = crate::arch::pmu::counter_frequency().max(1);
        let us = ticks % hz * 1_000_000 / hz;
        let level = match r.level() {
            log::Level::Error => "E",
            log::Level::Warn => "W",
            log::Level::Info => "I",
            log::Level::Debug => "D",
            log::Level::Trace => "T",
        };
        _print(format_args!(
            "[{:5}.{:06}] {} {}\n",
            ticks / hz,
            us,
            level,
            r.args()
        ));
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Install the `log` backend.
pub fn init_logger() {
    // Ignoring the error is fine: it only says a logger was already installed (a second init).
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}
