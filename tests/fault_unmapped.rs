//! A read of an unmapped address (the poke window, never identity-mapped) is a translation fault
//! reported with the region's name.
#![no_std]
#![no_main]

patchbay::qemu_directives!(
    "expect_exit=1",
    "expect_console=detail   : translation fault, level 3, on a read",
    "expect_console=address  : FAR_EL1 0x0000004000001008 in the poke window",
    "expect_console=hint     : an access to an address that is not mapped",
    "reject_console=TEST REACHED THE END",
);

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    let p = (patchbay_pure::layout::POKE_WINDOW_VA + 0x1008) as *const u64;
    // SAFETY: not safe: the address is unmapped and the read must fault.
    let v = unsafe { p.read_volatile() };
    patchbay::println!("TEST REACHED THE END {v}");
    patchbay::exit::exit(patchbay::exit::ExitCode::Success)
}
