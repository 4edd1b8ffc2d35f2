//! Boot: what runs between `boot/start.s` and the binary's `kernel_main`.
//!
//! The boot CPU enters [`__patchbay_early_main`] at EL1 on its kernel stack, MMU off, BSS
//! zeroed; [`init`] brings the machine up layer by layer, bottom first, then `kernel_main` (from
//! `src/main.rs` or a test in `tests/`) runs.

use crate::{
    bench, boot_info, console, exception, ipi, irq, memory, mttcg, patch, percpu, smp, system,
    trace,
};

#[cfg(not(test))]
unsafe extern "Rust" {
    /// Provided by the binary: what this kernel does once the machine is up.
    fn kernel_main() -> !;
}

#[cfg(test)]
use crate::kernel_main;

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

/// Bring the machine up: the boot CPU's vectors, boot facts, MMU + caches (W^X), console, heap,
/// clock; the secondary CPUs; the patch-site table, tracing's unwinder hooks.
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
    percpu::mark_online();
    console::init();
    console::init_logger();
    // SAFETY: once, after memory::init().
    unsafe { memory::init_heap() };
    bench::clock::init();
    mttcg::init();
    // SAFETY: once, on the boot CPU, MMU on; before the secondaries, which set up their part.
    unsafe { irq::init() };
    ipi::init();
    // SAFETY: once, on the boot CPU, MMU on, percpu up, before patch::init uses the poke window.
    unsafe { smp::bring_up() };
    system::banner();
    // SAFETY: once, single CPU, heap up.
    unsafe { patch::init() };
    trace::init();
}
