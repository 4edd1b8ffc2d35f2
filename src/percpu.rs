//! Per-CPU data, sized for [`MAX_CPUS`] from the start.
//!
//! TPIDR_EL1 holds the current CPU's `PerCpu` address, so [`this`] is one `mrs` and a load.
//! Only the boot CPU runs today; SMP bring-up will initialise the other slots the same way.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// CPUs the per-CPU data, stacks, poke slots and shadow stacks are sized for (linker.ld
/// `MAX_CPUS` must agree). Defined here, at the bottom, so that `memory` and everything above
/// can size per-CPU things from it.
pub const MAX_CPUS: usize = 8;

#[repr(C, align(64))]
pub struct PerCpu {
    /// Logical CPU number (index into [`CPUS`]).
    pub id: u32,
    /// Fatal-exception nesting depth on this CPU (a fault while reporting a fault).
    pub fatal_depth: AtomicU32,
    /// Exceptions taken on this CPU (all kinds).
    pub exceptions: AtomicU64,
    /// Nonzero while a tracing handler runs on this CPU (the recursion guard, `trace::recursion`;
    /// 64-bit so the trampolines can mark it with the pointer they hold).
    pub trace_depth: AtomicU64,
    /// Traced calls made from inside a handler, refused by the guard.
    pub trace_recursions: AtomicU64,
}

impl PerCpu {
    const fn new(id: u32) -> Self {
        PerCpu {
            id,
            fatal_depth: AtomicU32::new(0),
            exceptions: AtomicU64::new(0),
            trace_depth: AtomicU64::new(0),
            trace_recursions: AtomicU64::new(0),
        }
    }
}

pub static CPUS: [PerCpu; MAX_CPUS] = {
    let mut a = [const { PerCpu::new(0) }; MAX_CPUS];
    let mut i = 0;
    while i < MAX_CPUS {
        a[i] = PerCpu::new(i as u32);
        i += 1;
    }
    a
};

/// Point TPIDR_EL1 at CPU `id`'s data.
///
/// # Safety
/// Call on CPU `id` itself, once, during its bring-up.
pub unsafe fn init(id: usize) {
    let p = &CPUS[id] as *const PerCpu as u64;
    // SAFETY: TPIDR_EL1 is a software thread-ID register reserved for this use; nothing else
    // interprets it.
    unsafe { crate::write_sysreg!(tpidr_el1, p) };
}

/// This CPU's data.
pub fn this() -> &'static PerCpu {
    let p = crate::read_sysreg!(tpidr_el1);
    if p == 0 {
        // Before `init` (very early boot): the boot CPU.
        return &CPUS[0];
    }
    // SAFETY: `init` stored the address of an element of the static `CPUS`.
    unsafe { &*(p as *const PerCpu) }
}

/// Number of exceptions taken so far on this CPU.
pub fn exceptions() -> u64 {
    this().exceptions.load(Ordering::Relaxed)
}

/// CPUs brought up so far (only the boot CPU until SMP bring-up exists).
static ONLINE: AtomicU32 = AtomicU32::new(1);

/// Number of CPUs running kernel code.
pub fn online() -> u32 {
    ONLINE.load(Ordering::Relaxed)
}
