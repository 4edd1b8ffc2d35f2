//! Cache maintenance primitives. Line sizes always come from CTR_EL0, never constants.
//!
//! The text-modification sequence built from these lives in `patch::maintenance`; this file only
//! wraps single instructions.

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
    // SAFETY: cleaning a line writes back dirty data and loses nothing.
    unsafe { core::arch::asm!("dc cvau, {}", in(reg) addr, options(nostack, preserves_flags)) };
}

/// `IC IVAU` on the line holding `addr`: invalidate instruction-cache lines to the point of
/// unification (broadcast to the inner shareable domain).
#[inline(always)]
pub fn ic_ivau(addr: u64) {
    // SAFETY: invalidating I-cache lines only forces refetches.
    unsafe { core::arch::asm!("ic ivau, {}", in(reg) addr, options(nostack, preserves_flags)) };
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
