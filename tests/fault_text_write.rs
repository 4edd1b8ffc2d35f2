//! A write through the executable text mapping faults, and the report names the exception, the
//! address (with its symbol), the region and the rule; the run exits with failure.
#![no_std]
#![no_main]

patchbay::qemu_directives!(
    "expect_exit=1",
    "expect_console=!!! patchbay: FATAL Synchronous exception on CPU 0",
    "expect_console=what     : Data Abort, current EL (EC 0x25)",
    "expect_console=detail   : permission fault, level 3, on a write",
    "expect_console=<victim+0x0> in kernel text (read-only, executable)",
    "expect_console=hint     : kernel text and trampoline pools are never writable",
    "expect_console=<kernel_main+",
    "expect_console=!!! end of report: exiting with failure !!!",
    "reject_console=TEST REACHED THE END",
);

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn victim() -> u32 {
    core::hint::black_box(7)
}

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    let p = victim as *const () as *mut u32;
    patchbay::println!("writing to text at {:#x}", p as u64);
    // SAFETY: not safe at all: this must fault (W^X); that is what the test checks.
    unsafe { p.write_volatile(patchbay_pure::insn::NOP) }; // nop
    patchbay::println!("TEST REACHED THE END");
    patchbay::exit::exit(patchbay::exit::ExitCode::Success)
}
