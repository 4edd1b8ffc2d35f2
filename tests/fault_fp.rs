//! The kernel is built for general registers only (aarch64-unknown-none-softfloat) and boots
//! with FP/SIMD trapping at EL1, so no trampoline ever has to preserve v0-v31: an FP/SIMD
//! instruction in kernel code is a reported bug, not silent corruption of a traced call.
#![no_std]
#![no_main]

patchbay::qemu_directives!(
    "expect_exit=1",
    "expect_console=what     : Trapped SVE/SIMD/FP access (EC 0x07)",
    "expect_console=hint     : the kernel is built for general registers only",
    "reject_console=TEST REACHED THE END",
);

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    // SAFETY: not safe: FP/SIMD is disabled (CPACR_EL1.FPEN = 0) and this must trap. The
    // instruction is encoded as a word so the softfloat target's assembler accepts it.
    unsafe { core::arch::asm!(".inst 0x1e604020 // fmov d0, d1", options(nomem, nostack)) };
    patchbay::println!("TEST REACHED THE END");
    patchbay::exit::exit(patchbay::exit::ExitCode::Success)
}
