//! AArch64 glue: boot assembly, system-register wrappers, MMU, caches, PMU, exit paths.
//!
//! Every function here is small and documented; the logic it serves lives in the generic modules
//! and in `patchbay-pure`.

pub mod cache;
pub mod cpu;
pub mod harden;
pub mod mmu;
pub mod pmu;
pub mod psci;
pub mod semihosting;

// The boot entry (`_start`) and the exception vector table.
core::arch::global_asm!(
    include_str!("../../../boot/start.s"),
    harden = const patchbay_pure::harden::HARDENED as u8,
);
core::arch::global_asm!(include_str!("../../../boot/vectors.s"));
