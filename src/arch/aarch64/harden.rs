//! The hardened build's system-register half (`patchbay_pure::harden` has the rules and the
//! layouts): what the CPU implements, the boot's APIA key, the SCTLR_EL1 bits `boot/start.s`
//! sets, stripping signatures off return addresses, and the guarded text mapping.
//!
//! # When enforcement starts, and why there
//!
//! With `pac-ret`, a function signs x30 in its prologue (`paciasp`) and authenticates it before
//! returning (`autiasp`). Both are NOPs while SCTLR_EL1.EnIA is 0, so turning EnIA on (or
//! changing the key) inside a function that already ran its prologue would make its own
//! `autiasp` fail. `boot/start.s` therefore calls [`__patchbay_harden_boot`] — which returns
//! before enforcement begins — and sets the key and SCTLR_EL1.EnIA/BT1 in assembly, before the
//! first Rust function that will ever return. Secondary CPUs load the same key, and receive the
//! same SCTLR_EL1, in `secondary_entry` before their first Rust call.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use aarch64_cpu::registers::{TCR_EL1, Writeable};
use patchbay_pure::{
    harden::{CpuFeatures, Enforcement, HARDENED, KeySource, key_from_counter},
    pagetable::{Attrs, T0SZ},
};

/// This boot's APIA key { lo, hi }, read by `boot/start.s` (`PB_APIA_KEY_LOAD`) on every CPU.
#[unsafe(no_mangle)]
static __patchbay_apia_key: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// Did the key come from RNDR?
static KEY_FROM_RNDR: AtomicBool = AtomicBool::new(false);

/// What this CPU implements (ID_AA64PFR1_EL1, ID_AA64ISAR0/1/2_EL1, by encoding so the assembler
/// needs no extension enabled).
pub fn cpu() -> CpuFeatures {
    CpuFeatures::from_id_regs(
        crate::read_sysreg!(s3_0_c0_c4_1),
        crate::read_sysreg!(s3_0_c0_c6_0),
        crate::read_sysreg!(s3_0_c0_c6_1),
        crate::read_sysreg!(s3_0_c0_c6_2),
    )
}

/// One RNDR read (FEAT_RNG): `None` when the generator had no entropy (NZCV.Z set).
fn rndr() -> Option<u64> {
    let (v, ok): (u64, u64);
    // SAFETY: RNDR (s3_3_c2_c4_0) only returns a value and sets NZCV; called only when
    // ID_AA64ISAR0_EL1.RNDR says it exists.
    unsafe {
        core::arch::asm!("mrs {v}, s3_3_c2_c4_0", "cset {ok}, ne", v = out(reg) v,
            ok = out(reg) ok, options(nomem, nostack))
    };
    (ok != 0).then_some(v)
}

/// The boot CPU's half of turning enforcement on, called by `boot/start.s` with the MMU off,
/// .bss zeroed, EnIA still 0 (so this function's own `paciasp`/`autiasp` are NOPs): choose the
/// APIA key (RNDR if the CPU has FEAT_RNG, else mixed from the counter) and return the
/// SCTLR_EL1 bits the CPU can enforce, which the assembly sets after loading the key.
///
/// It also sets TCR_EL1.T0SZ to what `mmu::enable` will program: the position of the
/// authentication code in a pointer depends on it (bits 54 down to 64 - T0SZ), MMU on or off,
/// so a return address signed before the MMU is turned on (by `__patchbay_early_main` and the
/// functions under it) must meet the same T0SZ when it is authenticated after.
#[unsafe(no_mangle)]
extern "C" fn __patchbay_harden_boot() -> u64 {
    // The MMU is off: TCR_EL1 does not translate anything yet; start.s's ISB publishes it.
    TCR_EL1.write(TCR_EL1::T0SZ.val(T0SZ));
    let cpu = cpu();
    if cpu.pauth {
        let random = if cpu.rng { rndr().zip(rndr()) } else { None };
        let key = match random {
            Some((lo, hi)) => [lo, hi],
            None => key_from_counter(crate::read_sysreg!(cntpct_el0)),
        };
        __patchbay_apia_key[0].store(key[0], Ordering::Relaxed);
        __patchbay_apia_key[1].store(key[1], Ordering::Relaxed);
        KEY_FROM_RNDR.store(random.is_some(), Ordering::Relaxed);
    }
    cpu.sctlr_bits()
}

/// What this boot enforces (the banner line), `None` in the plain build.
pub fn enforcement() -> Option<Enforcement> {
    HARDENED.then(|| Enforcement {
        cpu: cpu(),
        key: if KEY_FROM_RNDR.load(Ordering::Relaxed) {
            KeySource::Rndr
        } else {
            KeySource::Counter
        },
    })
}

/// How kernel text and the trampoline pools are mapped: guarded (GP) in the hardened build on a
/// CPU with FEAT_BTI, so indirect branches into them must land on a landing pad.
pub fn text_attrs() -> Attrs {
    if HARDENED && cpu().bti {
        Attrs::GUARDED_TEXT
    } else {
        Attrs::TEXT
    }
}

/// `addr` without a pointer-authentication code (XPACLRI: a NOP without FEAT_PAuth, so this is
/// safe on every CPU and in the plain build, where return addresses are never signed).
pub fn strip_pac(addr: u64) -> u64 {
    let out: u64;
    // SAFETY: XPACLRI only rewrites x30, which is declared clobbered (in and out).
    unsafe {
        core::arch::asm!("xpaclri", inout("x30") addr => out, options(nomem, nostack, preserves_flags))
    };
    out
}
