//! A panic prints the message, the location and a backtrace, and the run exits with failure.
#![no_std]
#![no_main]

patchbay::qemu_directives!(
    "expect_exit=1",
    "expect_console=!!! patchbay: PANIC on CPU 0 !!!",
    "expect_console=message  : deliberate panic 42",
    "expect_console=at       : tests/panic.rs:",
    "expect_console=<kernel_main+",
);

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    let n = core::hint::black_box(42);
    panic!("deliberate panic {n}");
}
