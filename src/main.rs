//! The main kernel (`make qemu`): describe the machine, run the benchmark suite, exit.
#![no_std]
#![no_main]

use patchbay::{
    bench::suite,
    exit::{ExitCode, exit},
    patch::sites,
    println, system,
};

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    system::summary();
    println!("sites: {} patchable functions", sites::all().len());
    suite::run_all();
    println!("patchbay: done");
    exit(ExitCode::Success)
}
