//! Ops: a handler plus its private data and filter, and the dispatchers the trampolines call.
//!
//! An [`Ops`] is what a patch site's CALL_OPS literal points at. Its first word, `func`, is the
//! dispatcher the call-ops trampoline calls:
//!
//! - a user ops' `func` is its handler (or [`nop_func`] while disabled), called directly;
//! - [`LIST_OPS`]' `func` is [`list_func`]: run every registered ops whose filter matches the
//!   traced function (what list mode always does, and what a call-ops site does when several
//!   ops trace it). The published list is a `patchbay_pure::dispatch::Table`: ops tracing one
//!   function are keyed by it and sorted, so each ops the walk passes over costs one load, one
//!   compare and one branch, and the walk stops at the first later function; ops with wider
//!   filters (every function, several) are tested with [`Ops::matches`] first.
//!
//! The recursion guard is taken by the trampoline before any of these run.
//!
//! The registered list is published as an immutable snapshot (an `AtomicPtr` to a boxed list)
//! so the list walker takes no lock. A replaced snapshot is freed only after a grace period
//! (`crate::grace`): a walker runs inside the static trampoline and under the recursion guard,
//! so no CPU that has since passed a quiescent point can still hold it.
//!
//! An ops knows nothing of the tracing clients built on it. A direct attachment hangs its
//! resources on its ops as an opaque [`Attachment`]: the site planner asks it only for its
//! [`DirectRoute`], and the ops drops it (returning its trampolines to their pool) when the ops
//! itself is freed, after no site reaches it.

use alloc::{boxed::Box, vec::Vec};
use core::{
    any::Any,
    ptr,
    sync::atomic::{AtomicPtr, AtomicU64, Ordering},
};

use patchbay_pure::dispatch::{Keyed, Table};
pub use patchbay_pure::siteplan::DirectRoute;

use super::regs::FtraceRegs;

/// A tracing handler: `(ip, parent_ip, ops, regs)` — the traced function, its caller's return
/// address, the ops it belongs to (for `data`), and the entry registers it may change.
///
/// `extern "C"` because the call-ops trampoline calls it directly (`ops->func`), with no Rust
/// shim in between: that is what keeps call-ops cheap.
pub type Handler = extern "C" fn(ip: u64, parent_ip: u64, ops: &Ops, regs: &mut FtraceRegs);

/// What a client hangs on its ops for a direct attachment: the route a site it owns alone takes
/// to its code, and whatever must live as long as the ops (its trampolines). Dropped with the
/// ops.
pub trait Attachment: Any + Send + Sync {
    /// How a site this ops owns alone reaches the attachment's code.
    fn route(&self) -> DirectRoute;
}

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
    /// A direct attachment's route and resources (its trampolines), freed with the ops.
    pub direct: Option<Box<dyn Attachment>>,
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

    /// The one function this ops traces, if its filter is exactly one (its key in the list
    /// dispatcher's table).
    fn single(&self) -> Option<u64> {
        match self.funcs.as_slice() {
            [one] if !self.all => Some(*one),
            _ => None,
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

    /// Call whatever `func` currently is.
    #[inline(always)]
    pub fn call(&self, ip: u64, parent: u64, regs: &mut FtraceRegs) {
        let f = self.func.load(Ordering::Acquire);
        // SAFETY: `func` only ever holds a `Handler` (set by `new` and `set_enabled`).
        let f: Handler = unsafe { core::mem::transmute::<*mut (), Handler>(f) };
        f(ip, parent, self, regs);
    }
}

/// The list dispatcher (`LIST_OPS.func`): every registered ops whose filter matches `ip` — the
/// wide ones (tested with their filter), then those keyed to `ip`. The trampoline has already
/// taken the recursion guard.
pub extern "C" fn list_func(ip: u64, parent: u64, _ops: &Ops, regs: &mut FtraceRegs) {
    // SAFETY: the snapshot lives for this walk only, and no snapshot is freed while a walk runs:
    // the walk runs in a trampoline, under the recursion guard, so this CPU passes no quiescent
    // point before it ends, and a replaced snapshot is freed only after a grace period.
    let Some(Snapshot { table, .. }) = (unsafe { snapshot() }) else {
        return;
    };
    let lr = regs.lr;
    for &o in table.wide() {
        // SAFETY: every item points at a registered, live ops (the tracer frees an ops only
        // after publishing a list without it).
        let o = unsafe { &*o };
        if o.matches(ip) {
            o.call(ip, parent, regs);
        }
    }
    table.for_each_keyed(ip, |&o| {
        // SAFETY: as above.
        unsafe { &*o }.call(ip, parent, regs)
    });
    // One ops overrode the function (`pc` = the `lr` it saw) and a later one hooked the return
    // (`lr` = the return trampoline now): the override returns through the hook, whose exit
    // sees the override's value. Else the hook's shadow-stack entry would never be popped.
    if regs.pc == lr && regs.lr != lr {
        regs.pc = regs.lr;
    }
}

/// Does nothing: what a disabled ops calls.
pub extern "C" fn nop_func(_: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {}

/// The ops a call-ops literal holds when several ops trace the site.
pub static LIST_OPS: Ops = Ops::new(list_func, 0, 0);

/// One published version of the registered list. `repr(C)`: the list trampoline reads the
/// first two words ([`SNAPSHOT_WIDE`], [`SNAPSHOT_KEYED`]) to run the common case — no wide ops,
/// one ops keyed to the traced function — without calling [`list_func`].
#[repr(C)]
pub struct Snapshot {
    /// Number of wide ops (nonzero: the trampoline leaves the walk to [`list_func`]).
    wide: usize,
    /// `table.keyed_entries()`: the sorted, sentinel-terminated keyed entries.
    keyed: *const Keyed<*const Ops>,
    table: Table<*const Ops>,
}

pub const SNAPSHOT_WIDE: usize = 0;
pub const SNAPSHOT_KEYED: usize = 8;
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(Snapshot, wide) == SNAPSHOT_WIDE);
    assert!(offset_of!(Snapshot, keyed) == SNAPSHOT_KEYED);
    // The trampoline steps 16 bytes per entry and finds the ops 8 bytes in.
    assert!(size_of::<Keyed<*const Ops>>() == 16);
    assert!(offset_of!(Keyed<*const Ops>, item) == 8);
};

/// The published list (null: none registered). The list trampoline loads it with a plain load:
/// every read of the snapshot goes through the loaded pointer, and an address dependency orders
/// those reads after the load (what Linux's `rcu_dereference` relies on), pairing with the
/// release in [`publish`].
pub static LIST: AtomicPtr<Snapshot> = AtomicPtr::new(ptr::null_mut());

/// The registered ops, as the list walker sees them (`None`: none registered).
///
/// # Safety
/// The snapshot, and the ops it lists, are freed after the grace period that follows the next
/// [`publish`]. The caller must finish with the reference before this CPU passes a quiescent
/// point (`crate::grace`): true for a walk inside a trampoline and under the recursion guard.
unsafe fn snapshot<'a>() -> Option<&'a Snapshot> {
    let p = LIST.load(Ordering::Acquire);
    // SAFETY: `publish` stores a leaked, fully built Snapshot, freed only by a later `publish`,
    // which the caller guarantees does not run while the reference lives.
    unsafe { p.as_ref() }
}

/// Replace the published list with `ops`, in registration order (called with the tracer lock
/// held), and free the one it replaces.
///
/// # Safety
/// Every pointer in `ops` must point at a live ops until a later `publish` leaves it out and the
/// grace period after it has passed (the caller frees ops with `grace::defer`). The caller is
/// not inside a walk (attach and detach are never called from a handler).
pub(super) unsafe fn publish(ops: Vec<*const Ops>) {
    let table = Table::build(
        ops.into_iter().map(|o| {
            // SAFETY: the caller passes live ops.
            (unsafe { &*o }.single(), o)
        }),
        ptr::null(),
    );
    let new = Box::into_raw(Box::new(Snapshot {
        wide: table.wide().len(),
        keyed: table.keyed_entries(),
        table,
    }));
    let old = LIST.swap(new, Ordering::AcqRel);
    if !old.is_null() {
        // A walker that loaded `old` may still use it until its CPU's next quiescent point.
        crate::grace::defer(Retired(old));
    }
}

/// A replaced snapshot, freed when dropped (after its grace period).
struct Retired(*mut Snapshot);

// SAFETY: the snapshot is immutable and owned by this value alone once unpublished; dropping it
// on another CPU is fine.
unsafe impl Send for Retired {}

impl Drop for Retired {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from `Box::into_raw` in `publish`, was unpublished once and is
        // dropped once, after the grace period that follows the swap.
        drop(unsafe { Box::from_raw(self.0) });
    }
}
