//! The storm's teeth (issue 15): the same storm with the test-only switch that frees
//! trampolines at detach, without waiting for a grace period. A worker still inside (or on its
//! way into) a freed trampoline executes the trap pattern, and the run must fail with the report
//! naming the cause.
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
    "expect_exit=1",
    "expect_console=cause    : use of a freed trampoline",
    "reject_console=storm: PASS",
);

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    patchbay::grace::set_free_code_early(true);
    storm::run();
    patchbay::exit::exit(patchbay::exit::ExitCode::Success)
}
