//! PSCI calls (Arm DEN0022): power off the system when semihosting is absent.
//!
//! The conduit (HVC or SMC) is whatever the DTB's `/psci` node says: QEMU `virt` uses HVC when
//! the guest starts at EL1 and SMC when it starts at EL2 (`virtualization=on`).

use core::sync::atomic::{AtomicU8, Ordering};

const SYSTEM_OFF: u64 = 0x8400_0008;

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

/// PSCI SYSTEM_OFF. Returns only if there is no PSCI implementation.
pub fn system_off() {
    match conduit() {
        // SAFETY: a PSCI call with the SYSTEM_OFF function id; it does not return on success
        // and clobbers only x0-x3 (SMCCC), which we declare.
        Conduit::Hvc => unsafe {
            core::arch::asm!("hvc #0", inout("x0") SYSTEM_OFF => _, out("x1") _, out("x2") _,
                out("x3") _, options(nostack))
        },
        // SAFETY: as above, through the secure monitor conduit.
        Conduit::Smc => unsafe {
            core::arch::asm!("smc #0", inout("x0") SYSTEM_OFF => _, out("x1") _, out("x2") _,
                out("x3") _, options(nostack))
        },
        Conduit::None => {}
    }
}
