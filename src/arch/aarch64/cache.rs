//! Cache maintenance primitives. Line sizes always come from CTR_EL0, never constants.
//!
//! The text-modification sequence built from these lives in `patch::maintenance`; this file only
//! wraps single instructions.
//!
//! # The stale-I-cache model's hooks (`tools/icache-plugin`, README "Stale-I-cache model")
//!
//! * [`patchbay_icache_published`] marks the point where a change is *published*: every later
//!   execution of the changed lines, on any CPU, must follow that CPU's own context
//!   synchronization after the invalidation. The plugin watches that symbol's entry. The patch
//!   path calls it after the final ISB *and* after the kick of the other CPUs
//!   (`patch::poke::kick`), or after a stop-the-world released them; with one CPU online
//!   publication means nothing (the writing CPU's own ISB is always required) and it is not
//!   called.
//! * Test builds with the cargo feature `icache-teeth` drop one step of the sequence, chosen by
//!   the boot argument `icache.break=` (see [`teeth`]), so `make test-icache` can check that the
//!   model catches each. Without the feature the primitives are the plain instructions.

use patchbay_pure::cache::Ctr;

/// CTR_EL0, decoded.
pub fn ctr() -> Ctr {
    Ctr(crate::read_sysreg!(ctr_el0))
}

/// `DC IVAC` over `[start, end)`: invalidate data-cache lines to the point of coherency.
///
/// Used once at boot on memory written while the D-cache was off (the translation tables), so
/// that no stale line can shadow it once the walker and the kernel access it cacheably.
///
/// # Safety
/// The range must not hold dirty data anyone still needs (invalidation discards it).
pub unsafe fn invalidate_dcache_range(start: u64, end: u64) {
    let line = ctr().dcache_line();
    let mut a = start & !(line - 1);
    while a < end {
        // SAFETY: the caller guarantees that discarding these lines loses nothing.
        unsafe { core::arch::asm!("dc ivac, {}", in(reg) a, options(nostack, preserves_flags)) };
        a += line;
    }
    // The invalidations must complete before the memory is used.
    super::cpu::dsb_ish();
}

/// `DC CVAU` on the line holding `addr`: clean to the point of unification, so the instruction
/// side can see data written through the D-cache.
#[inline(always)]
pub fn dc_cvau(addr: u64) {
    #[cfg(feature = "icache-teeth")]
    let Some(addr) = teeth::line(teeth::Step::DcCvau, addr) else {
        return;
    };
    // SAFETY: cleaning a line writes back dirty data and loses nothing.
    unsafe { core::arch::asm!("dc cvau, {}", in(reg) addr, options(nostack, preserves_flags)) };
}

/// `IC IVAU` on the line holding `addr`: invalidate instruction-cache lines to the point of
/// unification (broadcast to the inner shareable domain).
#[inline(always)]
pub fn ic_ivau(addr: u64) {
    #[cfg(feature = "icache-teeth")]
    let Some(addr) = teeth::line(teeth::Step::IcIvau, addr) else {
        return;
    };
    // SAFETY: invalidating I-cache lines only forces refetches.
    unsafe { core::arch::asm!("ic ivau, {}", in(reg) addr, options(nostack, preserves_flags)) };
}

/// `IC IALLUIS`: invalidate every instruction cache in the Inner Shareable domain to the point
/// of unification (broadcast).
#[inline(always)]
pub fn ic_ialluis() {
    #[cfg(feature = "icache-teeth")]
    if teeth::skip_ialluis() {
        return;
    }
    // SAFETY: invalidating I-cache lines only forces refetches.
    unsafe { core::arch::asm!("ic ialluis", options(nostack, preserves_flags)) };
}

/// `IC IALLU`: invalidate this PE's whole instruction cache (boot only).
pub fn ic_iallu() {
    // SAFETY: as above.
    unsafe { core::arch::asm!("ic iallu", options(nostack, preserves_flags)) };
}

/// `DC CVAC` over `[start, end)`: clean data-cache lines to the point of coherency, so that an
/// observer that does not look in the caches (a CPU with its MMU and caches still off) reads
/// what was written through them. Completes with a DSB SY: the cleaned data must be in memory
/// before anything that follows, including an `SEV` that wakes such an observer.
pub fn clean_dcache_range_poc(start: u64, end: u64) {
    let line = ctr().dcache_line();
    let mut a = start & !(line - 1);
    while a < end {
        // SAFETY: cleaning a line writes back dirty data and loses nothing.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) a, options(nostack, preserves_flags)) };
        a += line;
    }
    // The cleans must complete (reach memory) before any later access or event (ARM ARM: DC
    // completion is only guaranteed by a DSB); full system, since the reader is not coherent.
    // SAFETY: a barrier has no effects visible to Rust.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// `DSB ISH` of the text-modification sequence: the cleans (first) or the invalidations
/// (second) complete for every PE in the inner shareable domain before execution continues.
#[inline(always)]
pub fn dsb_ish_maintenance() {
    #[cfg(feature = "icache-teeth")]
    if teeth::skip_dsb() {
        return;
    }
    super::cpu::dsb_ish();
}

/// The sequence's final `ISB`: this PE refetches everything after it.
#[inline(always)]
pub fn isb_sequence() {
    #[cfg(feature = "icache-teeth")]
    if teeth::skip_isb() {
        return;
    }
    // SAFETY: a barrier has no memory or register effects visible to Rust.
    unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
}

/// The publication mark for the stale-I-cache model (see the module documentation): the plugin
/// watches the entry of this function, by its symbol `patchbay_icache_published`. Only a patch
/// made while other CPUs are online calls it (the patch path's kick or stop-the-world), so a
/// single CPU pays nothing; with more, a call and a return.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn patchbay_icache_published() {
    // SAFETY: an empty asm statement emits nothing and touches nothing; it only keeps the call
    // (a function without effects could be dropped by the optimizer).
    unsafe { core::arch::asm!("", options(nostack, preserves_flags)) };
}

/// Test-only breakage of the text-modification sequence, for the stale-I-cache model's own
/// tests (`make test-icache`). Built only with the cargo feature `icache-teeth`; the step to drop
/// comes from the boot argument `icache.break=` (`patch::maintenance` passes it to [`select`]):
///
/// | value | effect |
/// |---|---|
/// | `dc-cvau` | no `DC CVAU` |
/// | `dsb1` | no `DSB ISH` between the cleans and the invalidations |
/// | `ic-ivau` | no `IC IVAU` |
/// | `dsb2` | no `DSB ISH` after the invalidations |
/// | `isb` | no final `ISB` |
/// | `off-by-one` | clean and invalidate the line *after* each one written |
/// | `ialluis` | no `IC IALLUIS` (the pass over very many lines) |
/// | `kick` | no kick of the other CPUs before the publication mark (`patch::poke::kick`) |
#[cfg(feature = "icache-teeth")]
pub mod teeth {
    use core::sync::atomic::{AtomicU8, Ordering};

    #[derive(Clone, Copy, PartialEq, Eq)]
    #[repr(u8)]
    pub enum Step {
        None = 1,
        DcCvau,
        Dsb1,
        IcIvau,
        Dsb2,
        Isb,
        OffByOne,
        IcIalluis,
        Kick,
    }

    /// The step to drop, parsed once by [`select`] (0: not yet).
    static STEP: AtomicU8 = AtomicU8::new(0);
    /// DSBs of the current pass so far: the first completes the cleans, the second the
    /// invalidations; the final ISB resets it.
    static DSBS: AtomicU8 = AtomicU8::new(0);

    const STEPS: [Step; 9] = [
        Step::None,
        Step::DcCvau,
        Step::Dsb1,
        Step::IcIvau,
        Step::Dsb2,
        Step::Isb,
        Step::OffByOne,
        Step::IcIalluis,
        Step::Kick,
    ];

    fn step() -> Step {
        let selected = STEP.load(Ordering::Relaxed);
        STEPS
            .iter()
            .copied()
            .find(|s| *s as u8 == selected)
            .unwrap_or(Step::None)
    }

    /// Select the step to drop from the value of the boot argument `icache.break` (the patch
    /// layer passes it: this layer cannot read boot arguments); only the first call counts.
    pub fn select(arg: Option<&str>) {
        if STEP.load(Ordering::Relaxed) != 0 {
            return;
        }
        let s = match arg {
            Some("dc-cvau") => Step::DcCvau,
            Some("dsb1") => Step::Dsb1,
            Some("ic-ivau") => Step::IcIvau,
            Some("dsb2") => Step::Dsb2,
            Some("isb") => Step::Isb,
            Some("off-by-one") => Step::OffByOne,
            Some("ialluis") => Step::IcIalluis,
            Some("kick") => Step::Kick,
            Some(other) => panic!("icache.break={other}: unknown step"),
            None => Step::None,
        };
        STEP.store(s as u8, Ordering::Relaxed);
    }

    /// The line a `DC CVAU` / `IC IVAU` (`op`) of `addr` really maintains; `None`: dropped.
    pub fn line(op: Step, addr: u64) -> Option<u64> {
        match step() {
            s if s == op => None,
            Step::OffByOne => {
                let ctr = super::ctr();
                Some(addr + ctr.dcache_line().max(ctr.icache_line()))
            }
            _ => Some(addr),
        }
    }

    pub fn skip_dsb() -> bool {
        let n = DSBS.fetch_add(1, Ordering::Relaxed);
        matches!((step(), n), (Step::Dsb1, 0) | (Step::Dsb2, 1))
    }

    pub fn skip_isb() -> bool {
        DSBS.store(0, Ordering::Relaxed);
        step() == Step::Isb
    }

    pub fn skip_ialluis() -> bool {
        step() == Step::IcIalluis
    }

    pub fn skip_kick() -> bool {
        step() == Step::Kick
    }
}
