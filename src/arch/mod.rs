//! Architecture glue. Only AArch64 exists; the generic modules call `arch::…` so that a reader
//! always sees where a call crosses into system-register code.

pub mod aarch64;
pub use aarch64::*;
