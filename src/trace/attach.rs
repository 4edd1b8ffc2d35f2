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
//! Each site has a mode (set by the last attach that covered it) and a set of owning ops:
//!
//! | owners | list mode | call-ops mode |
//! |---|---|---|
//! | none | restored to its compiled bytes | restored to its compiled bytes |
//! | one | `bl` list trampoline | `bl` ops trampoline, literal = that ops |
//! | several | `bl` list trampoline | `bl` ops trampoline, literal = the list ops |
//!
//! Attach and detach recompute only the sites whose owners changed and apply them in one
//! [`Batch`]: the literal is written in the phase before a `bl` that reads it, and only changed
//! after the `bl` stops reading it (see `patch::batch`). A literal update on an armed site is one
//! aligned 64-bit store, so a concurrent call sees either the old owner or the new one — each a
//! valid, live ops — never a torn pointer. An ops is freed only after no literal points at it and
//! it is out of the published list.

use alloc::{boxed::Box, string::String, vec::Vec};
use core::fmt;

use super::{
    direct,
    ops::{self, Handler, LIST_OPS, Ops},
    trampoline,
};
use crate::patch::{
    PatchError,
    batch::{self, Batch},
    sites::{self, Site},
};

/// Which functions an ops traces.
#[derive(Clone, Debug)]
pub enum Filter {
    /// Every patch site.
    All,
    /// Sites matching a glob (see `patch::sites::glob`).
    Glob(String),
    /// Exactly these functions (each must be a patch site).
    Addrs(Vec<u64>),
}

/// How a site reaches its ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Through the list dispatcher, which tests every registered ops' filter.
    List,
    /// Through the site's literal: one owner is called directly.
    CallOps,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::List => "list",
            Mode::CallOps => "call-ops",
        }
    }
}

/// An attached ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpsId(pub u64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceError {
    Patch(PatchError),
    /// A glob matched no patch site.
    NoMatch {
        pattern: String,
    },
    /// No attached ops has this id.
    UnknownOps(OpsId),
    /// A trampoline pool is full; nothing was patched.
    PoolExhausted {
        pool: &'static str,
        bytes: u64,
        usage: super::pool::Usage,
    },
    /// The site already has a direct attachment (one per site).
    DirectBusy {
        site: &'static str,
    },
}

impl From<PatchError> for TraceError {
    fn from(e: PatchError) -> Self {
        TraceError::Patch(e)
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Patch(e) => e.fmt(f),
            TraceError::NoMatch { pattern } => {
                write!(
                    f,
                    "no patch site matches \"{pattern}\"; nothing was attached"
                )
            }
            TraceError::UnknownOps(id) => write!(f, "no attached ops has id {}", id.0),
            TraceError::PoolExhausted { pool, bytes, usage } => write!(
                f,
                "the {pool} trampoline pool cannot fit {bytes} more bytes ({} of {} used in {} blocks); detach something or enlarge the pool; nothing was patched",
                usage.used, usage.total, usage.blocks
            ),
            TraceError::DirectBusy { site } => write!(
                f,
                "{site} already has a direct attachment (one per site); detach it first"
            ),
        }
    }
}

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
fn owner<'a>(p: *const Ops) -> &'a Ops {
    // SAFETY: owner pointers always point at ops boxed in the tracer's `ops`, which outlive
    // their listing as owners (removed from the owners before the box is dropped).
    unsafe { &*p }
}

/// Add to `b` what site `i` needs for its current owners and mode.
fn plan_site(b: &mut Batch, t: &Tracer, i: usize) {
    let site: &Site<'static> = &sites::all()[i];
    let st = batch::state(site);
    let owners = &t.owners[i];
    if owners.is_empty() {
        if st != batch::SiteState::compiled() {
            b.restore(site);
        }
        return;
    }
    let direct = owners
        .iter()
        .map(|&p| owner(p))
        .find(|o| o.direct.is_some());
    let list = &LIST_OPS as *const Ops as u64;
    let (target, literal) = match (direct, t.mode[i]) {
        // A sole direct owner: its own route (near trampoline, veneer, or the direct caller).
        (Some(d), _) if owners.len() == 1 => direct::route(d),
        // Direct beside other ops: the list walk, then a hand-over to the trampoline.
        (Some(_), _) => (trampoline::direct_caller(), Some(list)),
        (None, Mode::List) => (trampoline::list_caller(), None),
        (None, Mode::CallOps) => {
            let lit = if owners.len() == 1 {
                owners[0] as u64
            } else {
                list
            };
            (trampoline::ops_caller(), Some(lit))
        }
    };
    if st.call() != Some(target) {
        b.arm(site, target);
    }
    if let Some(lit) = literal
        && st.literal != lit
    {
        b.set_literal(site, lit);
    }
}

fn publish(t: &Tracer) {
    ops::publish(t.ops.iter().map(|o| &**o as *const Ops).collect());
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

/// Attach a prepared ops (a direct attachment's) to the functions at `funcs`.
pub(super) fn attach_ops(mut o: Box<Ops>, funcs: &[u64], mode: Mode) -> Result<OpsId, TraceError> {
    let idx = resolve(&Filter::Addrs(funcs.into()))?;
    o.funcs = idx.iter().map(|&i| sites::all()[i].func).collect();
    attach_resolved(o, &idx, mode)
}

fn attach_resolved(mut o: Box<Ops>, idx: &[usize], mode: Mode) -> Result<OpsId, TraceError> {
    with_tracer(|t| {
        if o.direct.is_some() {
            for &i in idx {
                if t.owners[i].iter().any(|&p| owner(p).direct.is_some()) {
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
        let mut b = Batch::with_capacity(idx.len());
        for &i in idx {
            plan_site(&mut b, t, i);
        }
        if let Err(e) = b.commit() {
            // Undo the bookkeeping; the batch wrote nothing. Dropping the ops frees any
            // trampoline it owned.
            for (&i, &m) in idx.iter().zip(&old_modes) {
                t.owners[i].retain(|&q| q != p);
                t.mode[i] = m;
            }
            t.ops.pop();
            publish(t);
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
        let mut b = Batch::with_capacity(idx.len());
        for &i in &idx {
            plan_site(&mut b, t, i);
        }
        if let Err(e) = b.commit() {
            for &i in &idx {
                t.owners[i].push(p);
            }
            return Err(e.into());
        }
        // No literal points at it any more; take it out of the list, then free it.
        let o = t.ops.remove(pos);
        publish(t);
        drop(o);
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
                owners: t.owners[i].iter().map(|&p| OpsId(owner(p).id)).collect(),
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
