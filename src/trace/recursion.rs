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

/// Is a handler running on this CPU now?
pub fn inside_handler() -> bool {
    percpu::this().trace_depth.load(Ordering::Relaxed) != 0
}
