//! A stopped change is refused with `PatchError::SiteInUse` when another CPU keeps being
//! interrupted between two words it writes (src/patch/poke.rs, `write_stopped`), goes ahead when
//! that CPU only sits at one written word, and succeeds once it leaves.
//!
//! The site is this test's own: an assembly loop registered like a `#[patchable]` function
//! (`.patchbay.sites` + `__patchable_function_entries`) whose literal's high word and entry words
//! are *inside* the loop, which takes interrupts only there: the `msr daifclr` in the literal's
//! high word unmasks them, so a pending interrupt is taken right after it, at the site's first
//! word (the entry word `mov x9, x30` since boot, or the hardened build's `bti c`). CPU 1 spins in
//! it, so every stop finds it there.
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use patchbay::{
    kernel_test, ktest,
    patch::{
        PatchError, batch,
        poke::{self, Protocol, Width, Write},
        sites,
        text::text_hash,
    },
    smp,
};
use patchbay_pure::insn;

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

/// `msr daifclr, #2` (unmask IRQs): the loop's literal high word, as assembled above.
const MSR_DAIFCLR_IRQ: u32 = 0xd503_42ff;
/// `msr daifclr, #3` (unmask IRQs and FIQs, which are never routed): the same loop, a new word.
const MSR_DAIFCLR_IRQ_FIQ: u32 = 0xd503_43ff;

/// The change the test makes: the literal's high word (`msr daifclr, #2` -> `#3`, executed by
/// the loop) and the site's first word (`mov x9, x30` since boot, or the hardened build's
/// `bti c`, -> `nop`), the second executed right after the first: a pair outside the CMODX set,
/// written under stop-the-world. `back` gives the change that undoes it.
fn change(site: &sites::Site<'_>, back: bool) -> [Write; 2] {
    let literal = poke::read(site.literal(), Width::Literal);
    let first = poke::read(site.func, Width::Insn) as u32;
    let (low, high) = (literal & 0xffff_ffff, literal >> 32);
    let with = |word: u32| low | (u64::from(word) << 32);
    if back {
        [
            Write::literal(site.literal(), literal, with(MSR_DAIFCLR_IRQ)),
            Write::insn(site.func, insn::NOP, FIRST_WORD.load(Ordering::Relaxed)),
        ]
    } else {
        assert_eq!(high as u32, MSR_DAIFCLR_IRQ, "the loop's literal high word");
        FIRST_WORD.store(first, Ordering::Relaxed);
        [
            Write::literal(site.literal(), literal, with(MSR_DAIFCLR_IRQ_FIQ)),
            Write::insn(site.func, first, insn::NOP),
        ]
    }
}

/// The site's first word before the change.
static FIRST_WORD: AtomicU32 = AtomicU32::new(0);

#[kernel_test]
fn a_torn_pair_is_refused_while_another_cpu_sits_between_its_words() {
    let site = sites::by_name("site_in_use::spin_site").unwrap();
    assert_eq!(site.func, spin_site as *const () as u64);
    let at_boot = batch::state(site);
    let hash = text_hash();

    SPIN_SITE_QUIT.store(0, Ordering::Relaxed);
    smp::run_on(1, spin, 0).unwrap();
    ktest::wait_until("CPU 1 to spin in the site", 5, || {
        SPIN_SITE_LAPS.load(Ordering::Relaxed) > 100
    });

    // CPU 1 is interrupted at the site's first word, having just executed the literal's high
    // word: both are written, so resuming there could pair the old `msr` with the new first
    // word. Every stop finds it there: retried, then refused.
    let mut writes = change(site, false);
    let err = poke::apply_phases(&mut [&mut writes[..]], Protocol::StopMachine)
        .expect_err("CPU 1 is always between the two words");
    let PatchError::SiteInUse { cpu, addr } = err else {
        panic!("expected SiteInUse, got {err:?}");
    };
    assert_eq!(cpu, 1);
    assert_eq!(
        addr, site.func,
        "SiteInUse names {addr:#x}, not the site's first word {:#x}",
        site.func
    );
    // Refused before any write: text and the engine's view are unchanged.
    assert_eq!(text_hash(), hash);
    assert_eq!(batch::state(site), at_boot);
    // The message says what happened and where.
    let msg = alloc::format!("{}", PatchError::SiteInUse { cpu, addr });
    assert!(
        msg.contains("CPU 1") && msg.contains("between words"),
        "{msg}"
    );

    // Each word alone is no torn pair: taking the entry back to its compiled `nop` (a single
    // non-CMODX-safe word, which CPU 1 fetches anew when it resumes at it) goes ahead while CPU
    // 1 still spins, and `prepare` puts the boot state back.
    let laps = SPIN_SITE_LAPS.load(Ordering::Relaxed);
    let mut b = batch::Batch::new();
    b.unprepare(site);
    assert_eq!(b.commit().unwrap().protocol, Protocol::StopMachine);
    let mut b = batch::Batch::new();
    b.prepare(site);
    assert_eq!(b.commit().unwrap().protocol, Protocol::StopMachine);
    assert_eq!(batch::state(site), at_boot);
    ktest::wait_until("CPU 1 to spin on", 5, || {
        SPIN_SITE_LAPS.load(Ordering::Relaxed) > laps + 100
    });

    // CPU 1 leaves; the pair now goes ahead, and its reverse puts the boot bytes back.
    SPIN_SITE_QUIT.store(1, Ordering::Relaxed);
    ktest::wait_until("CPU 1 to be idle", 5, || smp::idle_cpu(1));
    let mut writes = change(site, false);
    poke::apply_phases(&mut [&mut writes[..]], Protocol::StopMachine).unwrap();
    assert_eq!(poke::read(site.func, Width::Insn) as u32, insn::NOP);
    let mut writes = change(site, true);
    poke::apply_phases(&mut [&mut writes[..]], Protocol::StopMachine).unwrap();
    assert_eq!(batch::state(site), at_boot);
    assert_eq!(text_hash(), BOOT_HASH.load(Ordering::Relaxed));
}
