//! Unbounded recursion runs into the kernel stack's guard page; the report is produced on the
//! separate exception stack and says so.
#![no_std]
#![no_main]

patchbay::qemu_directives!(
    "expect_exit=1",
    "expect_console=in a stack guard page (stack overflow?)",
    "expect_console=hint     : the stack overflowed into its guard page",
    "expect_console=... the same frame",
    "reject_console=TEST REACHED THE END",
);

#[inline(never)]
#[allow(unconditional_recursion)] // the point of the test
fn recurse(n: u64) -> u64 {
    let buf = core::hint::black_box([n; 64]);
    recurse(buf[3] + 1) + buf[7]
}

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    let v = recurse(0);
    patchbay::println!("TEST REACHED THE END {v}");
    patchbay::exit::exit(patchbay::exit::ExitCode::Success)
}
