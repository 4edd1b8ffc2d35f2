//! The patchbay chainloader: flash it once as `kernel8.img`; afterwards `pb chainload` (`make
//! chainboot`) pushes each new kernel over the UART, the loader checks its size and CRC32 and
//! jumps to it. Protocol: the library half of this crate (`src/lib.rs`).
//!
//! One image serves both boards: the CPU says which SoC this is (Cortex-A53: BCM2837 on the Pi 3;
//! Cortex-A72: BCM2711 on the Pi 4), and the addresses and drivers come from the
//! `patchbay-board` crate the kernel's BSP uses too, so the loader and the kernel never disagree.
//!
//! On the host this binary is a stub: the loader is built with `--target aarch64-unknown-none-softfloat`.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "the chainloader runs on a Raspberry Pi: build it with `make chainloader` \
         (--target aarch64-unknown-none-softfloat)"
    );
    std::process::exit(2);
}

#[cfg(target_os = "none")]
mod loader {
    use core::fmt::Write;

    use patchbay_board::{
        Board, RaspberryPi,
        drivers::{gpio, pl011},
    };
    use patchbay_chainloader::{
        CONSOLE_BAUD, Memory, Message, PAGE_ACK, Receiver, Refusal, Step, VERSION, baud_divisor,
    };

    core::arch::global_asm!(include_str!("boot.s"));

    unsafe extern "C" {
        static __loader_start: u8;
    }

    /// The Pi we run on, from the CPU's MIDR_EL1 part number.
    fn board() -> Option<&'static RaspberryPi> {
        let midr: u64;
        // SAFETY: reading MIDR_EL1 has no side effects.
        unsafe { core::arch::asm!("mrs {}, midr_el1", out(reg) midr, options(nomem, nostack)) };
        RaspberryPi::by_cpu_part(((midr >> 4) & 0xfff) as u16)
    }

    struct Uart(pl011::Pl011);

    impl Write for Uart {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            self.0.write_str(s);
            Ok(())
        }
    }

    impl Uart {
        fn say(&mut self, m: Message<'_>) {
            let _ = writeln!(self, "{m}");
            self.0.flush();
        }

        /// Reprogram the UART for `baud` (divisor checked by the caller).
        fn set_baud(&mut self, clock: u32, baud: u32) {
            self.0.init(clock, baud);
        }
    }

    /// The generic timer: ticks and their frequency.
    fn ticks() -> u64 {
        let t: u64;
        // SAFETY: reading the physical counter is allowed at EL2/EL3 and has no side effects.
        unsafe {
            core::arch::asm!("isb", "mrs {}, cntpct_el0", out(reg) t, options(nomem, nostack))
        };
        t
    }

    fn frequency(fallback: u64) -> u64 {
        let f: u64;
        // SAFETY: as above.
        unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) f, options(nomem, nostack)) };
        if f == 0 { fallback } else { f }
    }

    /// The kernel's destination: offsets from the load address.
    struct LoadArea(u64);

    impl Memory for LoadArea {
        fn write(&mut self, offset: u32, byte: u8) {
            // SAFETY: the receiver only passes offsets below the accepted image length, which
            // was checked against the room below the loader and the DTB; the MMU is off.
            unsafe { ((self.0 + u64::from(offset)) as *mut u8).write_volatile(byte) };
        }

        fn zero(&mut self, offset: u32, len: u32) {
            for i in 0..len {
                self.write(offset + i, 0);
            }
        }
    }

    /// Where the DTB is, if x0 points at one: (address, size).
    fn dtb_range(dtb: u64) -> Option<(u64, u64)> {
        if dtb == 0 || !dtb.is_multiple_of(8) {
            return None;
        }
        let word = |at: u64| {
            // SAFETY: `dtb` is what the firmware passed in x0: RAM, MMU off; reading the
            // header words is harmless even if it is not a DTB.
            u32::from_be(unsafe { ((dtb + at) as *const u32).read_volatile() })
        };
        (word(0) == 0xd00d_feed).then(|| (dtb, u64::from(word(4))))
    }

    /// Jump to the kernel at `load` as the firmware would: x0 = DTB, x1-x3 = 0, MMU off.
    fn boot(load: u64, dtb: u64) -> ! {
        // SAFETY: the image at `load` was received in full and its CRC32 verified. The I-cache
        // may hold lines of what was there before (this loader ran at 0x80000): invalidate it
        // and synchronise before the first fetch from the new code.
        unsafe {
            core::arch::asm!(
                "dsb sy",
                "ic iallu",
                "dsb sy",
                "isb",
                "br {load}",
                load = in(reg) load,
                in("x0") dtb,
                in("x1") 0u64,
                in("x2") 0u64,
                in("x3") 0u64,
                options(noreturn)
            )
        }
    }

    fn halt() -> ! {
        loop {
            // SAFETY: WFE only waits.
            unsafe { core::arch::asm!("wfe", options(nomem, nostack)) };
        }
    }

    #[unsafe(no_mangle)]
    extern "C" fn loader_main(dtb: u64, entry_el: u64) -> ! {
        let Some(pi) = board() else {
            // Not a board we know the UART of: nothing useful can be said.
            halt()
        };
        let b = &pi.board;
        // SAFETY: this SoC's GPIO block; MMU off, one CPU.
        let gpio = unsafe { gpio::Gpio::new(pi.gpio_base, pi.pulls) };
        gpio.route_uart0();
        // SAFETY: this SoC's PL011; MMU off, one CPU.
        let mut uart = Uart(unsafe { pl011::Pl011::new(b.uart_base) });
        uart.set_baud(b.uart_clock_hz, CONSOLE_BAUD);

        // Only the address of the linker symbol is taken, never its contents.
        let loader_start = (&raw const __loader_start) as u64;
        let dtb = dtb_range(dtb);
        let limit = match dtb {
            Some((at, _)) if at >= b.kernel_load => loader_start.min(at),
            _ => loader_start,
        };
        let max = u32::try_from(limit - b.kernel_load).unwrap_or(u32::MAX);
        let _ = write!(
            uart,
            "\npatchbay chainloader {} (protocol v{VERSION}) on {}, entered at EL{entry_el}\n\
             kernels load at {:#x}, at most {max} bytes (loader at {loader_start:#x}",
            env!("CARGO_PKG_VERSION"),
            b.description,
            b.kernel_load
        );
        let _ = match dtb {
            Some((at, size)) => writeln!(uart, ", DTB at {at:#x}, {size} bytes)"),
            None => writeln!(uart, ", no DTB)"),
        };

        let hz = frequency(b.counter_hz);
        let (ready_every, stall_after, drain_quiet) = (hz, 3 * hz, hz / 4);
        let ready = Message::Ready {
            version: VERSION,
            max,
            load: b.kernel_load,
        };
        let mut rx = Receiver::new(max);
        let mut area = LoadArea(b.kernel_load);
        let mut baud = CONSOLE_BAUD;
        let mut last_ready = ticks().wrapping_sub(ready_every);
        let mut last_byte = ticks();
        loop {
            let now = ticks();
            let Some(byte) = uart.0.try_read_byte() else {
                if rx.busy() && now - last_byte > stall_after {
                    let why = rx.abort();
                    refuse(&mut uart, b, &mut baud, why, drain_quiet);
                    last_byte = ticks();
                } else if !rx.busy() && now - last_ready >= ready_every {
                    uart.say(ready);
                    last_ready = now;
                }
                continue;
            };
            last_byte = now;
            match rx.feed(byte, &mut area) {
                Step::Idle => {}
                // Flow control: the host sends the next page only after this.
                Step::Page => uart.0.write_byte(PAGE_ACK),
                Step::Accepted(h) => {
                    let target = if h.baud == 0 { baud } else { h.baud };
                    if baud_divisor(b.uart_clock_hz, target).is_none() {
                        rx.cancel();
                        refuse(&mut uart, b, &mut baud, Refusal::Baud(target), drain_quiet);
                        continue;
                    }
                    uart.say(Message::Ack {
                        len: h.image_len,
                        baud: h.baud,
                    });
                    if target != baud {
                        uart.set_baud(b.uart_clock_hz, target);
                        baud = target;
                    }
                }
                Step::Done(Ok(crc)) => {
                    uart.say(Message::Ok {
                        crc,
                        load: b.kernel_load,
                    });
                    if baud != CONSOLE_BAUD {
                        uart.set_baud(b.uart_clock_hz, CONSOLE_BAUD);
                    }
                    boot(b.kernel_load, dtb.map_or(0, |d| d.0));
                }
                Step::Done(Err(why)) => {
                    refuse(&mut uart, b, &mut baud, why, drain_quiet);
                    last_byte = ticks();
                }
            }
        }
    }

    /// Say why a transfer was refused, return to the console baud rate and discard what the
    /// host still sends until the line has been quiet for `quiet` ticks (at most ~5 s).
    fn refuse(uart: &mut Uart, b: &Board, baud: &mut u32, why: Refusal, quiet: u64) {
        let mut text = Line::new();
        let _ = write!(text, "{why}");
        uart.say(Message::Err(text.as_str()));
        if *baud != CONSOLE_BAUD {
            uart.set_baud(b.uart_clock_hz, CONSOLE_BAUD);
            *baud = CONSOLE_BAUD;
        }
        let start = ticks();
        let mut last = start;
        while ticks() - last < quiet && ticks() - start < 20 * quiet {
            if uart.0.try_read_byte().is_some() {
                last = ticks();
            }
        }
    }

    /// A small stack buffer for formatting one message.
    struct Line {
        buf: [u8; 192],
        len: usize,
    }

    impl Line {
        fn new() -> Self {
            Line {
                buf: [0; 192],
                len: 0,
            }
        }

        fn as_str(&self) -> &str {
            core::str::from_utf8(&self.buf[..self.len]).unwrap_or("(unprintable)")
        }
    }

    impl Write for Line {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let n = s.len().min(self.buf.len() - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
            self.len += n;
            Ok(())
        }
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        halt()
    }
}
