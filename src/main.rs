//! The main kernel (`make qemu`): print what the machine is, then exit.
#![no_std]
#![no_main]

use patchbay::{
    exit::{ExitCode, exit},
    println, system,
};

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    system::summary();
    patchbay::println!("sites: {}", patchbay::patch::sites::all().len());
    println!("patchbay: done");
    exit(ExitCode::Success)
}
