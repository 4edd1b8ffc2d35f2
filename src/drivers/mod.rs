//! Device drivers.
//!
//! - [`pl011`], [`gpio`]: the console UART and Raspberry Pi pin muxing, from the `patchbay-board`
//!   crate (the chainloader uses the same drivers).
//! - [`mailbox`]: the Raspberry Pi firmware's property interface (used by `bsp::raspberrypi`).

pub mod mailbox;

pub use patchbay_board::drivers::{gpio, pl011};
