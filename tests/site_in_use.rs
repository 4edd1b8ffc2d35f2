//! A stopped batch is refused with `PatchError::SiteInUse` when another CPU keeps being
//! interrupted inside a word being written (src/patch/batch.rs), and succeeds once it leaves.
//!
//! The site is this test's own: an assembly loop registered like a `#[patchable]` function
//! (`.patchbay.sites` + `__patchable_function_entries`) whose entry words are *inside* the loop,
//! which takes interrupts only there. CPU 1 spins in it, so whenever the stop's IPI reaches CPU
//! 1, it was interrupted at the entry word (`mov x9, x30` since boot) or the word after it: the
//! word a change back to the compiled `nop` (not CMODX-safe: stop-the-world) writes, or the one
//! that runs next. Every attempt finds it there. (In the hardened build the site's `bti c` comes
//! first, so CPU 1 is interrupted before the entry word, and the stop rightly goes ahead.)
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use core::sync::atomic::{AtomicU64, Ordering};

use patchbay::{
    kernel_test, ktest,
    patch::{PatchError, batch, sites, text::text_hash},
    smp,
};

patchbay::qemu_directives!("smp=2", "timeout=90", "bootargs=patchbay.tick_hz=1000",);

static BOOT_HASH: AtomicU64 = AtomicU64::new(0);

patchbay::test_kernel_main!(BOOT_HASH.store(text_hash(), Ordering::Relaxed));

/// Nonzero: CPU 1 leaves the loop.
#[unsafe(no_mangle)]
static SPIN_SITE_QUIT: AtomicU64 = AtomicU64::new(0);
/// Loop iterations, so the test knows CPU 1 is inside.
#[unsafe(no_mangle)]
static SPIN_SITE_LAPS: AtomicU64 = AtomicU64::new(0);

/// The loop, with `$pad` (the hardened build's `bti c`, or nothing) at the site's address.
macro_rules! spin_site_asm {
    ($pad:literal) => {
        core::arch::global_asm!(
            ".section .text.spin_site, \"ax\"",
            ".balign 8",
            ".global spin_site_loop",
            ".type spin_site_loop, %function",
            "spin_site_loop:",
            "    adrp x1, SPIN_SITE_QUIT",
            "    add  x1, x1, :lo12:SPIN_SITE_QUIT",
            "    adrp x2, SPIN_SITE_LAPS",
            "    add  x2, x2, :lo12:SPIN_SITE_LAPS",
            "    b    1f",
            // The window: IRQs unmasked from the `msr daifclr` to the `msr daifset` below. An
            // interrupt pending at the `msr daifclr` is taken before the next instruction, so
            // every interrupt of this loop returns to the site's first word (the entry word;
            // the landing pad when hardened) or, rarely, to a word after it. The `msr daifclr`
            // sits in the literal's high word: this test never writes the literal.
            ".balign 8",
            "spin_site_literal:",
            "    nop",              // literal, low word (never executed)
            "1:  msr  daifclr, #2", // literal, high word
            "spin_site:",           // the site's function address
            $pad,
            "    nop", // entry word: `mov x9, x30` since boot
            "    nop", // call word: `bl <trampoline>` when armed
            "    msr  daifset, #2",
            "    ldr  x0, [x2]",
            "    add  x0, x0, #1",
            "    str  x0, [x2]",
            "    ldr  x0, [x1]",
            "    cbz  x0, 1b",
            "    msr  daifclr, #2",
            "    ret",
            ".size spin_site_loop, . - spin_site_loop",
            // Registered like a `#[patchable]` function: the compiler's entry (its first prefix
            // NOP), in a section linked to the loop's (SHF_LINK_ORDER, as the compiler emits it),
            // so the linker keeps it with the code...
            ".pushsection __patchable_function_entries, \"awo\", %progbits, spin_site_loop",
            ".balign 8",
            ".quad spin_site_literal",
            ".popsection",
        );
    };
}

#[cfg(not(feature = "harden"))]
spin_site_asm!("");
#[cfg(feature = "harden")]
spin_site_asm!("    bti  c");

unsafe extern "C" {
    fn spin_site_loop();
    fn spin_site();
}

/// ... and the registry's record (no arguments).
#[used]
#[unsafe(link_section = ".patchbay.sites")]
static SITE: sites::SiteDesc = sites::SiteDesc {
    func: spin_site as *const (),
    name: "site_in_use::spin_site",
    arg_regs: 0,
};

fn spin(_: u64) {
    // SAFETY: the loop clobbers only x0-x2 (caller-saved) and returns with IRQs unmasked, as it
    // found them (normal context).
    unsafe { spin_site_loop() };
}

#[kernel_test]
fn an_entry_word_change_is_refused_while_another_cpu_sits_in_the_site() {
    let site = sites::by_name("site_in_use::spin_site").unwrap();
    assert_eq!(site.func, spin_site as *const () as u64);
    let at_boot = batch::state(site);
    let hash = text_hash();

    SPIN_SITE_QUIT.store(0, Ordering::Relaxed);
    smp::run_on(1, spin, 0).unwrap();
    ktest::wait_until("CPU 1 to spin in the site", 5, || {
        SPIN_SITE_LAPS.load(Ordering::Relaxed) > 100
    });

    // Taking the entry back to its compiled `nop` (`mov x9, x30` -> `nop`, outside the CMODX
    // set) is a stopped batch, retried while CPU 1 is interrupted inside the word being written
    // or right after it, then refused.
    let mut b = batch::Batch::new();
    b.unprepare(site);
    if patchbay_pure::harden::HARDENED {
        // The hardened site starts with `bti c`, so CPU 1 is interrupted *before* the entry
        // word, never inside or right after it: it fetches the new word after its exception
        // return (a context-synchronization event), so the stopped batch may go ahead.
        let stats = b.commit().unwrap();
        assert_eq!(stats.protocol, patchbay::patch::poke::Protocol::StopMachine);
        let laps = SPIN_SITE_LAPS.load(Ordering::Relaxed);
        ktest::wait_until("CPU 1 to spin in the site", 5, || {
            SPIN_SITE_LAPS.load(Ordering::Relaxed) > laps + 100
        });
        let mut b = batch::Batch::new();
        b.prepare(site);
        b.commit().unwrap();
        SPIN_SITE_QUIT.store(1, Ordering::Relaxed);
        ktest::wait_until("CPU 1 to be idle", 5, || smp::idle_cpu(1));
        assert_eq!(batch::state(site), at_boot);
        assert_eq!(text_hash(), BOOT_HASH.load(Ordering::Relaxed));
        return;
    }
    let err = b.commit().expect_err("CPU 1 is always inside the site");
    let PatchError::SiteInUse { cpu, addr } = err else {
        panic!("expected SiteInUse, got {err:?}");
    };
    assert_eq!(cpu, 1);
    assert_eq!(
        addr,
        site.entry(),
        "SiteInUse names {addr:#x}, not the entry word of the site at {:#x}",
        site.func
    );
    // Refused before any write: text and the engine's view are unchanged.
    assert_eq!(text_hash(), hash);
    assert_eq!(batch::state(site), at_boot);
    // The message says what happened and where.
    let msg = alloc::format!("{}", PatchError::SiteInUse { cpu, addr });
    assert!(msg.contains("CPU 1"), "{msg}");

    // CPU 1 leaves; the same change now succeeds, and `prepare` puts the boot state back.
    SPIN_SITE_QUIT.store(1, Ordering::Relaxed);
    ktest::wait_until("CPU 1 to be idle", 5, || smp::idle_cpu(1));
    let mut b = batch::Batch::new();
    b.unprepare(site);
    let stats = b.commit().unwrap();
    assert_eq!(stats.protocol, patchbay::patch::poke::Protocol::StopMachine);
    let mut b = batch::Batch::new();
    b.prepare(site);
    b.commit().unwrap();
    assert_eq!(batch::state(site), at_boot);
    assert_eq!(text_hash(), BOOT_HASH.load(Ordering::Relaxed));
}
