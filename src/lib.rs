//! # patchbay
//!
//! A bare-metal arm64 unikernel testbed for live function patching and tracing: it boots on
//! QEMU `virt` and on the Raspberry Pi 3 and 4, carries its own patchable functions, rewrites its
//! own text at run time with correct cache maintenance, and measures the mechanisms the Linux
//! arm64 ftrace debate weighed against each other, with the cycle counter.
//!
//! This library is the kernel; a binary (`src/main.rs`, or a test in `tests/`) provides
//! `kernel_main`, which runs after [`init`] has brought the machine up:
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
pub mod ktest;
pub mod memory;
mod panic;
pub mod patch;
pub mod percpu;
pub mod subjects;
pub mod symbols;
pub mod system;
pub mod trace;
pub mod unwind;

pub use patchbay_macros::{kernel_test, patchable};

/// Version and git revision of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_REV: &str = env!("PATCHBAY_GIT_REV");

#[cfg(not(test))]
unsafe extern "Rust" {
    /// Provided by the binary: what this kernel does once the machine is up.
    fn kernel_main() -> !;
}

/// Called by `boot/start.s` on the boot CPU at EL1, on its kernel stack, MMU off, BSS zeroed.
#[unsafe(no_mangle)]
unsafe extern "C" fn __patchbay_early_main(dtb: u64, entry_el: u64) -> ! {
    // SAFETY: called exactly once, by the boot CPU, before anything else.
    unsafe { init(dtb, entry_el) };
    // SAFETY: every kernel binary defines `kernel_main` (the library's own test build below).
    #[allow(unused_unsafe)]
    unsafe {
        kernel_main()
    }
}

/// Bring the boot CPU up: vectors, boot facts, MMU + caches (W^X), console, heap, clock.
///
/// # Safety
/// Once, on the boot CPU, with the MMU off.
unsafe fn init(dtb: u64, entry_el: u64) {
    exception::install();
    // SAFETY: boot CPU, first and only call, MMU off (the DTB is read with plain loads).
    unsafe { boot_info::record(dtb, entry_el) };
    // SAFETY: boot CPU, once, after record().
    unsafe { memory::init() };
    // SAFETY: this is CPU 0 bringing itself up.
    unsafe { percpu::init(0) };
    console::init();
    console::init_logger();
    // SAFETY: once, after memory::init().
    unsafe { memory::init_heap() };
    bench::clock::init();
    system::banner();
    // SAFETY: once, single CPU, heap up.
    unsafe { patch::init() };
}

#[cfg(test)]
#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    test_main();
    exit::exit(exit::ExitCode::Success)
}
