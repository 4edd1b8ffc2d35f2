//! The per-CPU recursion guard: a handler that calls a traced function must not re-enter
//! tracing. The inner call runs untraced and is counted, never lost silently.
//!
//! The guard is taken in the trampolines themselves (`trampoline.rs`, macros
//! `PB_GUARD_ENTER`/`PB_GUARD_EXIT`), before any dispatcher or handler runs, using this CPU's
//! [`PerCpu`](crate::percpu::PerCpu) through TPIDR_EL1:
//!
//! ```text
//!   depth = this_cpu.trace_depth
//!   if depth != 0 { this_cpu.trace_recursions += 1; skip the handlers }
//!   this_cpu.trace_depth = 1; call; this_cpu.trace_depth = 0
//! ```

use core::{mem::offset_of, sync::atomic::Ordering};

use crate::percpu::{self, PerCpu};

/// Offsets the trampoline uses (from TPIDR_EL1).
pub const DEPTH_OFFSET: usize = offset_of!(PerCpu, trace_depth);
pub const RECURSIONS_OFFSET: usize = offset_of!(PerCpu, trace_recursions);

/// Recursions refused so far, summed over all CPUs.
pub fn count() -> u64 {
    percpu::CPUS
        .iter()
        .map(|c| c.trace_recursions.load(Ordering::Relaxed))
        .sum()
}

/// Run `f` under the guard (the Rust paths: return hooks and BRK probes). Returns false, and
/// counts a refused recursion, if a handler is already running on this CPU.
#[inline(always)]
pub fn guarded(f: impl FnOnce()) -> bool {
    let cpu = percpu::this();
    if cpu.trace_depth.load(Ordering::Relaxed) != 0 {
        cpu.trace_recursions.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    cpu.trace_depth.store(1, Ordering::Relaxed);
    f();
    cpu.trace_depth.store(0, Ordering::Relaxed);
    true
}
