//! fprobe: entry and exit handlers over a set of functions, with per-call data passed from
//! entry to exit — built on an ops (list or call-ops mode) plus [`rethook`].
//!
//! ```ignore
//! extern "C" fn enter(ip: u64, ctx: u64, data: &mut u64, regs: &mut FtraceRegs) -> bool {
//!     *data = regs.arg(0);
//!     true
//! }
//! extern "C" fn leave(ip: u64, ctx: u64, data: u64, regs: &mut RetRegs) {
//!     /* regs.return_value(), data */
//! }
//! let id = trace::fprobe::register(Filter::Glob("gen_*".into()), Some(enter), Some(leave), 0, Mode::CallOps)?;
//! trace::fprobe::unregister(id)?;
//! ```
//!
//! Both handlers are `extern "C"` and get the `ctx` word given to [`register`]. The entry
//! handler returns whether this call's exit should run; calls beyond the shadow stack's capacity
//! run their entry handler but not their exit handler, and are counted by
//! `rethook::overflows()`.
//!
//! # The entry path, in assembly
//!
//! With an exit handler, the ops handler is `__patchbay_fprobe_entry` (below), which does what
//! Linux's fgraph does for fprobe (`function_graph_enter_regs`): push first, then ask.
//!
//! ```text
//!   reserve the next shadow-stack slot (depth + 1, hooked + 1)      full: count, run entry only
//!   fill it: entry SP and FP, ip, ctx, data = 0, exit, the real return address
//!   regs.lr = the return trampoline
//!   no entry handler: done
//!   entry(ip, ctx, &slot.data, regs)          the per-call data goes straight into the slot
//!   declined: regs.lr (and regs.pc, if the handler overrode the function) = the real return
//!             address again; depth - 1, hooked - 1
//! ```
//!
//! The exit handler is `rethook::ExitFn` itself, so the return trampoline calls it directly:
//! no adapter on either side. Pushing before the entry handler runs keeps backtraces from
//! inside it right (the call-site frame record already holds the return trampoline, and the
//! top entry translates it) and keeps the slot the handler writes its data into safe from an
//! interrupt (reserved, so an interrupt's own hooks push above it). An entry handler reads its
//! caller with [`FtraceRegs::parent_ip`], which looks through the return trampoline.
//!
//! Without an exit handler nothing is pushed: a Rust ops handler calls the entry handler with a
//! scratch data word.

use alloc::{boxed::Box, vec::Vec};
use core::mem::offset_of;

use super::{
    attach,
    ops::{Handler, Ops},
    regs::{FREGS_FP, FREGS_LR, FREGS_PC, FREGS_SIZE, FtraceRegs},
    rethook::{self, ENTRY_SHIFT, Entry, ShadowStack},
    types::{Filter, Mode, OpsId, TraceError},
};
use crate::percpu::PerCpu;

/// Entry: `(ip, ctx, per-call data out, regs)`; return true to run this call's exit handler.
/// The data word starts at 0; whatever the handler leaves there is the exit's `data`.
pub type EntryFn = extern "C" fn(ip: u64, ctx: u64, data: &mut u64, regs: &mut FtraceRegs) -> bool;
/// Exit: `(ip, ctx, per-call data, return registers)` — rethook's exit type, which the return
/// trampoline calls directly.
pub type ExitFn = rethook::ExitFn;

/// What the entry path reads, in the order its paired loads want (`entry, exit`;
/// `ctx, trampoline`).
#[repr(C)]
struct Fprobe {
    entry: Option<EntryFn>,
    exit: Option<ExitFn>,
    ctx: u64,
    /// The return trampoline's address, kept beside `ctx` so one load pair brings both.
    trampoline: u64,
}

const _: () = {
    assert!(offset_of!(Fprobe, exit) == offset_of!(Fprobe, entry) + 8);
    assert!(offset_of!(Fprobe, trampoline) == offset_of!(Fprobe, ctx) + 8);
    // The entry path stores the slot in pairs and loads `fp, lr` as one.
    assert!(offset_of!(Entry, fp) == offset_of!(Entry, sp) + 8);
    assert!(offset_of!(Entry, ctx) == offset_of!(Entry, ip) + 8);
    assert!(offset_of!(Entry, exit) == offset_of!(Entry, data) + 8);
    assert!(FREGS_LR == FREGS_FP + 8);
    // `reserve` as one load pair and one store pair.
    assert!(ShadowStack::HOOKED_OFFSET == ShadowStack::DEPTH_OFFSET + 8);
    // Entry i is at stack + (i + 1) << 6: the new depth, scaled.
    assert!(ShadowStack::ENTRIES_OFFSET == 1 << ENTRY_SHIFT);
    assert!(size_of::<Entry>() == 1 << ENTRY_SHIFT);
};

/// The landing pad an assembly function reached by `blr` starts with in the hardened build
/// (BTI enforced: `bti c` accepts a call); nothing in the plain build.
#[cfg(feature = "harden")]
macro_rules! landing_pad {
    () => {
        "    bti  c"
    };
}
#[cfg(not(feature = "harden"))]
macro_rules! landing_pad {
    () => {
        ""
    };
}

/// Registered fprobes, boxed so the ops' `data` can point at them.
static FPROBES: spin::Mutex<Vec<(OpsId, Box<Fprobe>)>> = spin::Mutex::new(Vec::new());

core::arch::global_asm!(
    ".section .text.patchbay_fprobe, \"ax\"",
    ".balign 8",
    ".type __patchbay_fprobe_entry, %function",
    "__patchbay_fprobe_entry:",
    // An ops handler: x0 = ip, x1 = parent ip (unused: regs.lr has it), x2 = ops, x3 = regs;
    // x0-x17 are ours (AAPCS64). Reached by `blr`, so the hardened build's landing pad first.
    landing_pad!(),
    // x5 = entry, x6 = exit, x1 = ctx, x7 = the return trampoline.
    "    ldr  x4, [x2, #{ops_data}]",
    "    ldp  x5, x6, [x4, #{f_entry}]",
    "    ldp  x1, x7, [x4, #{f_ctx}]",
    // Reserve (`ShadowStack::reserve`): x9 = this CPU's shadow stack; depth and hooked + 1 are
    // in memory (one store) before the slot is filled, so an interrupt landing from here on
    // pushes above it. Full: out of line.
    "    mrs  x9, tpidr_el1",
    "    ldr  x9, [x9, #{shadow}]",
    "    ldp  x10, x11, [x9, #{depth}]",
    "    cmp  x10, #{capacity}",
    "    b.hs 3f",
    "    add  x10, x10, #1",
    "    add  x11, x11, #1",
    "    stp  x10, x11, [x9, #{depth}]",
    "    add  x12, x9, x10, lsl #{shift}",
    // Fill x12, the reserved slot: the frame the function returns from (its entry SP, the end
    // of the regs frame, and FP), the hook, data 0, the real return address.
    "    ldp  x13, x14, [x3, #{fregs_fp}]",
    "    add  x15, x3, #{fregs_size}",
    "    stp  x15, x13, [x12, #{e_sp}]",
    "    stp  x0, x1, [x12, #{e_ip}]",
    "    stp  xzr, x6, [x12, #{e_data}]",
    "    str  x14, [x12, #{e_ret}]",
    // The function now returns to the return trampoline.
    "    str  x7, [x3, #{fregs_lr}]",
    "    cbz  x5, 9f",
    // entry(ip, ctx, &slot.data, regs), with a frame record (and x3, x12 for a decline).
    "    stp  x29, x30, [sp, #-32]!",
    "    mov  x29, sp",
    "    stp  x3, x12, [sp, #16]",
    "    add  x2, x12, #{e_data}",
    "    blr  x5",
    "    tbz  w0, #0, 2f",
    "    ldp  x29, x30, [sp], #32",
    "    ret",
    // Declined: the real return address back into regs.lr — and into regs.pc if the handler
    // overrode the function (`override_return` set pc = lr, the return trampoline) — then drop
    // the slot. (Read before the depth drops: from then on an interrupt may push into it.)
    "2:  ldp  x3, x12, [sp, #16]",
    "    ldp  x29, x30, [sp], #32",
    "    ldr  x13, [x12, #{e_ret}]",
    "    ldr  x14, [x3, #{fregs_pc}]",
    "    ldr  x15, [x3, #{fregs_lr}]",
    "    cmp  x14, x15",
    "    csel x14, x13, x14, eq",
    "    str  x14, [x3, #{fregs_pc}]",
    "    str  x13, [x3, #{fregs_lr}]",
    "    mrs  x9, tpidr_el1",
    "    ldr  x9, [x9, #{shadow}]",
    "    ldp  x10, x11, [x9, #{depth}]",
    "    sub  x10, x10, #1",
    "    sub  x11, x11, #1",
    "    stp  x10, x11, [x9, #{depth}]",
    "    ret",
    // Full: count the overflow; the entry handler still runs, its data into a scratch word.
    "3:  ldr  x11, [x9, #{overflows}]",
    "    add  x11, x11, #1",
    "    str  x11, [x9, #{overflows}]",
    "    cbz  x5, 9f",
    "    stp  x29, x30, [sp, #-32]!",
    "    mov  x29, sp",
    "    str  xzr, [sp, #16]",
    "    add  x2, sp, #16",
    "    blr  x5",
    "    ldp  x29, x30, [sp], #32",
    "9:  ret",
    ".size __patchbay_fprobe_entry, . - __patchbay_fprobe_entry",
    ops_data = const offset_of!(Ops, data),
    f_entry = const offset_of!(Fprobe, entry),
    f_ctx = const offset_of!(Fprobe, ctx),
    shadow = const offset_of!(PerCpu, shadow_stack),
    depth = const ShadowStack::DEPTH_OFFSET,
    overflows = const ShadowStack::OVERFLOWS_OFFSET,
    capacity = const rethook::CAPACITY,
    shift = const ENTRY_SHIFT,
    fregs_pc = const FREGS_PC,
    fregs_fp = const FREGS_FP,
    fregs_lr = const FREGS_LR,
    fregs_size = const FREGS_SIZE,
    e_sp = const offset_of!(Entry, sp),
    e_ip = const offset_of!(Entry, ip),
    e_data = const offset_of!(Entry, data),
    e_ret = const offset_of!(Entry, ret),
);

// `Ops` is no C type, but the assembly only reads its `data` word through the reference, which
// is a plain address in the ABI (as for every `Handler`).
#[expect(
    improper_ctypes,
    reason = "the handler reads one u64 field of Ops by offset"
)]
unsafe extern "C" {
    /// The ops handler of an fprobe with an exit handler (the assembly above): `ops.data` is
    /// its `Fprobe`.
    safe fn __patchbay_fprobe_entry(ip: u64, parent: u64, ops: &Ops, regs: &mut FtraceRegs);
}

/// The ops handler of an fprobe without an exit handler: nothing to hook.
extern "C" fn on_entry_only(ip: u64, _parent: u64, ops: &Ops, regs: &mut FtraceRegs) {
    // SAFETY: `ops.data` is the address of a boxed Fprobe that lives until `unregister` has
    // detached this ops (no site can reach the handler afterwards).
    let fp = unsafe { &*(ops.data as *const Fprobe) };
    if let Some(e) = fp.entry {
        e(ip, fp.ctx, &mut 0, regs);
    }
}

/// Trace `filter` with an entry and/or exit handler, in `mode`; both handlers get `ctx`.
pub fn register(
    filter: Filter,
    entry: Option<EntryFn>,
    exit: Option<ExitFn>,
    ctx: u64,
    mode: Mode,
) -> Result<OpsId, TraceError> {
    let fp = Box::new(Fprobe {
        entry,
        exit,
        ctx,
        trampoline: rethook::trampoline(),
    });
    let handler: Handler = if exit.is_some() {
        __patchbay_fprobe_entry
    } else {
        on_entry_only
    };
    let id = attach::attach(filter, handler, &*fp as *const Fprobe as u64, mode)?;
    FPROBES.lock().push((id, fp));
    Ok(id)
}

/// Remove an fprobe. Its memory is released once no site can reach it and no CPU can still be
/// on its entry path: after a grace period (`crate::grace`). (A hooked call in flight holds
/// the exit handler and `ctx` in its shadow-stack entry, not the fprobe.)
pub fn unregister(id: OpsId) -> Result<(), TraceError> {
    attach::detach(id)?;
    let mut fps = FPROBES.lock();
    if let Some(pos) = fps.iter().position(|(i, _)| *i == id) {
        crate::grace::defer(fps.remove(pos).1);
    }
    Ok(())
}
