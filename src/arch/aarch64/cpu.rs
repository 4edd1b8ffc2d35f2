//! System-register access and barriers.
//!
//! `read_sysreg!`/`write_sysreg!` cover registers that aarch64-cpu does not wrap (PMU, CTR_EL0)
//! and keep every access a one-line, reviewable `mrs`/`msr`.

/// Read a system register by name: `read_sysreg!(ctr_el0)`.
#[macro_export]
macro_rules! read_sysreg {
    ($reg:ident) => {{
        let v: u64;
        // SAFETY: reading this system register has no side effects and touches no memory.
        #[allow(unused_unsafe)]
        unsafe {
            core::arch::asm!(concat!("mrs {}, ", stringify!($reg)), out(reg) v,
                options(nomem, nostack, preserves_flags))
        };
        v
    }};
}

/// Write a system register by name. The caller's `unsafe` block states why the write is sound.
#[macro_export]
macro_rules! write_sysreg {
    ($reg:ident, $val:expr) => {{
        let v: u64 = $val;
        core::arch::asm!(concat!("msr ", stringify!($reg), ", {}"), in(reg) v,
            options(nostack, preserves_flags))
    }};
}

/// Instruction synchronization barrier: later instructions see the effects of earlier
/// system-register writes and cache/TLB maintenance (context synchronization).
#[inline(always)]
pub fn isb() {
    // SAFETY: a barrier has no memory or register effects visible to Rust.
    unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
}

/// Data synchronization barrier, inner shareable: earlier memory accesses and maintenance
/// operations complete for every PE in the inner shareable domain before execution continues.
#[inline(always)]
pub fn dsb_ish() {
    // SAFETY: as above.
    unsafe { core::arch::asm!("dsb ish", options(nostack, preserves_flags)) };
}

/// DSB ISHST: earlier *stores* (e.g. a descriptor) are complete and visible to the
/// inner-shareable domain, including the table walkers.
#[inline(always)]
pub fn dsb_ishst() {
    // SAFETY: as above.
    unsafe { core::arch::asm!("dsb ishst", options(nostack, preserves_flags)) };
}

/// DSB NSH: local completion (for maintenance that only concerns this PE).
#[inline(always)]
pub fn dsb_nsh() {
    // SAFETY: as above.
    unsafe { core::arch::asm!("dsb nsh", options(nostack, preserves_flags)) };
}

/// The EL we run at now (1 after boot).
pub fn current_el() -> u8 {
    ((read_sysreg!(CurrentEL) >> 2) & 3) as u8
}

pub fn midr() -> u64 {
    read_sysreg!(midr_el1)
}

pub fn mpidr() -> u64 {
    read_sysreg!(mpidr_el1)
}

/// Mask IRQ/FIQ/SError/debug, returning the previous DAIF for [`restore_daif`].
#[inline(always)]
pub fn mask_all() -> u64 {
    let daif = read_sysreg!(daif);
    // SAFETY: masking interrupts at EL1 is always permitted and affects only this PE.
    unsafe {
        core::arch::asm!(
            "msr daifset, #0xf",
            options(nomem, nostack, preserves_flags)
        )
    };
    daif
}

/// Unmask IRQs on this PE (FIQ stays masked: patchbay routes nothing to FIQ, and one would be
/// reported as fatal anyway).
#[inline(always)]
pub fn irq_enable() {
    // SAFETY: unmasking IRQs at EL1 affects only this PE; the vectors are installed.
    unsafe { core::arch::asm!("msr daifclr, #2", options(nomem, nostack, preserves_flags)) };
}

/// Restore DAIF saved by [`mask_all`].
#[inline(always)]
pub fn restore_daif(daif: u64) {
    // SAFETY: restores a value read from DAIF on this PE.
    unsafe { write_sysreg!(daif, daif) };
}

/// `SEV`: send an event to every PE, waking those waiting in `WFE` (a spin-table's pollers).
#[inline(always)]
pub fn sev() {
    // SAFETY: SEV only sets the event register of every PE.
    unsafe { core::arch::asm!("sev", options(nomem, nostack, preserves_flags)) };
}

/// `YIELD`: the body of a loop waiting for another CPU. A hint on hardware; QEMU running the
/// vCPUs round-robin in one thread (icount) switches to the next vCPU, so the one waited for
/// runs now instead of when this one's time slice ends (`core::hint::spin_loop` emits `ISB` on
/// AArch64, which QEMU does not treat as a yield).
#[inline(always)]
pub fn relax() {
    // SAFETY: YIELD only hints.
    unsafe { core::arch::asm!("yield", options(nomem, nostack, preserves_flags)) };
}

/// `WFI`: wait (low power) until an interrupt is pending; with IRQs unmasked it is then taken.
#[inline(always)]
pub fn wfi() {
    // SAFETY: WFI only waits.
    unsafe { core::arch::asm!("wfi", options(nomem, nostack, preserves_flags)) };
}

/// Park this PE forever (low power).
pub fn halt() -> ! {
    loop {
        // SAFETY: WFE only waits for an event.
        unsafe { core::arch::asm!("wfe", options(nomem, nostack, preserves_flags)) };
    }
}

/// Human name of a MIDR implementer/part pair, for the banner.
pub fn cpu_name(midr: u64) -> &'static str {
    let implementer = (midr >> 24) & 0xff;
    let part = (midr >> 4) & 0xfff;
    match (implementer, part) {
        (0x41, 0xd03) => "Cortex-A53",
        (0x41, 0xd04) => "Cortex-A35",
        (0x41, 0xd05) => "Cortex-A55",
        (0x41, 0xd07) => "Cortex-A57",
        (0x41, 0xd08) => "Cortex-A72",
        (0x41, 0xd09) => "Cortex-A73",
        (0x41, 0xd0b) => "Cortex-A76",
        (0x41, 0xd0c) => "Neoverse-N1",
        (0x41, 0xd40) => "Neoverse-V1",
        (0x41, 0xd49) => "Neoverse-N2",
        (0x00, 0x051) => "QEMU max",
        _ => "unknown CPU",
    }
}
