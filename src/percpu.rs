//! Per-CPU data, sized for [`MAX_CPUS`] from the start.
//!
//! TPIDR_EL1 holds the current CPU's `PerCpu` address, so [`this`] is one `mrs` and a load.
//! Logical CPU numbers are the order of the DTB's `/cpus` nodes, the boot CPU first (it is the
//! DTB's first CPU on every board patchbay runs on); `smp` brings the others up and each one
//! calls [`init`] and [`mark_online`] on itself.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

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
    /// Nonzero while a tracing handler runs in this CPU's current context (the recursion guard,
    /// `trace::recursion`; 64-bit so the trampolines can mark it with the pointer they hold).
    /// Interrupt context has its own: [`PerCpu::enter_interrupt`] saves and clears it,
    /// [`PerCpu::exit_interrupt`] puts the interrupted context's back.
    pub trace_depth: AtomicU64,
    /// Traced calls made from inside a handler, refused by the guard.
    pub trace_recursions: AtomicU64,
    /// MPIDR_EL1 of the CPU running this slot, recorded by the CPU itself when it comes online.
    pub mpidr: AtomicU64,
    /// Set (release) by the CPU itself once it runs kernel code with its MMU, vectors and stacks.
    pub online: AtomicBool,
    /// Nonzero while this CPU runs an interrupt handler ([`PerCpu::enter_interrupt`], from
    /// `irq::handle`).
    pub irq_depth: AtomicU32,
    /// Interrupts taken on this CPU.
    pub irqs: AtomicU64,
    /// Where this CPU was interrupted last (ELR_EL1 of its latest IRQ; while it is parked by a
    /// stop-the-world, where it will resume).
    pub irq_elr: AtomicU64,
    /// Timer ticks taken on this CPU.
    pub ticks: AtomicU64,
    /// The address of this CPU's return-hook shadow stack (`trace::rethook`), set by tracing
    /// at boot before any site can be armed, so the hook paths find it with one load.
    pub shadow_stack: AtomicU64,
}

impl PerCpu {
    const fn new(id: u32) -> Self {
        PerCpu {
            id,
            fatal_depth: AtomicU32::new(0),
            exceptions: AtomicU64::new(0),
            trace_depth: AtomicU64::new(0),
            trace_recursions: AtomicU64::new(0),
            mpidr: AtomicU64::new(0),
            online: AtomicBool::new(false),
            irq_depth: AtomicU32::new(0),
            irqs: AtomicU64::new(0),
            irq_elr: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            shadow_stack: AtomicU64::new(0),
        }
    }
}

/// What an interrupt's entry took from the context it interrupted, given back at its exit.
#[must_use = "the interrupted context's recursion guard must be restored by exit_interrupt"]
pub struct Interrupted {
    trace_depth: u64,
}

impl PerCpu {
    /// Enter interrupt context on this CPU (the IRQ path, IRQs masked, before anything that can
    /// be traced): count the nesting and give interrupt context a recursion guard of its own —
    /// the interrupted context's is saved and this CPU's cleared. `trace::recursion` explains why
    /// this is Linux's per-context recursion bits.
    ///
    /// Plain loads and stores, not read-modify-write atomics: only this CPU touches these fields,
    /// and nothing can interrupt it here.
    #[inline(always)]
    pub fn enter_interrupt(&self) -> Interrupted {
        self.irq_depth.store(
            self.irq_depth.load(Ordering::Relaxed) + 1,
            Ordering::Relaxed,
        );
        let trace_depth = self.trace_depth.load(Ordering::Relaxed);
        // The test-only `guard-teeth` feature leaves the interrupted context's guard in place
        // (one guard for both contexts, the design this replaced), so that `make test-guard-teeth`
        // can check the interrupt-context test catches it.
        #[cfg(not(feature = "guard-teeth"))]
        self.trace_depth.store(0, Ordering::Relaxed);
        Interrupted { trace_depth }
    }

    /// Leave interrupt context: the interrupted context finds its guard as it left it.
    #[inline(always)]
    pub fn exit_interrupt(&self, saved: Interrupted) {
        self.trace_depth.store(saved.trace_depth, Ordering::Relaxed);
        self.irq_depth.store(
            self.irq_depth.load(Ordering::Relaxed) - 1,
            Ordering::Relaxed,
        );
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

/// CPUs running kernel code: the boot CPU from the start, each secondary once it marks itself.
static ONLINE: AtomicU32 = AtomicU32::new(1);

/// Number of CPUs running kernel code.
pub fn online() -> u32 {
    ONLINE.load(Ordering::Acquire)
}

/// Record, on CPU `this().id` itself after [`init`], that it runs kernel code: its MPIDR, its
/// `online` flag and the count. The boot CPU is counted from the start and only records its
/// MPIDR and flag.
pub fn mark_online() {
    let cpu = this();
    cpu.mpidr
        .store(crate::arch::cpu::mpidr(), Ordering::Relaxed);
    // Release: whoever sees the flag also sees the MPIDR and everything this CPU set up before.
    if !cpu.online.swap(true, Ordering::Release) && cpu.id != 0 {
        ONLINE.fetch_add(1, Ordering::Release);
    }
}

/// The CPUs that are online, in logical order.
pub fn online_cpus() -> impl Iterator<Item = &'static PerCpu> {
    CPUS.iter().filter(|c| c.online.load(Ordering::Acquire))
}
