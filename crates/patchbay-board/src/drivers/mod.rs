//! The drivers the kernel and the chainloader share.
//!
//! - [`pl011`]: the console UART on every board (transmit; receive for the chainloader).
//! - [`gpio`]: Raspberry Pi pin muxing, to hand GPIO 14/15 to the PL011.

pub mod gpio;
pub mod pl011;
