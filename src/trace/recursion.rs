//! The per-CPU recursion guard: a handler that calls a traced function must not re-enter
//! tracing. The inner call runs untraced and is counted, never lost silently.
//!
//! The guard is taken in the trampolines themselves, before any dispatcher or handler runs,
//! using this CPU's [`PerCpu`](crate::percpu::PerCpu) through TPIDR_EL1 (one guard per context:
//! normal and interrupt, see below):
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
//! # Normal and interrupt context: one guard each
//!
//! A timer interrupt can land while a handler runs (the guard taken) and call a traced function
//! itself. That call is not a recursion — the handler did not call it — and must be traced. So
//! interrupt context gets a guard of its own, at no cost on the traced path: the IRQ entry
//! (`irq::handle`, through [`PerCpu::enter_interrupt`](crate::percpu::PerCpu::enter_interrupt))
//! saves this CPU's `trace_depth` and clears it, and the IRQ exit
//! ([`PerCpu::exit_interrupt`](crate::percpu::PerCpu::exit_interrupt)) stores the saved value
//! back. Inside the interrupt the guard works exactly as in normal context: a handler running
//! there that calls a traced function is refused and counted in `trace_recursions`.
//!
//! **Why this is Linux's per-context recursion bits.** Linux
//! (`include/linux/trace_recursion.h`, `trace_test_and_set_recursion`) keeps one bit per
//! context level — normal, softirq, IRQ, NMI — and a traced call tests and sets the bit of the
//! level it runs at; a call is refused only if *its own* level's bit is set. That works because
//! contexts nest strictly: a level is entered and left while the levels below it are frozen, so
//! only code at level L ever sets or clears bit L. A save on entry and a restore on exit keeps
//! the same information — the state of every frozen level — on the stack of the interrupt
//! frames instead of in bits: at any moment `trace_depth` is the running level's bit, and each
//! suspended level's bit sits in the [`Interrupted`](crate::percpu::Interrupted) of the
//! interrupt that suspended it. patchbay's levels are fewer (irq.rs documents the policy):
//! normal context, and IRQ context one level deep (handlers run with IRQs masked; there is no
//! softirq and no NMI; FIQ and SError are fatal). A synchronous exception taken inside either —
//! a BRK probe hit by a traced function — stays in the context it interrupted, as a kprobe in
//! an IRQ handler is IRQ context in Linux, so it uses that context's guard ([`guarded`]).
//! Linux also needs a "transition" bit, because its context level is read from `preempt_count`,
//! which IRQ entry updates only after some traceable entry code has run; here the guard is
//! swapped before the IRQ path can reach any traced function (nothing on it is a patch site), so
//! no window exists in which interrupt code runs with the interrupted context's guard.
//!
//! **An interrupt between the guard's `ldr` and `str`.** The trampoline takes the guard in two
//! memory accesses ([`guard_enter!`]: `ldr x11, [x10, #depth]` … `str x10, [x10, #depth]`), not
//! atomically. An IRQ landing between them is harmless because an IRQ returns with
//! `trace_depth` exactly as it found it (restored from the saved value, whatever its own traced
//! calls did in between): the interrupted `ldr` saw 0, the `str` then takes the guard, as it
//! would have without the interrupt. The same holds for every other point of the sequence —
//! after the `str` (the IRQ saves "taken", runs its traced calls with a clear guard, restores
//! "taken"), and in [`guard_exit!`]'s window. x10 (this CPU's `PerCpu`) stays right across the
//! interrupt: nothing moves a running context to another CPU (no scheduler, no migration). The
//! refused path's `ldr`/`add`/`str` of `trace_recursions` is the one read-modify-write an
//! interrupt could split; an interrupt's own refused recursions in that window would be lost
//! from the statistic (never a call traced twice or a guard left taken).
//!
//! **Return hooks.** An interrupt that hooks returns of its own traced calls pushes them on
//! the same per-CPU shadow stack above the interrupted context's entries and pops them all
//! before it returns (its calls finish before it does), so the stack stays LIFO;
//! `patchbay_pure::shadow` reserves a slot before filling it, so an interrupt landing inside a
//! push never writes the slot being filled.
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
/// counts a refused recursion, if a handler is already running in this CPU's current context.
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
