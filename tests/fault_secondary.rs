//! A fault on a secondary CPU gives the same readable crash report as on the boot CPU, naming
//! the CPU, and ends the run (QEMU `virt`, 2 CPUs; CPU 1 dereferences null from its idle loop).
#![no_std]
#![no_main]

use patchbay::{arch, smp};

patchbay::qemu_directives!(
    "smp=2",
    "expect_exit=1",
    "expect_console=!!! patchbay: FATAL Synchronous exception on CPU 1, taken from EL1 (kernel, SP_EL0) !!!",
    "expect_console=hint     : a null pointer dereference",
    "expect_console=!!! end of report: exiting with failure !!!",
    "reject_console=TEST REACHED THE END",
);

/// Runs on CPU 1.
fn null_read(offset: u64) {
    let p = core::hint::black_box(offset) as *const u64;
    // SAFETY: not safe: the address is in the null page and the read must fault.
    let v = unsafe { p.read_volatile() };
    patchbay::println!("TEST REACHED THE END on CPU 1: {v}");
}

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    smp::run_on(1, null_read, 0x18).unwrap();
    // CPU 1's report ends the run; give it ten seconds.
    let start = arch::pmu::cntvct();
    while arch::pmu::cntvct() - start < 10 * arch::pmu::counter_frequency() {
        core::hint::spin_loop();
    }
    patchbay::println!("TEST REACHED THE END on CPU 0: CPU 1 did not fault");
    patchbay::exit::exit(patchbay::exit::ExitCode::Success)
}
