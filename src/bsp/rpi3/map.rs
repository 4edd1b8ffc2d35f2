//! Raspberry Pi 3 (BCM2837, 4x Cortex-A53): the physical memory map and clocks.
//!
//! Plain constants with no dependencies, so that the chainloader (`chainloader/`) includes this
//! very file and the two can never disagree about an address.

/// The board's name (`make BSP=rpi3`, the `bsp_rpi3` feature).
pub const NAME: &str = "rpi3";
/// Where the firmware loads `kernel8.img` and jumps to it (src/bsp/rpi3/board.ld agrees).
pub const KERNEL_LOAD: u64 = 0x8_0000;

/// The SoC peripherals as the ARM cores see them ("ARM physical" = bus 0x7Exx_xxxx).
pub const PERIPHERAL_BASE: u64 = 0x3F00_0000;
pub const PERIPHERAL_END: u64 = 0x4000_0000;
/// The ARM-local block (per-core timers, mailboxes, interrupt routing).
pub const LOCAL_BASE: u64 = 0x4000_0000;
pub const LOCAL_END: u64 = 0x4004_0000;

/// GPIO controller (function select, pulls).
pub const GPIO_BASE: u64 = PERIPHERAL_BASE + 0x20_0000;
/// PL011 UART0, on GPIO 14 (TXD0) / 15 (RXD0) in alternate function 0.
pub const UART_BASE: u64 = PERIPHERAL_BASE + 0x20_1000;
/// VideoCore mailbox 0 (the firmware's property interface).
pub const MAILBOX_BASE: u64 = PERIPHERAL_BASE + 0xB880;

/// UART reference clock. config.txt pins it with `init_uart_clock=48000000` (the firmware
/// default on current firmware), so the baud divisor computed from it is right.
pub const UART_CLOCK_HZ: u32 = 48_000_000;
/// The generic timer's frequency (CNTFRQ_EL0) that the firmware programs: 19.2 MHz crystal.
pub const COUNTER_HZ: u64 = 19_200_000;

/// RAM the ARM sees when neither the DTB nor the mailbox says (the 1 GiB board minus 76 MiB of
/// GPU memory, the firmware's default split).
pub const FALLBACK_RAM_END: u64 = 0x3B40_0000;
