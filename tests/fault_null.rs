//! A null-pointer read is a translation fault reported as one, on every board: on the Raspberry
//! Pis RAM starts at address 0, so the BSP-independent memory map leaves the page at 0 unmapped
//! (`make test-rpi3`/`test-rpi4` boot this same test there).
#![no_std]
#![no_main]

patchbay::qemu_directives!(
    "expect_exit=1",
    "expect_console=detail   : translation fault, level 3, on a read",
    "expect_console=address  : FAR_EL1 0x0000000000000010 in the null page (null pointer?)",
    "expect_console=hint     : a null pointer dereference",
    "reject_console=TEST REACHED THE END",
);

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    // A field at offset 0x10 of a struct behind a null pointer: the usual shape of the bug.
    let p = core::hint::black_box(0x10usize) as *const u64;
    // SAFETY: not safe: the address is in the null page and the read must fault.
    let v = unsafe { p.read_volatile() };
    patchbay::println!("TEST REACHED THE END {v}");
    patchbay::exit::exit(patchbay::exit::ExitCode::Success)
}
