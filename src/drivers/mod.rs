//! Device drivers.
//!
//! - [`pl011`]: the console UART on every board.
//! - [`gpio`], [`mailbox`]: Raspberry Pi pin muxing and the firmware's property interface (used
//!   by the `rpi3`/`rpi4` BSPs; the chainloader includes `pl011` and `gpio` too).

pub mod gpio;
pub mod mailbox;
pub mod pl011;
