//! patchbay's boards: the facts of every board patchbay runs on, written once, and the drivers
//! that the kernel and the chainloader both use.
//!
//! ```
//! use patchbay_board::{ClockMode, ExitMethod, QEMU_VIRT, RaspberryPi, drivers::gpio::PullScheme};
//!
//! // The chainloader (one image for both Pis) tells them apart by the CPU's MIDR_EL1.PartNum.
//! let pi = RaspberryPi::by_cpu_part(0xd08).expect("Cortex-A72: a Raspberry Pi 4");
//! assert_eq!(pi.board.name, "rpi4");
//! assert_eq!((pi.board.uart_base, pi.board.uart_clock_hz), (0xfe20_1000, 48_000_000));
//! assert_eq!(pi.pulls, PullScheme::Direct);
//! // The kernel's `bsp` takes its addresses, its exit and its default clock from the table.
//! assert_eq!(QEMU_VIRT.exit, ExitMethod::Semihosting);
//! assert_eq!(QEMU_VIRT.clock.name(), "qemu");
//! assert_eq!(ClockMode::from_name("qemu-icount"), Some(ClockMode::QemuIcount));
//! ```
//!
//! | shared | what | used by |
//! |---|---|---|
//! | [`Board`]: [`QEMU_VIRT`], [`RPI3`], [`RPI4`] | name, QEMU machine, load address, UART, counter, device memory, fallback RAM, exit, default clock | the kernel's `src/bsp`, the facts `patchbay-wire` writes into the ELF for `pb`, the kernel's `build.rs` (the linker script's `board.ld`) |
//! | [`RaspberryPi`] | CPU part, GPIO, pull scheme, mailbox | the kernel's `bsp::raspberrypi`, the chainloader |
//! | [`ClockMode`], [`ExitMethod`] | what a tick means, how a run ends | `bsp`, `bench::clock`, `exit`, the `@bench` header |
//! | [`drivers::pl011`] | the console UART (tock-registers) | the kernel's console, the chainloader |
//! | [`drivers::gpio`] | Broadcom pin muxing: GPIO 14/15 to the PL011 | the kernel's Pi bring-up, the chainloader |
//!
//! `no_std`, no global state: the drivers compile on the host too, so their register layouts are
//! checked by `cargo test`.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod drivers;

use core::ops::Range;

use drivers::gpio::PullScheme;

/// How a run ends on a board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitMethod {
    /// Semihosting SYS_EXIT with a code (QEMU), PSCI SYSTEM_OFF if semihosting is absent.
    Semihosting,
    /// Print a final line and park the CPUs (hardware without a debugger). The host tools
    /// (`pb run`, `pb chainload`, `pb capture`) recognise the line and take its exit code.
    Halt,
}

impl ExitMethod {
    pub const ALL: [ExitMethod; 2] = [ExitMethod::Semihosting, ExitMethod::Halt];

    /// The name the board facts use.
    pub const fn name(self) -> &'static str {
        match self {
            ExitMethod::Semihosting => "semihosting",
            ExitMethod::Halt => "halt",
        }
    }

    /// The method called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// What the measuring clock counts, so that every benchmark record can say it (the kernel's
/// `bench::clock` documents how each mode is chosen).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockMode {
    /// QEMU with `-icount`: PMCCNTR_EL0 counts retired instructions, exactly.
    QemuIcount,
    /// QEMU without icount: the counter follows host time and is noise.
    Qemu,
    /// A real CPU: PMCCNTR_EL0 counts cycles.
    Hardware,
}

impl ClockMode {
    pub const ALL: [ClockMode; 3] = [ClockMode::QemuIcount, ClockMode::Qemu, ClockMode::Hardware];

    /// The name used by the `patchbay.clock=` boot argument, the board facts and the records.
    pub const fn name(self) -> &'static str {
        match self {
            ClockMode::QemuIcount => "qemu-icount",
            ClockMode::Qemu => "qemu",
            ClockMode::Hardware => "hardware",
        }
    }

    /// The mode called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// The facts of one board: everything the kernel, the chainloader and `pb` must agree on.
/// Address ranges are `start..end` (end exclusive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Board {
    /// `qemu_virt`, `rpi3`, `rpi4`: `make BSP=<name>`, the kernel's `bsp_<name>` feature.
    pub name: &'static str,
    /// A human name, for the banner.
    pub description: &'static str,
    /// The QEMU machine (`-M`) that emulates the board; `none` if QEMU has none.
    pub machine: &'static str,
    /// Where the kernel is loaded and entered (the linker script's `KERNEL_BASE`).
    pub kernel_load: u64,
    /// The PL011 console.
    pub uart_base: u64,
    /// Its reference clock (UARTCLK), from which the baud divisor is computed.
    pub uart_clock_hz: u32,
    /// The generic timer's frequency (CNTFRQ_EL0) the firmware programs; the kernel programs it
    /// itself when entered at EL3.
    pub counter_hz: u64,
    /// Ranges mapped as device memory.
    pub mmio: &'static [Range<u64>],
    /// RAM when neither the DTB nor the firmware says. It starts at the base of RAM (the linker
    /// script's `RAM_BASE`).
    pub fallback_ram: Range<u64>,
    pub exit: ExitMethod,
    /// The clock mode when the runner passed no `patchbay.clock=` boot argument.
    pub clock: ClockMode,
}

/// QEMU `virt` (`-M virt`, optionally `virtualization=on`): PL011 at 0x0900_0000, RAM at 1 GiB,
/// PSCI through HVC or SMC, semihosting for the exit code.
// `mmio` is a list of ranges that happens to hold one.
#[allow(clippy::single_range_in_vec_init)]
pub const QEMU_VIRT: Board = Board {
    name: "qemu_virt",
    description: "QEMU virt",
    machine: "virt",
    // RAM base + the arm64 Image's text_offset.
    kernel_load: 0x4008_0000,
    uart_base: 0x0900_0000,
    // What QEMU reports in the DTB (QEMU ignores the baud divisor anyway).
    uart_clock_hz: 24_000_000,
    counter_hz: 62_500_000,
    // Everything below RAM (flash, GIC, UART, RTC, virtio-mmio...).
    mmio: &[0..0x4000_0000],
    // QEMU's default for `virt` is 128 MiB.
    fallback_ram: 0x4000_0000..0x4800_0000,
    exit: ExitMethod::Semihosting,
    // This machine only exists in an emulator: its counter never counts real cycles.
    clock: ClockMode::Qemu,
};

/// A Raspberry Pi: its [`Board`] facts and what bring-up and the chainloader need besides.
///
/// Both Pis are booted by the VideoCore firmware from `kernel8.img` at 0x80000, entered at EL2
/// (EL3 if no armstub drops it), DTB in x0. The console is the PL011 on GPIO 14/15 (alternate
/// function 0) with a fixed 48 MHz UART clock (config.txt `init_uart_clock=48000000`). There is
/// no PSCI and no semihosting: a run ends with a final line and a halt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaspberryPi {
    pub board: Board,
    /// MIDR_EL1.PartNum of its cores (Cortex-A53 0xd03, Cortex-A72 0xd08).
    pub cpu_part: u16,
    /// GPIO controller (function select, pulls).
    pub gpio_base: u64,
    /// How this SoC sets pulls.
    pub pulls: PullScheme,
    /// VideoCore mailbox 0 (the firmware's property interface).
    pub mailbox_base: u64,
}

/// Offsets in the SoC peripheral block, the same on the BCM2837 and the BCM2711.
const GPIO: u64 = 0x20_0000;
/// PL011 UART0, on GPIO 14 (TXD0) / 15 (RXD0) in alternate function 0.
const UART0: u64 = 0x20_1000;
const MAILBOX: u64 = 0xB880;

/// Where the firmware loads `kernel8.img` and jumps to it (config.txt `kernel_address`, also the
/// text_offset of the Image header).
const PI_KERNEL_LOAD: u64 = 0x8_0000;
/// UART reference clock, pinned by config.txt `init_uart_clock=48000000`.
const PI_UART_CLOCK_HZ: u32 = 48_000_000;
/// RAM below the first GiB when neither the DTB nor the mailbox says: the firmware's first bank
/// with the default GPU split (the 1 GiB board minus 76 MiB).
const PI_FALLBACK_RAM: Range<u64> = 0..0x3B40_0000;

/// BCM2837 peripherals as the ARM cores see them ("ARM physical" = bus 0x7Exx_xxxx).
const BCM2837_PERIPHERALS: u64 = 0x3F00_0000;
/// BCM2711 peripherals in low-peripheral mode (the firmware default, `arm_peri_high=0`).
const BCM2711_PERIPHERALS: u64 = 0xFE00_0000;

/// Raspberry Pi 3 Model B/B+ (BCM2837, 4x Cortex-A53); also QEMU `-M raspi3b`.
pub const RPI3: RaspberryPi = RaspberryPi {
    board: Board {
        name: "rpi3",
        description: "Raspberry Pi 3 (BCM2837, Cortex-A53)",
        machine: "raspi3b",
        kernel_load: PI_KERNEL_LOAD,
        uart_base: BCM2837_PERIPHERALS + UART0,
        uart_clock_hz: PI_UART_CLOCK_HZ,
        // 19.2 MHz crystal.
        counter_hz: 19_200_000,
        // The SoC peripherals and the ARM-local block (per-core timers, mailboxes, interrupt
        // routing).
        mmio: &[BCM2837_PERIPHERALS..0x4000_0000, 0x4000_0000..0x4004_0000],
        fallback_ram: PI_FALLBACK_RAM,
        exit: ExitMethod::Halt,
        // Without a `patchbay.clock=` boot argument this is the real board.
        clock: ClockMode::Hardware,
    },
    cpu_part: 0xd03,
    gpio_base: BCM2837_PERIPHERALS + GPIO,
    // GPPUD + GPPUDCLKn.
    pulls: PullScheme::Clocked,
    mailbox_base: BCM2837_PERIPHERALS + MAILBOX,
};

/// Raspberry Pi 4 Model B / Pi 400 / CM4 (BCM2711, 4x Cortex-A72) in low-peripheral mode. QEMU
/// emulates it as `raspi4b` since 9.0 (patchbay needs QEMU >= 10.0, `make deps`).
// `mmio` is a list of ranges that happens to hold one.
#[allow(clippy::single_range_in_vec_init)]
pub const RPI4: RaspberryPi = RaspberryPi {
    board: Board {
        name: "rpi4",
        description: "Raspberry Pi 4 (BCM2711, Cortex-A72)",
        machine: "raspi4b",
        kernel_load: PI_KERNEL_LOAD,
        uart_base: BCM2711_PERIPHERALS + UART0,
        uart_clock_hz: PI_UART_CLOCK_HZ,
        // 54 MHz crystal.
        counter_hz: 54_000_000,
        // The low-peripheral window up to 4 GiB: the SoC peripherals at 0xFE00_0000, the
        // ARM-local block at 0xFF80_0000 and the GIC-400 at 0xFF84_0000. The kernel's 39-bit VA
        // space covers it.
        mmio: &[0xFC00_0000..0x1_0000_0000],
        // More RAM lies above 1 GiB on bigger boards; the DTB says.
        fallback_ram: PI_FALLBACK_RAM,
        exit: ExitMethod::Halt,
        clock: ClockMode::Hardware,
    },
    cpu_part: 0xd08,
    gpio_base: BCM2711_PERIPHERALS + GPIO,
    // GPIO_PUP_PDN_CNTRL_REGn.
    pulls: PullScheme::Direct,
    mailbox_base: BCM2711_PERIPHERALS + MAILBOX,
};

impl RaspberryPi {
    pub const ALL: [&'static RaspberryPi; 2] = [&RPI3, &RPI4];

    /// The Pi whose cores have MIDR_EL1.PartNum `part`.
    pub fn by_cpu_part(part: u16) -> Option<&'static RaspberryPi> {
        Self::ALL.into_iter().find(|pi| pi.cpu_part == part)
    }

    /// The Pi called `name` (`rpi3`, `rpi4`).
    pub fn by_name(name: &str) -> Option<&'static RaspberryPi> {
        Self::ALL.into_iter().find(|pi| pi.board.name == name)
    }
}

/// Every board, in the order `make BSP=` lists them.
pub const BOARDS: [&Board; 3] = [&QEMU_VIRT, &RPI3.board, &RPI4.board];

/// The board called `name`.
pub fn by_name(name: &str) -> Option<&'static Board> {
    BOARDS.into_iter().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in ClockMode::ALL {
            assert_eq!(ClockMode::from_name(m.name()), Some(m));
        }
        for m in ExitMethod::ALL {
            assert_eq!(ExitMethod::from_name(m.name()), Some(m));
        }
        assert_eq!(ClockMode::from_name("cycles"), None);
        assert_eq!(ExitMethod::from_name("reset"), None);
    }

    #[test]
    fn the_pi_addresses_are_the_datasheets() {
        // BCM2835 ARM Peripherals 6.1 / BCM2711 ARM Peripherals 5.1 and 11.5, seen by the ARM.
        assert_eq!(RPI3.gpio_base, 0x3F20_0000);
        assert_eq!(RPI3.board.uart_base, 0x3F20_1000);
        assert_eq!(RPI3.mailbox_base, 0x3F00_B880);
        assert_eq!(RPI4.gpio_base, 0xFE20_0000);
        assert_eq!(RPI4.board.uart_base, 0xFE20_1000);
        assert_eq!(RPI4.mailbox_base, 0xFE00_B880);
    }

    #[test]
    fn every_board_maps_its_uart_and_loads_into_its_ram() {
        for b in BOARDS {
            assert!(
                b.mmio.iter().any(|m| m.contains(&b.uart_base)),
                "{}: UART outside device memory",
                b.name
            );
            assert!(b.fallback_ram.contains(&b.kernel_load), "{}", b.name);
            let ram = &b.fallback_ram;
            assert!(
                !b.mmio
                    .iter()
                    .any(|m| m.start < ram.end && ram.start < m.end),
                "{}: device memory overlaps RAM",
                b.name
            );
            assert_eq!(by_name(b.name), Some(b));
        }
        assert_eq!(by_name("rpi5"), None);
    }

    #[test]
    fn the_chainloader_finds_each_pi_by_its_cpu() {
        assert_eq!(RaspberryPi::by_cpu_part(0xd03), Some(&RPI3));
        assert_eq!(RaspberryPi::by_cpu_part(0xd08), Some(&RPI4));
        assert_eq!(
            RaspberryPi::by_cpu_part(0xd0b),
            None,
            "Cortex-A76: a Pi 5, not supported"
        );
        assert_eq!(RaspberryPi::by_name("rpi4"), Some(&RPI4));
    }
}
