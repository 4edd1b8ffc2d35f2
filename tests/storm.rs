//! The patch storm (issue 15; `support/storm.rs` describes it): 4 CPUs, multi-threaded TCG
//! without icount, the tick on; CPU 0 switches sites among every mode 10,000 times while CPUs
//! 1–3 call them. Zero faults, every result right, exact accounting, nothing leaked.
#![no_std]
#![no_main]

extern crate alloc;

#[path = "support/storm.rs"]
mod storm;

patchbay::qemu_directives!(
    "smp=4",
    "tcg=multi",
    "icount=0",
    "timeout=240",
    "bootargs=patchbay.tick_hz=250",
    "expect_console=storm: PASS seed ",
);

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    storm::run();
    patchbay::exit::exit(patchbay::exit::ExitCode::Success)
}
