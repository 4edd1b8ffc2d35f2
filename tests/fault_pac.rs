//! Hardened build only: return addresses are signed and checked. A function whose saved (signed)
//! return address is changed in its frame record fails authentication at its `autiasp`: with
//! FEAT_FPAC (QEMU max has it) an exception at once, reported readably, and exit 1.
#![no_std]
#![no_main]

patchbay::qemu_directives!(
    "expect_exit=1",
    "expect_console=what     : Pointer authentication failure (FPAC) (EC 0x1c)",
    "expect_console=detail   : a signed pointer did not authenticate, instruction key A",
    "expect_console=<corrupts_its_return_address+",
    "expect_console=hint     : pointer authentication is enforced (hardened build)",
    "reject_console=TEST REACHED THE END",
);

/// Flips one bit of the authentication code in its own saved return address — what a return
/// hook that overwrote a signed address with another value would do — then returns.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn corrupts_its_return_address() {
    // A call, so this function keeps a frame record and signs x30 (`paciasp`) in its prologue.
    core::hint::black_box(patchbay::arch::harden::strip_pac(0));
    let fp: u64;
    // SAFETY: reads x29, this function's frame pointer (force-frame-pointers).
    unsafe { core::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack)) };
    let saved_lr = (fp + 8) as *mut u64;
    // SAFETY: not safe: rewrites this function's own saved return address, which the test
    // expects its `autiasp` to refuse. Bit 40 is inside the code (bits 54..39 with T0SZ 25).
    unsafe { saved_lr.write_volatile(saved_lr.read_volatile() ^ (1 << 40)) };
}

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    corrupts_its_return_address();
    patchbay::println!("TEST REACHED THE END");
    patchbay::exit::exit(patchbay::exit::ExitCode::Success)
}
