//! Ops: a handler plus its private data and filter, and the dispatchers the trampolines call.
//!
//! An [`Ops`] is what a patch site's CALL_OPS literal points at. Its first word, `func`, is the
//! dispatcher the call-ops trampoline calls:
//!
//! - a user ops' `func` is its handler (or [`nop_func`] while disabled), called directly;
//! - [`LIST_OPS`]' `func` is [`list_func`]: walk every registered ops and run those whose filter
//!   matches the traced function (what list mode always does, and what a call-ops site does
//!   when several ops trace it);
//!
//! The recursion guard is taken by the trampoline before any of these run.
//!
//! The registered list is published as an immutable snapshot (an `AtomicPtr` to a boxed list)
//! so the list walker takes no lock. A replaced snapshot is freed at once: only one CPU runs and
//! tracing never runs in interrupt context, so no walker can still hold it. SMP needs a grace
//! period here (RCU) before freeing.

use alloc::{boxed::Box, vec::Vec};
use core::{
    ptr,
    sync::atomic::{AtomicPtr, AtomicU64, Ordering},
};

use super::regs::FtraceRegs;

/// A tracing handler: `(ip, parent_ip, ops, regs)` — the traced function, its caller's return
/// address, the ops it belongs to (for `data`), and the entry registers it may change.
///
/// `extern "C"` because the call-ops trampoline calls it directly (`ops->func`), with no Rust
/// shim in between: that is what keeps call-ops cheap.
pub type Handler = extern "C" fn(ip: u64, parent_ip: u64, ops: &Ops, regs: &mut FtraceRegs);

/// What a trampoline calls: `ops->func(ip, parent_ip, ops, regs)`.
pub type OpsFunc = Handler;

/// One tracer. `#[repr(C)]`: the trampolines read `func` at offset 0 and (for direct calls
/// reached through ops) `direct_call` at offset 8.
#[repr(C)]
pub struct Ops {
    /// What the trampoline calls: the handler while enabled, [`nop_func`] while disabled, the
    /// list walker for [`LIST_OPS`].
    pub func: AtomicPtr<()>,
    /// A direct-call trampoline this ops tail-calls (0: none).
    pub direct_call: AtomicU64,
    pub handler: Handler,
    /// The owner's private data.
    pub data: u64,
    /// Traced functions, sorted (empty with `all`).
    pub funcs: Vec<u64>,
    /// Matches every function.
    pub all: bool,
    /// Identifier for the attach API.
    pub id: u64,
    /// The resources of a direct attachment (its trampoline), freed with the ops.
    pub direct: Option<Box<super::direct::DirectMeta>>,
}

pub const OPS_FUNC: usize = 0;
pub const OPS_DIRECT_CALL: usize = 8;
const _: () = {
    assert!(core::mem::offset_of!(Ops, func) == OPS_FUNC);
    assert!(core::mem::offset_of!(Ops, direct_call) == OPS_DIRECT_CALL);
};

impl Ops {
    pub const fn new(handler: Handler, data: u64, id: u64) -> Self {
        Ops {
            func: AtomicPtr::new(handler as *mut ()),
            direct_call: AtomicU64::new(0),
            handler,
            data,
            funcs: Vec::new(),
            all: false,
            id,
            direct: None,
        }
    }

    /// Does this ops' filter select function `ip`?
    #[inline(always)]
    pub fn matches(&self, ip: u64) -> bool {
        if self.all {
            return true;
        }
        match self.funcs.as_slice() {
            [one] => *one == ip,
            many => many.binary_search(&ip).is_ok(),
        }
    }

    /// Enable (the trampoline calls the handler) or disable (it calls [`nop_func`]). One aligned
    /// pointer store: a concurrent call runs either the handler or nothing.
    pub fn set_enabled(&self, on: bool) {
        let f: Handler = if on { self.handler } else { nop_func };
        self.func.store(f as *mut (), Ordering::Release);
    }

    pub fn is_enabled(&self) -> bool {
        self.func.load(Ordering::Relaxed) != nop_func as *mut ()
    }

    /// Call whatever `func` currently is.
    #[inline(always)]
    pub fn call(&self, ip: u64, parent: u64, regs: &mut FtraceRegs) {
        let f = self.func.load(Ordering::Acquire);
        // SAFETY: `func` only ever holds a `Handler` (set by `new` and `set_enabled`).
        let f: Handler = unsafe { core::mem::transmute::<*mut (), Handler>(f) };
        f(ip, parent, self, regs);
    }
}

/// The list dispatcher (`LIST_OPS.func`): every registered ops whose filter matches `ip`. The
/// trampoline has already taken the recursion guard.
pub extern "C" fn list_func(ip: u64, parent: u64, _ops: &Ops, regs: &mut FtraceRegs) {
    for ops in registered() {
        if ops.matches(ip) {
            ops.call(ip, parent, regs);
        }
    }
}

/// Does nothing: what a disabled ops calls.
pub extern "C" fn nop_func(_: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {}

/// The ops a call-ops literal holds when several ops trace the site.
pub static LIST_OPS: Ops = Ops::new(list_func, 0, 0);

/// One published version of the registered list.
struct Snapshot {
    ops: Vec<*const Ops>,
}

/// The published list (null: none registered).
static LIST: AtomicPtr<Snapshot> = AtomicPtr::new(ptr::null_mut());

/// Every registered ops, as the list walker sees them.
pub fn registered() -> impl Iterator<Item = &'static Ops> {
    let p = LIST.load(Ordering::Acquire);
    // SAFETY: `publish` stores a leaked, fully built Snapshot and frees a snapshot only when it
    // is replaced, which happens with no walker running (see the module docs).
    let snapshot: Option<&'static Snapshot> = unsafe { p.as_ref() };
    let ops: &'static [*const Ops] = snapshot.map_or(&[], |s| &s.ops);
    // SAFETY: every element points at a registered, live ops.
    ops.iter().map(|&o| unsafe { &*o })
}

/// Replace the published list with `ops` (called with the tracer lock held).
pub(super) fn publish(ops: Vec<*const Ops>) {
    let new = Box::into_raw(Box::new(Snapshot { ops }));
    let old = LIST.swap(new, Ordering::AcqRel);
    if !old.is_null() {
        // SAFETY: `old` came from `Box::into_raw` above and no walker can still hold it (single
        // CPU, no tracing in interrupt context).
        drop(unsafe { Box::from_raw(old) });
    }
}
