//! A branch into a freed trampoline hits the pools' trap pattern, and the report says so: a
//! direct trampoline is attached, detached and freed after its grace period, then called
//! through the address kept from before (what a missing grace period lets a CPU do). Exit 1.
#![no_std]
#![no_main]

use patchbay::{
    grace,
    patch::sites,
    trace::{self, DirectCtx, DirectKind, Reach},
};

patchbay::qemu_directives!(
    "expect_exit=1",
    "expect_console=what     : BRK instruction (EC 0x3c)",
    "expect_console=cause    : use of a freed trampoline: ELR_EL1 is in the near trampoline pool",
    "expect_console=brk #0xdead",
    "reject_console=TEST REACHED THE END",
);

extern "C" fn on_entry(_: &DirectCtx, _: *mut u64) {}

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    let site = sites::by_name("patchbay::subjects::observe").unwrap();
    let id = trace::attach_direct(site, DirectKind::Entry(on_entry), 0, Reach::Near).unwrap();
    let (tramp, _) = trace::direct::trampoline_of(id).unwrap();
    trace::detach(id).unwrap();
    grace::synchronize().unwrap();
    // SAFETY: not safe: `tramp` is freed pool memory (the trap pattern), which the test expects
    // to fault.
    let stale = unsafe { core::mem::transmute::<u64, extern "C" fn()>(tramp) };
    stale();
    patchbay::println!("TEST REACHED THE END");
    patchbay::exit::exit(patchbay::exit::ExitCode::Success)
}
