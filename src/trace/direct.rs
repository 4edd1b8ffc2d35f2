//! Direct calls: a per-callsite trampoline, generated at run time for one site and one handler,
//! that the site reaches without any ops lookup.
//!
//! ```ignore
//! extern "C" fn on_entry(ctx: &DirectCtx, args: *mut u64) { /* ctx.args(args)[0] += 1 */ }
//! let id = trace::attach_direct(site, DirectKind::Entry(on_entry), 7, Reach::Near)?;
//! trace::detach(id)?;
//! ```
//!
//! Code comes from `patchbay_pure::tramp` (entry or BPF-style fexit), specialised with the
//! site's argument count and a [`DirectCtx`] baked into the trampoline's literal pool, and is
//! written into a [`pool`](super::pool) block. How the site reaches it:
//!
//! | [`Reach`] | pool | the site's `bl` goes to | record name |
//! |---|---|---|---|
//! | `Near` | near | the trampoline | `direct` |
//! | `FarViaOps` | far | the direct caller, whose literal ops has `direct_call` = the trampoline (`br x17`) | `direct-far-ops` |
//! | `FarViaVeneer` | far | a veneer in the near pool (`ldr x16, =tramp; br x16`) | `direct-far-veneer` |
//!
//! Mixed with ops on the same site (the documented fallback, Linux's "direct after other
//! tracers"): the site goes to the direct caller with the list ops in its literal; the list walk
//! runs every ops, including this attachment's, whose handler stores the trampoline in
//! `regs.direct_tramp`; the direct caller then hands over to it. One direct attachment per site.
//!
//! Direct trampolines have no recursion guard (like BPF trampolines without `prog->active`
//! checks): a direct handler must not call the function it traces.

use alloc::boxed::Box;
use core::sync::atomic::Ordering;

use patchbay_pure::tramp;

use super::{
    attach,
    ops::{Attachment, DirectRoute, Ops},
    pool::{self, Block, PoolKind},
    regs::FtraceRegs,
    rethook,
    types::{Mode, OpsId, TraceError},
};
use crate::patch::{PatchError, sites::Site};

/// Where a direct trampoline lives and how the site reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    Near,
    FarViaOps,
    FarViaVeneer,
}

impl Reach {
    /// The mechanism name used in benchmark records.
    pub fn name(self) -> &'static str {
        match self {
            Reach::Near => "direct",
            Reach::FarViaOps => "direct-far-ops",
            Reach::FarViaVeneer => "direct-far-veneer",
        }
    }
}

/// What a direct trampoline gives its handler, baked into the trampoline.
#[repr(C)]
#[derive(Debug)]
pub struct DirectCtx {
    /// The traced function.
    pub site: u64,
    /// The attacher's private data.
    pub data: u64,
    /// Arguments the function takes (saved by the trampoline).
    pub nargs: u32,
}

impl DirectCtx {
    /// Hook this call's return from an entry handler: the caller's return address is in the
    /// trampoline's call-site frame record, which the trampoline restores into x30.
    ///
    /// # Safety
    /// `args` must be the pointer the entry trampoline passed to this handler.
    pub unsafe fn hook_return(
        &self,
        args: *mut u64,
        exit: rethook::ExitFn,
        ctx: u64,
        data: u64,
    ) -> bool {
        let frame = tramp::entry_frame(self.nargs) as u64;
        let base = args as u64;
        // SAFETY: the entry trampoline's frame is `frame` bytes at `args`, the call-site record
        // { caller's x29, return address } at its top (tramp.rs layout).
        let (fp, slot) = unsafe {
            (
                *((base + frame - 16) as *const u64),
                &mut *((base + frame - 8) as *mut u64),
            )
        };
        rethook::push(slot, base + frame, fp, self.site, exit, ctx, data)
    }

    /// The saved arguments, which an entry handler may change.
    ///
    /// # Safety
    /// `args` must be the pointer the trampoline passed to this handler.
    pub unsafe fn args<'a>(&self, args: *mut u64) -> &'a mut [u64] {
        // SAFETY: the trampoline saved exactly `nargs` words at `args` on its stack, live for
        // the handler's duration (caller's contract).
        unsafe { core::slice::from_raw_parts_mut(args, self.nargs as usize) }
    }
}

/// Runs at function entry with the saved arguments.
pub type EntryHandler = extern "C" fn(ctx: &DirectCtx, args: *mut u64);
/// Runs after the function returned, with its arguments and its return value (changeable).
pub type ExitHandler = extern "C" fn(ctx: &DirectCtx, args: *mut u64, ret: &mut u64);

#[derive(Clone, Copy, Debug)]
pub enum DirectKind {
    Entry(EntryHandler),
    /// BPF-trampoline style: the trampoline calls the body itself.
    Fexit(ExitHandler),
}

/// A direct attachment's resources, hung on its ops as an [`Attachment`]; dropped with the ops
/// (trampoline and veneer returned to their pools) only after the site no longer reaches them.
pub struct DirectMeta {
    pub reach: Reach,
    pub tramp: Block,
    pub veneer: Option<Block>,
    pub ctx: Box<DirectCtx>,
}

impl Drop for DirectMeta {
    fn drop(&mut self) {
        pool::free(core::mem::replace(&mut self.tramp, pool::Block::EMPTY));
        if let Some(v) = self.veneer.take() {
            pool::free(v);
        }
    }
}

impl Attachment for DirectMeta {
    fn route(&self) -> DirectRoute {
        match (self.reach, &self.veneer) {
            (Reach::FarViaOps, _) => DirectRoute::ViaDirectCaller,
            // Only `FarViaVeneer` has a veneer: the site calls it, it jumps to the trampoline.
            (_, Some(veneer)) => DirectRoute::Bl(veneer.addr),
            (_, None) => DirectRoute::Bl(self.tramp.addr),
        }
    }
}

/// The ops handler of a direct attachment reached through the list (mixed with other ops):
/// ask the direct caller to continue into the trampoline.
pub extern "C" fn handoff(_: u64, _: u64, ops: &Ops, regs: &mut FtraceRegs) {
    regs.direct_tramp = ops.direct_call.load(Ordering::Relaxed);
}

/// Attach a direct trampoline for `kind` to `site`, reached as `reach`.
pub fn attach_direct(
    site: &Site<'static>,
    kind: DirectKind,
    data: u64,
    reach: Reach,
) -> Result<OpsId, TraceError> {
    let ctx = Box::new(DirectCtx {
        site: site.func,
        data,
        nargs: site.nargs,
    });
    let ctx_addr = &*ctx as *const DirectCtx as u64;
    let code = match kind {
        DirectKind::Entry(h) => tramp::entry(site.nargs, h as usize as u64, ctx_addr),
        DirectKind::Fexit(h) => tramp::fexit(site.nargs, h as usize as u64, ctx_addr),
    }
    .map_err(|e| TraceError::Patch(PatchError::Encode(e)))?;
    let pool_kind = if reach == Reach::Near {
        PoolKind::Near
    } else {
        PoolKind::Far
    };
    let tramp_block = pool::alloc_code(pool_kind, &code)?;
    let mut meta = DirectMeta {
        reach,
        tramp: tramp_block,
        veneer: None,
        ctx,
    };
    if reach == Reach::FarViaVeneer {
        // On error `meta` drops and frees the trampoline.
        meta.veneer = Some(pool::alloc_code(
            PoolKind::Near,
            &tramp::veneer(meta.tramp.addr),
        )?);
    }
    let mut ops = Ops::new(handoff, data, 0);
    ops.direct_call.store(meta.tramp.addr, Ordering::Relaxed);
    ops.direct = Some(Box::new(meta));
    attach::attach_ops(Box::new(ops), &[site], Mode::CallOps)
}

/// [`attach_direct`] for the function at `func`, which must be a patch site.
pub fn attach_direct_at(
    func: u64,
    kind: DirectKind,
    data: u64,
    reach: Reach,
) -> Result<OpsId, TraceError> {
    let site = crate::patch::sites::by_addr(func)?;
    attach_direct(site, kind, data, reach)
}

/// The trampoline block of a direct attachment (for inspection and tests).
pub fn trampoline_of(id: OpsId) -> Option<(u64, Option<u64>)> {
    attach::with_ops(id, |o| {
        let meta = o.direct.as_deref()? as &dyn core::any::Any;
        let m = meta.downcast_ref::<DirectMeta>()?;
        Some((m.tramp.addr, m.veneer.as_ref().map(|v| v.addr)))
    })
    .flatten()
}
