//! PSCI calls (Arm DEN0022): power off the system, power on a secondary CPU.
//!
//! The conduit (HVC or SMC) is whatever the DTB's `/psci` node says: QEMU `virt` uses HVC when
//! the guest starts at EL1 and SMC when it starts at EL2 (`virtualization=on`). Function IDs and
//! return codes are decoded in `patchbay_pure::psci`.

use core::sync::atomic::{AtomicU8, Ordering};

pub use patchbay_pure::psci::PsciError;
use patchbay_pure::psci::{self as spec, CPU_ON, MPIDR_AFFINITY_MASK, SYSTEM_OFF};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    None = 0,
    Hvc = 1,
    Smc = 2,
}

static CONDUIT: AtomicU8 = AtomicU8::new(Conduit::None as u8);

pub fn set_conduit(c: Conduit) {
    CONDUIT.store(c as u8, Ordering::Relaxed);
}

pub fn conduit() -> Conduit {
    match CONDUIT.load(Ordering::Relaxed) {
        1 => Conduit::Hvc,
        2 => Conduit::Smc,
        _ => Conduit::None,
    }
}

/// One SMCCC call with up to three arguments through the DTB's conduit; `None` without one.
fn call(function: u32, a1: u64, a2: u64, a3: u64) -> Option<u64> {
    let mut x0 = u64::from(function);
    match conduit() {
        // SAFETY: an SMCCC call into the hypervisor (QEMU's PSCI); it clobbers only x0-x3
        // (SMCCC v1.0, which PSCI 0.2+ follows), all declared.
        Conduit::Hvc => unsafe {
            core::arch::asm!("hvc #0", inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _,
                inout("x3") a3 => _, options(nostack))
        },
        // SAFETY: as above, through the secure monitor conduit.
        Conduit::Smc => unsafe {
            core::arch::asm!("smc #0", inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _,
                inout("x3") a3 => _, options(nostack))
        },
        Conduit::None => return None,
    }
    Some(x0)
}

/// PSCI SYSTEM_OFF. Returns only if there is no PSCI implementation.
pub fn system_off() {
    let _ = call(SYSTEM_OFF, 0, 0, 0);
}

/// PSCI CPU_ON: start the CPU with affinity `mpidr` at physical address `entry` with the MMU
/// off, `context` in x0, at the EL the kernel was entered at. `Err(NotSupported)` when the DTB
/// names no conduit.
pub fn cpu_on(mpidr: u64, entry: u64, context: u64) -> Result<(), PsciError> {
    match call(CPU_ON, mpidr & MPIDR_AFFINITY_MASK, entry, context) {
        Some(x0) => spec::result(x0),
        None => Err(PsciError::NotSupported),
    }
}
