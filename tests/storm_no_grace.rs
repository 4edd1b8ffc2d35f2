//! The storm's teeth (issue 15): the same storm with the test-only switch that frees
//! trampolines at detach, without waiting for a grace period. A worker still inside (or on its
//! way into) a freed trampoline executes the trap pattern, and the run must fail with the report
//! naming the cause. Its handlers spin 20 µs each, so that a worker is inside one most of the
//! time (a 10,000-switch run with instant handlers did not hit a freed trampoline within 240 s
//! once the kicks stopped keeping workers off the host's cores).
#![no_std]
#![no_main]

extern crate alloc;

#[path = "support/storm.rs"]
mod storm;

storm::directives!(
    "timeout=240",
    "bootargs=patchbay.tick_hz=250",
    "expect_exit=1",
    "expect_console=cause    : use of a freed trampoline",
    "reject_console=storm: PASS",
);

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    patchbay::grace::set_free_code_early(true);
    // Handlers that take a while: a worker is inside one (and returns into its trampoline after
    // it) most of the time, so a trampoline freed under it is hit within a few switches.
    storm::LINGER_US.store(20, core::sync::atomic::Ordering::Relaxed);
    storm::run();
    patchbay::exit::exit(patchbay::exit::ExitCode::Success)
}
