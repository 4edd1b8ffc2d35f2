//! The per-CPU recursion guard: a handler that calls a traced function must not re-enter
//! tracing. The inner call runs untraced and is counted, never lost silently.
//!
//! The guard is taken in the trampolines themselves, before any dispatcher or handler runs,
//! using this CPU's [`PerCpu`](crate::percpu::PerCpu) through TPIDR_EL1:
//!
//! ```text
//!   depth = this_cpu.trace_depth
//!   if depth != 0 { this_cpu.trace_recursions += 1; skip the handlers }   (out of line)
//!   this_cpu.trace_depth = nonzero; call; this_cpu.trace_depth = 0
//! ```
//!
//! Every copy of the guard is here: the assembly text the trampolines splice in
//! ([`guard_enter!`], [`guard_exit!`], [`guard_refused!`]) and the Rust form [`guarded`]. A
//! change to what the guard tracks (e.g. telling interrupt context from normal context) is a
//! change to this file and the `PerCpu` fields alone.
//!
//! The taken state is any nonzero value. The assembly stores the register it already holds, the
//! `PerCpu` address (nonzero: the address of a static), so taking the guard is four
//! instructions — `mrs`, `ldr`, `cbnz` (not taken), `str` — and releasing it two.
//!
//! # Per ops or per site?
//!
//! Linux leaves recursion protection to each ops (`FTRACE_OPS_FL_RECURSION`): an ops that says
//! it is recursion-safe gets no check at all. patchbay keeps the guard on every path that runs
//! a handler instead, per CPU and taken once per traced call, because the cost left after the
//! diet is 6 instructions per call (measured: the call-ops row) and the failure it prevents —
//! a handler calling a traced function and recursing until the stack overflows — takes the
//! whole kernel down. An ops cannot opt out; a handler that wants to trace its own callees
//! cannot (that is what the recursion counter reports).

use core::{mem::offset_of, sync::atomic::Ordering};

use crate::percpu::{self, PerCpu};

/// The guard's entry, as assembly text for a trampoline: take the guard, or branch to `$busy`
/// (spliced [`guard_refused!`]) if a handler already runs on this CPU. Leaves this CPU's
/// `PerCpu` address in x10; clobbers x11. The trampoline's asm block defines the `depth` and
/// `recursions` operands ([`DEPTH_OFFSET`], [`RECURSIONS_OFFSET`]).
macro_rules! guard_enter {
    ($busy:literal) => {
        concat!(
            "    mrs  x10, tpidr_el1\n",
            "    ldr  x11, [x10, #{depth}]\n",
            "    cbnz x11, ",
            $busy,
            "\n",
            // Taken: any nonzero value; x10 (the PerCpu address) is one already at hand.
            "    str  x10, [x10, #{depth}]\n",
        )
    };
}

/// Release the guard taken by [`guard_enter!`] (x10 does not survive the handler, so it is
/// read again). Clobbers x10.
macro_rules! guard_exit {
    () => {
        concat!(
            "    mrs  x10, tpidr_el1\n",
            "    str  xzr, [x10, #{depth}]\n",
        )
    };
}

/// The refused path (out of line, after the trampoline's return): count the recursion and
/// branch to `$done`, which restores without calling anything. Expects x10 from
/// [`guard_enter!`]; clobbers x11.
macro_rules! guard_refused {
    ($done:literal) => {
        concat!(
            "    ldr  x11, [x10, #{recursions}]\n",
            "    add  x11, x11, #1\n",
            "    str  x11, [x10, #{recursions}]\n",
            "    b    ",
            $done,
            "\n",
        )
    };
}

pub(crate) use {guard_enter, guard_exit, guard_refused};

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
