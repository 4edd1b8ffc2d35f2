//! A return that reaches the rethook return trampoline while no hooked call is in flight (an
//! empty shadow stack) is a fatal report that says so. The trampoline has no empty-stack test
//! of its own: at depth 0 its SP check compares SP with the stack's depth word, 0, and fails
//! (`trace::rethook`); this proves that path ends in the report, not in a wild return.
#![no_std]
#![no_main]

use patchbay::trace::rethook;

patchbay::qemu_directives!(
    "expect_exit=1",
    "expect_console=message  : rethook: a return reached the return trampoline with an empty shadow stack",
    "reject_console=TEST REACHED THE END",
);

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    assert_eq!(rethook::depth(), 0, "nothing hooked");
    let tramp = core::hint::black_box(rethook::trampoline());
    // SAFETY: not safe, on purpose: "returns" into the return trampoline with nothing hooked,
    // which must report and never come back. `ret`, not `blr`, as a hooked function reaches it
    // (the hardened build gives it no landing pad).
    unsafe {
        core::arch::asm!("mov x30, {t}", "ret", t = in(reg) tramp, options(noreturn, nostack))
    }
}
