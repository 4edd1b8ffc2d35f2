//! The storm's second tooth (issue 15): the same storm with the test-only switch that writes
//! changes needing stop-the-world live instead (`smp-teeth`, boot argument
//! `smp.break=stop-machine`), each instruction word in two halves with a pause between — what
//! the architecture lets another CPU see of a concurrent change outside the CMODX set, which
//! QEMU never shows by itself. The storm's change of that kind is the BRK over a site's entry
//! word (`mov x9, x30` <-> `brk`); a worker that runs the half-written word executes a mix (an
//! `orr` into x0, or an unallocated encoding), and the run must fail with the report naming a
//! half-written instruction.
#![no_std]
#![no_main]

extern crate alloc;

#[path = "support/storm.rs"]
mod storm;

storm::directives!(
    "timeout=240",
    "bootargs=patchbay.tick_hz=250 smp.break=stop-machine",
    "expect_exit=1",
    "expect_console=a half-written instruction: the word at ",
    "reject_console=storm: PASS",
);

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    storm::run();
    patchbay::exit::exit(patchbay::exit::ExitCode::Success)
}
