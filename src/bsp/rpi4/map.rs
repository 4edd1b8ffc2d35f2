//! Raspberry Pi 4 (BCM2711, 4x Cortex-A72) in low-peripheral mode (the firmware default,
//! `arm_peri_high=0`): the physical memory map and clocks.
//!
//! Plain constants with no dependencies, so that the chainloader (`chainloader/`) includes this
//! very file and the two can never disagree about an address.

/// The board's name (`make BSP=rpi4`, the `bsp_rpi4` feature).
pub const NAME: &str = "rpi4";
/// Where the firmware loads `kernel8.img` and jumps to it (src/bsp/rpi4/board.ld agrees).
pub const KERNEL_LOAD: u64 = 0x8_0000;

/// The peripheral window in low-peripheral mode: the SoC peripherals at 0xFE00_0000, the ARM
/// local block at 0xFF80_0000 and the GIC-400 at 0xFF84_0000, up to 4 GiB.
pub const PERIPHERAL_BASE: u64 = 0xFE00_0000;
pub const MMIO_BASE: u64 = 0xFC00_0000;
pub const MMIO_END: u64 = 0x1_0000_0000;

/// GPIO controller (function select, pull-up/down control registers).
pub const GPIO_BASE: u64 = PERIPHERAL_BASE + 0x20_0000;
/// PL011 UART0, on GPIO 14 (TXD0) / 15 (RXD0) in alternate function 0.
pub const UART_BASE: u64 = PERIPHERAL_BASE + 0x20_1000;
/// VideoCore mailbox 0 (the firmware's property interface).
pub const MAILBOX_BASE: u64 = PERIPHERAL_BASE + 0xB880;

/// UART reference clock, pinned by config.txt `init_uart_clock=48000000`.
pub const UART_CLOCK_HZ: u32 = 48_000_000;
/// The generic timer's frequency (CNTFRQ_EL0) that the firmware programs: 54 MHz crystal.
pub const COUNTER_HZ: u64 = 54_000_000;

/// RAM the ARM sees below the first GiB when neither the DTB nor the mailbox says (the
/// firmware's first bank with the default GPU split; more RAM lies above 1 GiB on bigger boards).
pub const FALLBACK_RAM_END: u64 = 0x3B40_0000;
