//! The tracing API: attach an ops to a set of functions in a mode, detach it, list the sites.
//!
//! ```ignore
//! use patchbay::trace::{self, Filter, Mode};
//! extern "C" fn count(_ip: u64, _parent: u64, ops: &trace::Ops, _regs: &mut trace::FtraceRegs) {
//!     HITS.fetch_add(1, Ordering::Relaxed);
//! }
//! let id = trace::attach(Filter::Glob("gen_00*".into()), count, 0, Mode::CallOps)?;
//! ...
//! trace::detach(id)?;
//! ```
//!
//! # Site state from owners and mode
//!
//! Each site has a mode (set by the last attach that covered it) and a set of owning ops. What
//! the site's call and literal must then be is decided by the pure site planner
//! (`patchbay_pure::siteplan`, host-tested; its docs have the table), from the owners' count,
//! the first owner and the route of a direct attachment among them ([`Ops::direct`]).
//!
//! Attach and detach recompute only the sites whose owners changed and apply them in one
//! [`Batch`]: the literal is written in the phase before a `bl` that reads it, and only changed
//! after the `bl` stops reading it (see `patch::batch`). A literal update on an armed site is one
//! aligned 64-bit store, so a concurrent call sees either the old owner or the new one — each a
//! valid, live ops — never a torn pointer. An ops is freed only after no literal points at it, it
//! is out of the published list, and a grace period has passed (`crate::grace`): a call that
//! read the old literal or list may still be inside its trampoline or handler until then. Its
//! direct attachment's trampolines go back to their pool after the same grace period.

use alloc::{boxed::Box, vec::Vec};

use patchbay_pure::siteplan::{self, Owners, SitePlan, Targets};

use super::{
    ops::{self, Handler, LIST_OPS, Ops},
    trampoline,
    types::{Filter, Mode, OpsId, TraceError},
};
use crate::patch::{
    batch::{self, Batch},
    sites::{self, Site},
};

struct Tracer {
    /// Attached ops, boxed so their addresses are stable: literals and the published list point
    /// at them, and growing the Vec must not move them.
    #[allow(clippy::vec_box)]
    ops: Vec<Box<Ops>>,
    /// Per site (index into `sites::all()`): its mode and owners.
    mode: Vec<Mode>,
    owners: Vec<Vec<*const Ops>>,
    next_id: u64,
}

// SAFETY: the raw pointers point at the boxed ops owned by the same Tracer; all access is under
// the TRACER lock.
unsafe impl Send for Tracer {}

impl Tracer {
    /// The ops owning site `i`, borrowed from this tracer (so for no longer than its lock).
    fn owners_of(&self, i: usize) -> impl Iterator<Item = &Ops> {
        // SAFETY: `self.owners` lists ops boxed in `self.ops`, and the references are bounded by
        // the borrow of `self`, during which no ops can be dropped.
        self.owners[i].iter().map(|&p| unsafe { owner(p) })
    }
}

static TRACER: spin::Mutex<Option<Tracer>> = spin::Mutex::new(None);

fn with_tracer<R>(f: impl FnOnce(&mut Tracer) -> R) -> R {
    let mut g = TRACER.lock();
    let t = g.get_or_insert_with(|| {
        let n = sites::all().len();
        Tracer {
            ops: Vec::new(),
            mode: alloc::vec![Mode::List; n],
            owners: alloc::vec![Vec::new(); n],
            next_id: 1,
        }
    });
    f(t)
}

fn resolve(filter: &Filter) -> Result<Vec<usize>, TraceError> {
    let all = sites::all();
    let mut idx: Vec<usize> = match filter {
        Filter::All => (0..all.len()).collect(),
        Filter::Glob(p) => {
            let v: Vec<usize> = all
                .iter()
                .enumerate()
                .filter(|(_, s)| patchbay_pure::sites::matches(s, p))
                .map(|(i, _)| i)
                .collect();
            if v.is_empty() {
                return Err(TraceError::NoMatch { pattern: p.clone() });
            }
            v
        }
        Filter::Addrs(a) => a
            .iter()
            .map(|&addr| sites::by_addr(addr).map(|s| sites::index_of(s).expect("table site")))
            .collect::<Result<_, _>>()?,
    };
    idx.sort_unstable();
    idx.dedup();
    Ok(idx)
}

/// An owner pointer as a reference.
///
/// # Safety
/// `p` must be in a site's owners of a [`Tracer`] the caller borrows, and the reference must not
/// outlive that borrow: owner pointers point at ops boxed in the tracer's `ops`, which are
/// dropped only after they left every owners list.
unsafe fn owner<'a>(p: *const Ops) -> &'a Ops {
    // SAFETY: the caller's contract.
    unsafe { &*p }
}

/// The addresses the site planner may name.
fn targets() -> Targets {
    Targets {
        list_caller: trampoline::list_callers(),
        ops_caller: trampoline::ops_callers(),
        direct_caller: trampoline::direct_caller(),
        list_ops: &LIST_OPS as *const Ops as u64,
    }
}

/// Add to `b` what site `i` needs for its current owners and mode (`patchbay_pure::siteplan`).
fn plan_site(b: &mut Batch, t: &Tracer, targets: &Targets, i: usize) {
    let site: &Site<'static> = &sites::all()[i];
    let owners = &t.owners[i];
    let direct = t
        .owners_of(i)
        .find_map(|o| o.direct.as_ref().map(|d| d.route()));
    let who = Owners {
        count: owners.len(),
        first: owners.first().map_or(0, |&p| p as u64),
        direct,
    };
    let regs = site.arg_regs;
    match siteplan::plan_site(&batch::state(site), &who, t.mode[i], regs, targets) {
        SitePlan::Keep => {}
        SitePlan::Restore => {
            b.restore(site);
        }
        SitePlan::Set { arm, literal } => {
            if let Some(to) = arm {
                b.arm(site, to);
            }
            if let Some(lit) = literal {
                b.set_literal(site, lit);
            }
        }
    }
}

/// Add to `b` what each site in `idx` needs.
fn plan_sites(t: &Tracer, idx: &[usize]) -> Batch {
    let targets = targets();
    let mut b = Batch::with_capacity(idx.len());
    for &i in idx {
        plan_site(&mut b, t, &targets, i);
    }
    b
}

/// Free an ops no site reaches and no published list holds, and its direct attachment's code,
/// after a grace period (`crate::grace`: a CPU may still be inside its trampoline or handler).
fn retire(mut o: Box<Ops>) {
    let code = o.direct.take();
    crate::grace::defer(o);
    if let Some(code) = code {
        crate::grace::defer_code(code);
    }
}

fn publish(t: &Tracer) {
    // SAFETY: called with the tracer lock held, outside any list walk (attach and detach are
    // never called from a handler); the ops are boxed in the tracer and freed (`retire`) only
    // after a later publish left them out, after a grace period.
    unsafe { ops::publish(t.ops.iter().map(|o| &**o as *const Ops).collect()) };
}

/// Trace the functions `filter` selects with `handler` (which gets `data` through its ops),
/// reaching them in `mode`. All-or-nothing: on error nothing is attached and text is unchanged.
pub fn attach(
    filter: Filter,
    handler: Handler,
    data: u64,
    mode: Mode,
) -> Result<OpsId, TraceError> {
    let idx = resolve(&filter)?;
    let mut o = Box::new(Ops::new(handler, data, 0));
    o.all = matches!(filter, Filter::All);
    if !o.all {
        o.funcs = idx.iter().map(|&i| sites::all()[i].func).collect();
    }
    attach_resolved(o, &idx, mode)
}

/// Attach a prepared ops (a tracing client's, e.g. a direct attachment) to `sites`, entries of
/// the site table.
pub fn attach_ops(mut o: Box<Ops>, sites: &[&Site<'_>], mode: Mode) -> Result<OpsId, TraceError> {
    let mut idx = sites
        .iter()
        .map(|s| sites::index_of(s).ok_or(crate::patch::PatchError::NotASite { addr: s.func }))
        .collect::<Result<Vec<usize>, _>>()?;
    idx.sort_unstable();
    idx.dedup();
    o.funcs = idx.iter().map(|&i| sites::all()[i].func).collect();
    attach_resolved(o, &idx, mode)
}

fn attach_resolved(mut o: Box<Ops>, idx: &[usize], mode: Mode) -> Result<OpsId, TraceError> {
    with_tracer(|t| {
        if o.direct.is_some() {
            for &i in idx {
                if t.owners_of(i).any(|o| o.direct.is_some()) {
                    return Err(TraceError::DirectBusy {
                        site: sites::all()[i].name,
                    });
                }
            }
        }
        let id = t.next_id;
        o.id = id;
        let p = &*o as *const Ops;
        // Register first (list mode finds it from the first call), then patch.
        t.ops.push(o);
        publish(t);
        let old_modes: Vec<Mode> = idx.iter().map(|&i| t.mode[i]).collect();
        for &i in idx {
            t.owners[i].push(p);
            t.mode[i] = mode;
        }
        if let Err(e) = plan_sites(t, idx).commit() {
            // Undo the bookkeeping; the batch wrote nothing. Dropping the ops frees any
            // trampoline it owned.
            for (&i, &m) in idx.iter().zip(&old_modes) {
                t.owners[i].retain(|&q| q != p);
                t.mode[i] = m;
            }
            let o = t.ops.pop().expect("pushed above");
            publish(t);
            // It was listed: a list walk may be calling it until the next grace period.
            retire(o);
            return Err(e.into());
        }
        t.next_id += 1;
        Ok(OpsId(id))
    })
}

/// Stop tracing with `id` and free its ops; sites nobody else traces return to their compiled
/// bytes.
pub fn detach(id: OpsId) -> Result<(), TraceError> {
    with_tracer(|t| {
        let pos = t
            .ops
            .iter()
            .position(|o| o.id == id.0)
            .ok_or(TraceError::UnknownOps(id))?;
        let p = &*t.ops[pos] as *const Ops;
        let idx: Vec<usize> = (0..t.owners.len())
            .filter(|&i| t.owners[i].contains(&p))
            .collect();
        for &i in &idx {
            t.owners[i].retain(|&q| q != p);
        }
        if let Err(e) = plan_sites(t, &idx).commit() {
            for &i in &idx {
                t.owners[i].push(p);
            }
            return Err(e.into());
        }
        // No literal points at it any more; take it out of the list, then free it after a
        // grace period (a CPU may still be in its trampoline or handler).
        let o = t.ops.remove(pos);
        publish(t);
        retire(o);
        Ok(())
    })
}

/// Enable or disable an attached ops without patching (its sites stay armed).
pub fn set_enabled(id: OpsId, on: bool) -> Result<(), TraceError> {
    with_tracer(|t| {
        let o = t
            .ops
            .iter()
            .find(|o| o.id == id.0)
            .ok_or(TraceError::UnknownOps(id))?;
        o.set_enabled(on);
        Ok(())
    })
}

/// Detach every ops.
pub fn detach_all() -> Result<(), TraceError> {
    let ids: Vec<OpsId> = with_tracer(|t| t.ops.iter().map(|o| OpsId(o.id)).collect());
    ids.into_iter().try_for_each(detach)
}

/// One site as the tracer sees it.
#[derive(Clone, Debug)]
pub struct SiteInfo {
    pub site: &'static Site<'static>,
    /// `None` when nobody traces it.
    pub mode: Option<Mode>,
    pub owners: Vec<OpsId>,
}

/// Every site with its mode and owners.
pub fn sites() -> Vec<SiteInfo> {
    with_tracer(|t| {
        sites::all()
            .iter()
            .enumerate()
            .map(|(i, s)| SiteInfo {
                site: s,
                mode: (!t.owners[i].is_empty()).then_some(t.mode[i]),
                owners: t.owners_of(i).map(|o| OpsId(o.id)).collect(),
            })
            .collect()
    })
}

/// Run `f` on the attached ops `id`, if any.
pub fn with_ops<R>(id: OpsId, f: impl FnOnce(&Ops) -> R) -> Option<R> {
    with_tracer(|t| t.ops.iter().find(|o| o.id == id.0).map(|o| f(o)))
}

/// Number of attached ops.
pub fn attached() -> usize {
    with_tracer(|t| t.ops.len())
}
