//! Hardened build only: BTI is enforced. A `blr` to code without a landing pad (a function
//! written in assembly that does not start with `bti c`) takes a Branch Target exception with a
//! report naming it, and exit 1.
#![no_std]
#![no_main]

patchbay::qemu_directives!(
    "expect_exit=1",
    "expect_console=what     : Branch Target exception (BTI: no landing pad) (EC 0x0d)",
    "expect_console=PSTATE.BTYPE 0b10, set by BLR: needs bti c or bti jc (or paciasp)",
    "expect_console=at       : ELR_EL1 0x",
    "expect_console=<no_landing_pad+0x0>",
    "expect_console=hint     : BTI is enforced (hardened build)",
    "reject_console=TEST REACHED THE END",
);

// A function as hand-written assembly without the landing pad every compiled one has.
core::arch::global_asm!(
    ".section .text.fault_bti, \"ax\"",
    ".balign 4",
    ".global no_landing_pad",
    ".type no_landing_pad, %function",
    "no_landing_pad:",
    "    mov  x0, #42",
    "    ret",
    ".size no_landing_pad, . - no_landing_pad",
);

unsafe extern "C" {
    fn no_landing_pad() -> u64;
}

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    // Through a pointer the compiler cannot see through: a `blr`, which sets PSTATE.BTYPE 0b10.
    let f = core::hint::black_box(no_landing_pad as unsafe extern "C" fn() -> u64);
    // SAFETY: not safe: the target has no landing pad and the call must fault.
    let v = unsafe { f() };
    patchbay::println!("TEST REACHED THE END {v}");
    patchbay::exit::exit(patchbay::exit::ExitCode::Success)
}
