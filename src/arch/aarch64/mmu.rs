//! Turning the MMU on, and the TLB maintenance for changing live translations.
//!
//! The tables themselves are built by `memory.rs` with `patchbay_pure::pagetable`.

use aarch64_cpu::registers::{
    ID_AA64MMFR0_EL1, MAIR_EL1, ReadWriteable, Readable, SCTLR_EL1, TCR_EL1, TTBR0_EL1, Writeable,
};
use patchbay_pure::pagetable::{MAIR, T0SZ};

use super::cpu::{dsb_ish, dsb_ishst, dsb_nsh, isb};

/// Program MAIR/TCR/TTBR0 and enable the MMU with caches and SCTLR_EL1.WXN.
///
/// # Safety
/// `root` must be a complete translation table that identity-maps all code and data in use
/// (including this function and the current stack), already written to memory.
pub unsafe fn enable(root: u64) {
    MAIR_EL1.set(MAIR);
    // Output address size: what the CPU supports, capped at 48 bits (4 KiB granule limit).
    let pa_range = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange).min(0b101);
    TCR_EL1.write(
        TCR_EL1::T0SZ.val(T0SZ)
            + TCR_EL1::TG0::KiB_4
            + TCR_EL1::SH0::Inner
            + TCR_EL1::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::EPD1::DisableTTBR1Walks
            + TCR_EL1::IPS.val(pa_range),
    );
    TTBR0_EL1.set_baddr(root);

    // The table stores must be complete before the walker can use them, and the register writes
    // above must take effect before the TLB invalidation that follows.
    dsb_ish();
    isb();
    // Discard any translations cached before we owned the MMU (firmware, a previous boot), and
    // any instructions fetched with the MMU off, so nothing stale survives the switch.
    // SAFETY: invalidating this PE's EL1 TLB entries and I-cache only forces refetches.
    unsafe {
        core::arch::asm!(
            "tlbi vmalle1",
            "ic iallu",
            options(nostack, preserves_flags)
        )
    };
    dsb_nsh();
    isb();

    // M: MMU on. C, I: data and instruction caches on. WXN: any writable mapping is execute-never,
    // so W^X holds even if a descriptor were wrong. SA: SP alignment checking.
    SCTLR_EL1.modify(
        SCTLR_EL1::M::Enable
            + SCTLR_EL1::C::Cacheable
            + SCTLR_EL1::I::Cacheable
            + SCTLR_EL1::WXN::Enable
            + SCTLR_EL1::SA::Enable
            + SCTLR_EL1::A::Disable,
    );
    // The MMU-on write must be visible before the next instruction fetch.
    isb();
}

/// Make a newly written (previously invalid) descriptor visible to this PE's table walker.
/// No TLB invalidation is needed: an invalid entry is never cached in a TLB.
pub fn publish_new_entry() {
    // The descriptor store must complete before a walk can observe it...
    dsb_ishst();
    // ...and no later instruction may have been translated with the old view.
    isb();
}

/// Remove the translation for one page everywhere after its descriptor was invalidated.
pub fn flush_page(va: u64) {
    // The invalidating store must be visible before the TLB maintenance.
    dsb_ishst();
    // SAFETY: invalidating TLB entries for one VA (all ASIDs, last level, inner shareable) only
    // forces new walks.
    unsafe {
        core::arch::asm!("tlbi vaale1is, {}", in(reg) va >> 12, options(nostack, preserves_flags))
    };
    // The invalidation must complete on every PE before the page can be reused...
    dsb_ish();
    // ...and this PE must not keep using a translation fetched before it.
    isb();
}

/// Ask the hardware how `va` translates for an EL1 access (`AT S1E1R`/`S1E1W`): `Ok(pa)` or
/// `Err(fault status code)`. Lets tests check permissions architecturally, not only in our tables.
pub fn probe(va: u64, write: bool) -> Result<u64, u8> {
    // SAFETY: AT only writes PAR_EL1; the ISB makes the result readable (it is a system
    // register write that needs context synchronization).
    unsafe {
        if write {
            core::arch::asm!("at s1e1w, {}", "isb", in(reg) va, options(nostack, preserves_flags));
        } else {
            core::arch::asm!("at s1e1r, {}", "isb", in(reg) va, options(nostack, preserves_flags));
        }
    }
    let par = crate::read_sysreg!(par_el1);
    if par & 1 != 0 {
        Err(((par >> 1) & 0x3f) as u8)
    } else {
        Ok((par & 0x0000_ffff_ffff_f000) | (va & 0xfff))
    }
}
