//! PMU cycle counter (PMCCNTR_EL0) and the generic-timer counter (CNTVCT_EL0).
//!
//! aarch64-cpu does not wrap the PMU registers; these few accessors are all patchbay needs.
//! Under QEMU with `-icount shift=0,align=off,sleep=off`, PMCCNTR_EL0 advances by exactly one per
//! retired instruction; without icount it follows host time; on hardware it counts cycles.

use super::cpu::isb;

/// PMCR_EL0 bits.
const PMCR_E: u64 = 1 << 0; // enable the counters
const PMCR_C: u64 = 1 << 2; // reset the cycle counter
const PMCR_LC: u64 = 1 << 6; // the cycle counter overflows at 64 bits, not 32
/// PMCNTENSET_EL0.C: enable the cycle counter.
const PMCNTENSET_C: u64 = 1 << 31;

/// Is a PMUv3 implemented (ID_AA64DFR0_EL1.PMUVer not 0 and not 0xF)?
pub fn pmu_present() -> bool {
    let ver = (crate::read_sysreg!(id_aa64dfr0_el1) >> 8) & 0xf;
    ver != 0 && ver != 0xf
}

/// Number of event counters besides the cycle counter (PMCR_EL0.N).
pub fn event_counters() -> u64 {
    (crate::read_sysreg!(pmcr_el0) >> 11) & 0x1f
}

/// Enable and reset the cycle counter, counting at EL1 and EL0.
///
/// # Safety
/// Must only be called when [`pmu_present`]; reconfigures the PMU for the whole PE.
pub unsafe fn enable_cycle_counter() {
    // SAFETY: PMU registers exist (caller) and EL2 does not trap them (boot.s clears MDCR_EL2.TPM).
    unsafe {
        // PMCCFILTR_EL0 = 0: count at EL1 and EL0 (P = U = 0), not at EL2 (NSH = 0).
        crate::write_sysreg!(pmccfiltr_el0, 0);
        crate::write_sysreg!(pmcntenset_el0, PMCNTENSET_C);
        let pmcr = crate::read_sysreg!(pmcr_el0);
        crate::write_sysreg!(pmcr_el0, pmcr | PMCR_E | PMCR_C | PMCR_LC);
    }
    // The enable must take effect before the first read.
    isb();
}

/// Read PMCCNTR_EL0, fenced by ISB on both sides so the read is neither hoisted above earlier
/// instructions nor overtaken by later ones (the counter read is not otherwise ordered).
#[inline(always)]
pub fn read_cycles_fenced() -> u64 {
    let v: u64;
    // SAFETY: reads a counter the kernel enabled; ISBs only order execution.
    unsafe {
        core::arch::asm!("isb", "mrs {}, pmccntr_el0", "isb", out(reg) v,
            options(nomem, nostack, preserves_flags))
    };
    v
}

/// PMCCNTR_EL0 ticks across a straight run of `N` NOPs, between ISB-fenced reads (read cost
/// included). Under QEMU with `-icount shift=0` this is exactly `N` plus a constant; on a core
/// it is cycles, which for NOPs on a multi-issue core is far fewer than `N`.
#[inline(always)]
pub fn cycles_across_nops<const N: usize>() -> u64 {
    let (a, b): (u64, u64);
    // SAFETY: reads a counter the kernel enabled; the NOPs and ISBs have no effect on state.
    unsafe {
        core::arch::asm!(
            "isb", "mrs {a}, pmccntr_el0", "isb",
            ".rept {n}", "nop", ".endr",
            "isb", "mrs {b}, pmccntr_el0", "isb",
            a = out(reg) a, b = out(reg) b, n = const N,
            options(nomem, nostack, preserves_flags))
    };
    b.wrapping_sub(a)
}

/// Read CNTVCT_EL0 (the generic timer's virtual count), ISB-fenced likewise.
#[inline(always)]
pub fn read_cntvct_fenced() -> u64 {
    let v: u64;
    // SAFETY: CNTVCT_EL0 is always readable at EL1; ISBs only order execution.
    unsafe {
        core::arch::asm!("isb", "mrs {}, cntvct_el0", "isb", out(reg) v,
            options(nomem, nostack, preserves_flags))
    };
    v
}

/// Generic timer frequency in Hz.
pub fn counter_frequency() -> u64 {
    crate::read_sysreg!(cntfrq_el0)
}

/// Unfenced counter read for log timestamps.
pub fn cntvct() -> u64 {
    crate::read_sysreg!(cntvct_el0)
}

/// Make sure the PMU state is as expected after [`enable_cycle_counter`] (for tests).
pub fn cycle_counter_enabled() -> bool {
    crate::read_sysreg!(pmcntenset_el0) & PMCNTENSET_C != 0
        && crate::read_sysreg!(pmcr_el0) & PMCR_E != 0
}
