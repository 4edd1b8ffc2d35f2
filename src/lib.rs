//! # patchbay
//!
//! A bare-metal arm64 unikernel testbed for live function patching and tracing: it boots on
//! QEMU `virt` and on the Raspberry Pi 3 and 4, carries its own patchable functions, rewrites its
//! own text at run time with correct cache maintenance, and measures the mechanisms the Linux
//! arm64 ftrace debate weighed against each other, with the cycle counter.
//!
//! This library is the kernel; a binary (`src/main.rs`, or a test in `tests/`) provides
//! `kernel_main`, which runs after `init` (`src/init.rs`) has brought the machine up:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! #[unsafe(no_mangle)]
//! fn kernel_main() -> ! {
//!     patchbay::println!("hello from EL{}", patchbay::arch::cpu::current_el());
//!     patchbay::exit::exit(patchbay::exit::ExitCode::Success)
//! }
//! ```
//!
//! Layers: `arch` (AArch64 glue) and `bsp` (board constants) at the bottom; `memory`, `exception`,
//! `console` above them; pure logic (encoders, page tables, layout, symbol tables) lives in the
//! `patchbay-pure` crate and is tested on the host.
#![no_std]
#![cfg_attr(test, no_main)]
#![feature(custom_test_frameworks)]
#![feature(patchable_function_entry)]
#![test_runner(crate::ktest::runner)]
#![reexport_test_harness_main = "test_main"]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

extern crate alloc;
// Lets `#[kernel_test]` name `::patchbay::ktest` from inside this crate too.
extern crate self as patchbay;

pub mod arch;
pub mod bench;
pub mod boot_info;
pub mod bsp;
pub mod console;
pub mod drivers;
pub mod exception;
pub mod exit;
pub mod grace;
mod init;
pub mod ipi;
pub mod irq;
pub mod ktest;
pub mod memory;
pub mod mttcg;
mod panic;
pub mod patch;
pub mod percpu;
pub mod shell;
pub mod smp;
pub mod stop;
pub mod subjects;
pub mod symbols;
pub mod system;
pub mod trace;
pub mod unwind;

pub use patchbay_macros::{kernel_test, patchable};

/// Version and git revision of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_REV: &str = env!("PATCHBAY_GIT_REV");
/// The build variant every `@bench` header names: `plain` (no branch protection), or `hardened`
/// (BTI landing pads and pac-ret, enforced on a CPU that has them: `patchbay_pure::harden`).
pub const BUILD: &str = if patchbay_pure::harden::HARDENED {
    "hardened"
} else {
    "plain"
};

#[cfg(test)]
#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    test_main();
    exit::exit(exit::ExitCode::Success)
}
