//! The main kernel (`make qemu`): describe the machine, run the benchmark suite, exit.
#![no_std]
#![no_main]

use patchbay::{
    bench::all,
    exit::{ExitCode, exit},
    patch::sites,
    println, system, trace,
};

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    system::summary();
    println!("sites: {} patchable functions", sites::all().len());
    all::run_all();
    // Nothing is dropped silently: what the guards and limits refused during the run.
    let (hooked, returned) = trace::rethook::counts();
    println!(
        "trace: {} recursions refused by the guard, {hooked} returns hooked / {returned} returned, {} not hooked (shadow stack full), {} + {} pool allocations refused (near + far)",
        trace::recursion::count(),
        trace::rethook::overflows(),
        trace::pool::usage(trace::pool::PoolKind::Near).failures,
        trace::pool::usage(trace::pool::PoolKind::Far).failures,
    );
    println!("patchbay: done");
    exit(ExitCode::Success)
}
