//! An undefined instruction gives a report with a backtrace through the caller, and exit 1.
#![no_std]
#![no_main]

patchbay::qemu_directives!(
    "expect_exit=1",
    "expect_console=what     : Unknown reason (undefined instruction, e.g. UDF) (EC 0x00)",
    "expect_console=at       : ELR_EL1 0x",
    "expect_console=<undefined+",
    "expect_console=backtrace (frame pointers, innermost first):",
    "expect_console=<caller+",
    "reject_console=TEST REACHED THE END",
);

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn undefined() {
    // SAFETY: not safe: UDF raises an undefined-instruction exception, which the test expects.
    unsafe { core::arch::asm!("udf #0x42") };
}

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn caller() {
    undefined();
    core::hint::black_box(());
}

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    caller();
    patchbay::println!("TEST REACHED THE END");
    patchbay::exit::exit(patchbay::exit::ExitCode::Success)
}
