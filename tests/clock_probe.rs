//! A raw run with no boot arguments at all (QEMU `raspi3b` entered at EL3 with no DTB: nothing
//! can tell the kernel it is emulated) under `-icount`: the kernel must see for itself that the
//! counter counts instructions exactly, and never call those numbers cycles
//! (`bench::clock`'s probe). board_rpi3_el3 is the same boot without icount, where the board's
//! default (hardware) must stay.
#![no_std]
#![no_main]

use patchbay::{bench::clock, boot_info, bsp::ClockMode, exit, println};

patchbay::qemu_directives!(
    "boot=el3",
    "icount=1",
    "expect_console=clock probe: mode qemu-icount, unit instructions",
    "expect_console=patchbay: halted with exit code 0",
);

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    assert_eq!(
        boot_info::get().bootarg("patchbay.clock"),
        None,
        "no boot arguments here"
    );
    println!(
        "clock probe: mode {}, unit {}",
        clock::mode().name(),
        clock::unit()
    );
    let ok = clock::mode() == ClockMode::QemuIcount && clock::unit() == "instructions";
    exit::exit(if ok {
        exit::ExitCode::Success
    } else {
        exit::ExitCode::Failure
    })
}
