//! A function with compiler patchable entries that was not registered with #[patchable] makes
//! the site table cross-check fail, and the kernel refuses to boot with a clear message.
#![no_std]
#![no_main]
#![feature(patchable_function_entry)]

patchbay::qemu_directives!(
    "expect_exit=1",
    "expect_console=site table: the compiler emitted a patchable entry at",
    "expect_console=that no #[patchable] registered",
    "expect_console=[function <unregistered+0x0>]",
    "reject_console=TEST REACHED kernel_main",
);

/// Patchable codegen without the registry record.
#[patchable_function_entry(prefix_nops = 2, entry_nops = 2)]
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn unregistered(x: u64) -> u64 {
    x + 1
}

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    patchbay::println!("TEST REACHED kernel_main {}", unregistered(1));
    patchbay::exit::exit(patchbay::exit::ExitCode::Success)
}
