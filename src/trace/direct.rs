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
//! site's argument registers ([`ArgRegs`], which `#[patchable]` proved from the signature: the
//! trampoline saves exactly those, x8 included when the function may return through memory), a
//! [`DirectCtx`] baked into the trampoline's literal pool, and — generated at the address it will
//! run from — a `bl` straight to the handler when it is in range (always for the near pool). It
//! is written into a [`pool`](super::pool) block. How the site reaches it:
//!
//! | [`Reach`] | pool | the site's `bl` goes to | record name |
//! |---|---|---|---|
//! | `Near` | near | the trampoline | `direct` |
//! | `FarViaOps` | far | the direct caller, whose literal ops has `direct_call` = the trampoline (`br x17`) | `direct-far-ops` |
//! | `FarViaVeneer` | far | a veneer in the near pool (`ldr x16, =tramp; br x16`) | `direct-far-veneer` |
//!
//! Both far routes hand over with every argument register and x8 intact (the veneer touches only
//! x16; the direct caller restores x0–x8 before its `br x17`), so all three run the same code.
//!
//! Mixed with ops on the same site (the documented fallback, Linux's "direct after other
//! tracers"): the site goes to the direct caller with the list ops in its literal; the list walk
//! runs every ops, including this attachment's, whose handler stores the trampoline in
//! `regs.direct_tramp`; the direct caller then hands over to it. One direct attachment per site.
//!
//! # fexit and stack arguments
//!
//! An fexit trampoline copies the caller's stack arguments for the body and shows them to the
//! handler after the register arguments, up to [`tramp::MAX_ARG_WORDS`] argument words (Linux's
//! 12). A site with more, or whose stack arguments cannot be sized, is refused at attach time
//! with [`TraceError::Tramp`] naming the limit; nothing is patched.
//!
//! # Recursion: none on the trampoline, by decision (per site, not per ops)
//!
//! A direct trampoline serves one site and one handler, so the only recursion it could guard
//! against is its own handler calling (directly or through an interrupt) the function it
//! traces. A guard like the static trampoline's, per CPU and context, would add several
//! instructions to every call (find the per-CPU area, test, set, clear) of a mechanism whose
//! whole budget is 16, and direct handlers are written for the site they are bound to, like
//! BPF trampolines whose programs are verified not to recurse. So direct trampolines carry no
//! guard and a direct handler must not call the function it traces; a handler that may (or an
//! attacher that cannot know) uses an ops (list or call-ops), whose trampoline guards every call.
//! The trade is per site because the attachment is: a site traced both ways keeps the guard on
//! its ops path (the combined path above runs the list ops under the guard, then the direct
//! trampoline unguarded).

use alloc::boxed::Box;
use core::sync::atomic::Ordering;

use patchbay_pure::{sites::ArgRegs, tramp};

use super::{
    attach,
    ops::{Attachment, DirectRoute, Ops},
    pool::{self, Block, PoolKind},
    regs::FtraceRegs,
    rethook,
    types::{Mode, OpsId, TraceError},
};
use crate::patch::sites::Site;

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

/// What a direct trampoline gives its handler, baked into the trampoline. The handler's `saved`
/// pointer is the trampoline's save area: the argument registers x0..x(regs-1), then (fexit) the
/// stack argument words, then x8 if live (see `patchbay_pure::tramp`).
#[derive(Debug)]
pub struct DirectCtx {
    /// The traced function.
    pub site: u64,
    /// The attacher's private data.
    pub data: u64,
    /// The site's argument registers: what the trampoline saved.
    pub regs: ArgRegs,
    /// Stack argument words after the registers in the save area (fexit; 0 at entry).
    pub stack_words: u32,
    /// A lean entry trampoline (no frame record for the traced function).
    pub lean: bool,
}

impl DirectCtx {
    /// Where an entry trampoline keeps its call-site frame record { caller's x29, return address
    /// into the caller }, and the caller's stack pointer, given the `args` it passed its handler
    /// (tramp.rs layouts of `entry` and `entry_lean`).
    pub fn callsite(&self, args: *mut u64) -> (u64, u64) {
        let area = tramp::entry_callsite_offset(self.regs) as u64;
        if self.lean {
            let record = (args as u64).wrapping_add_signed(tramp::LEAN_CALLSITE_OFFSET.into());
            (record, record + 16 + area)
        } else {
            let record = args as u64 + area;
            (record, record + 16)
        }
    }

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
        let (record, caller_sp) = self.callsite(args);
        // SAFETY: the entry trampoline's call-site record { caller's x29, return address } lies
        // at a fixed offset from the save area it passed as `args` (tramp.rs layouts of `entry`
        // and `entry_lean`), on its frame, live while the handler runs.
        let (fp, slot) = unsafe { (*(record as *const u64), &mut *((record + 8) as *mut u64)) };
        rethook::push(slot, caller_sp, fp, self.site, exit, ctx, data)
    }

    /// The argument words: registers x0..x(regs-1), then (fexit) the stack arguments. An entry
    /// handler may change them and the body receives the changes.
    ///
    /// # Safety
    /// `args` must be the pointer the trampoline passed to this handler.
    pub unsafe fn args<'a>(&self, args: *mut u64) -> &'a mut [u64] {
        let words = u32::from(self.regs.regs) + self.stack_words;
        // SAFETY: the trampoline saved `regs` registers and `stack_words` stack words at `args`
        // on its stack, live for the handler's duration (caller's contract).
        unsafe { core::slice::from_raw_parts_mut(args, words as usize) }
    }

    /// The caller's result buffer (x8 at entry) of a function that returns through memory,
    /// or `None` if x8 is not live at this site.
    ///
    /// # Safety
    /// `args` must be the pointer the trampoline passed to this handler.
    pub unsafe fn indirect_result(&self, args: *mut u64) -> Option<u64> {
        let slot = u32::from(self.regs.regs) + self.stack_words;
        // SAFETY: x8 is saved right after the argument words when live (caller's contract).
        self.regs.x8.then(|| unsafe { *args.add(slot as usize) })
    }
}

/// Runs at function entry with the saved arguments.
pub type EntryHandler = extern "C" fn(ctx: &DirectCtx, args: *mut u64);
/// Runs after the function returned, with its arguments and its return value (changeable):
/// `ret` is x0, and the word after it x1 (the high half of a 128-bit result, the length of a
/// returned slice).
pub type ExitHandler = extern "C" fn(ctx: &DirectCtx, args: *mut u64, ret: &mut u64);

#[derive(Clone, Copy, Debug)]
pub enum DirectKind {
    Entry(EntryHandler),
    /// [`DirectKind::Entry`] without the traced function's frame record (3 instructions fewer;
    /// backtraces taken in the handler skip from the trampoline to the caller). Benchmark row
    /// `direct-lean`.
    LeanEntry(EntryHandler),
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
    let regs = site.arg_regs;
    let stack_words = match kind {
        DirectKind::Entry(_) | DirectKind::LeanEntry(_) => 0,
        DirectKind::Fexit(_) => tramp::FexitLayout::new(regs)?.stack_words,
    };
    let ctx = Box::new(DirectCtx {
        site: site.func,
        data,
        regs,
        stack_words,
        lean: matches!(kind, DirectKind::LeanEntry(_)),
    });
    let ctx_addr = &*ctx as *const DirectCtx as u64;
    let code = |at: Option<u64>| match kind {
        DirectKind::Entry(h) => tramp::entry(regs, h as usize as u64, ctx_addr, at),
        DirectKind::LeanEntry(h) => {
            tramp::entry_lean(regs, h as usize as u64, ctx_addr, site.body(), at)
        }
        DirectKind::Fexit(h) => tramp::fexit(regs, h as usize as u64, ctx_addr, at),
    };
    let pool_kind = if reach == Reach::Near {
        PoolKind::Near
    } else {
        PoolKind::Far
    };
    // The position-independent code is the longest form; the code placed at its address may
    // call the handler with one `bl`.
    // `longest` stays allocated until the block is reserved, so the pool's heap-backed
    // bookkeeping is allocated in the same heap state as ever: the first-fit heap's layout
    // shows in the batch-patching benchmarks' instruction counts.
    let longest = code(None)?;
    let tramp_block = pool::alloc_code_at(pool_kind, longest.len(), |at| Ok(code(Some(at))?))?;
    drop(longest);
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
