//! The console's attachments: one `attach` command is one [`Attachment`], whatever it took
//! underneath (one ops for list/call-ops/rethook/fprobe, one direct attachment or probe per site
//! for the per-site mechanisms).
//!
//! Every handler reaches its attachment's [`Hook`] through the data word its mechanism passes
//! (ops `data`, `DirectCtx::data`, the probe's `data`, the return hook's `data`, the fprobe's
//! `ctx`).
//!
//! All-or-nothing: a mechanism that needs several underlying attachments undoes the ones it made
//! when one fails, so a refused `attach` leaves text and state as they were.

use alloc::{boxed::Box, string::String, vec::Vec};
use core::{
    fmt,
    sync::atomic::{AtomicU64, Ordering},
};

use patchbay_pure::tramp;
use patchbay_shell::{Glob, HandlerKind, Mechanism};

use crate::{
    exception::ExceptionFrame,
    patch::sites::{self, Site},
    trace::{
        self, DirectCtx, DirectKind, Filter, FtraceRegs, Mode, Ops, OpsId, Reach, TraceError,
        fprobe,
        kprobe::{self, ProbeId},
        recorder,
        rethook::RetRegs,
    },
};

/// What an attachment's handlers share: its counters and what to do on a call.
pub struct Hook {
    /// Calls that reached the handler.
    pub hits: AtomicU64,
    /// Returns that reached the exit handler (mechanisms with a return hook).
    pub returns: AtomicU64,
    pub handler: HandlerKind,
    /// The mechanism's code, written into recorded events.
    pub tag: u8,
}

impl Hook {
    /// The entry action: count, then record or set an argument.
    #[inline(always)]
    fn enter(&self, ip: u64, parent: u64, set_arg: impl FnOnce(usize, u64)) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        match self.handler {
            HandlerKind::Count => {}
            HandlerKind::Record => recorder::emit(ip, parent, self.tag),
            HandlerKind::SetArg { index, value } => set_arg(usize::from(index), value),
        }
    }
}

/// The hook a handler's data word names.
fn hook<'a>(data: u64) -> &'a Hook {
    // SAFETY: every data word handed to a mechanism below is the address of a boxed Hook owned
    // by an Attachment, which frees it only after all its underlying attachments are detached
    // (no site reaches the handler any more).
    unsafe { &*(data as *const Hook) }
}

extern "C" fn on_ops(ip: u64, parent: u64, ops: &Ops, regs: &mut FtraceRegs) {
    hook(ops.data).enter(ip, parent, |i, v| regs.set_arg(i, v));
}

extern "C" fn on_rethook(ip: u64, parent: u64, ops: &Ops, regs: &mut FtraceRegs) {
    on_ops(ip, parent, ops, regs);
    regs.hook_return(ip, on_return, ops.data, ops.data);
}

/// The exit of rethook, fprobe and kretprobe attachments: `data` is the hook.
extern "C" fn on_return(_ip: u64, _ctx: u64, data: u64, _regs: &mut RetRegs) {
    hook(data).returns.fetch_add(1, Ordering::Relaxed);
}

extern "C" fn on_direct(ctx: &DirectCtx, args: *mut u64) {
    let (record, _) = ctx.callsite(args);
    // SAFETY: called by an entry trampoline with its own `args`: its call-site record
    // { caller's x29, return address } is live on its frame while the handler runs.
    let parent = unsafe { *((record + 8) as *const u64) };
    hook(ctx.data).enter(ctx.site, parent, |i, v| {
        // SAFETY: as above; `i < nargs` was checked by `attach`.
        unsafe { ctx.args(args)[i] = v };
    });
}

extern "C" fn on_fexit(ctx: &DirectCtx, args: *mut u64, _ret: &mut u64) {
    // The fexit trampoline passed `sp + view` as `args`; its frame record { x29, return address
    // into the caller } is the top 16 bytes of its frame (tramp.rs `fexit`).
    let parent = match tramp::FexitLayout::new(ctx.regs) {
        // SAFETY: called by an fexit trampoline with this layout, whose frame is live while the
        // handler runs.
        Ok(l) => unsafe {
            *((args as u64 - u64::from(l.view) + u64::from(l.frame) - 8) as *const u64)
        },
        Err(_) => 0,
    };
    // `attach` refuses argN=V for fexit: the body has run.
    hook(ctx.data).enter(ctx.site, parent, |_, _| {});
}

/// fprobe's entry: `ctx` is the hook, handed on to the exit ([`on_return`]) as its data.
extern "C" fn fprobe_entry(ip: u64, ctx: u64, data: &mut u64, regs: &mut FtraceRegs) -> bool {
    hook(ctx).enter(ip, regs.parent_ip(), |i, v| regs.set_arg(i, v));
    *data = ctx;
    true
}

extern "C" fn on_brk(ip: u64, data: u64, frame: &mut ExceptionFrame) {
    let parent = frame.x[30];
    hook(data).enter(ip, parent, |i, v| frame.x[i] = v);
}

/// What an attachment holds underneath.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handle {
    Ops(OpsId),
    Fprobe(OpsId),
    Probe(ProbeId),
}

impl Handle {
    fn release(self) -> Result<(), TraceError> {
        match self {
            Handle::Ops(id) => trace::detach(id),
            Handle::Fprobe(id) => fprobe::unregister(id),
            Handle::Probe(id) => kprobe::unregister(id),
        }
    }
}

/// One `attach` command's result.
pub struct Attachment {
    pub id: u32,
    pub mechanism: Mechanism,
    pub pattern: String,
    pub sites: Vec<&'static Site<'static>>,
    hook: Box<Hook>,
    handles: Vec<Handle>,
}

impl Attachment {
    pub fn handler(&self) -> HandlerKind {
        self.hook.handler
    }

    pub fn hits(&self) -> u64 {
        self.hook.hits.load(Ordering::Relaxed)
    }

    /// Returns seen, for mechanisms that hook the return.
    pub fn returns(&self) -> Option<u64> {
        matches!(
            self.mechanism,
            Mechanism::Rethook | Mechanism::Fprobe | Mechanism::Kretprobe
        )
        .then(|| self.hook.returns.load(Ordering::Relaxed))
    }

    /// Does this attachment own the ops `id`?
    pub fn owns_ops(&self, id: OpsId) -> bool {
        self.handles
            .iter()
            .any(|h| matches!(h, Handle::Ops(i) | Handle::Fprobe(i) if *i == id))
    }

    /// Is site `func` probed with BRK by this attachment?
    pub fn probes(&self, func: u64) -> bool {
        self.handles.iter().any(|h| matches!(h, Handle::Probe(_)))
            && self.sites.iter().any(|s| s.func == func)
    }
}

/// Why an attach or detach was refused (nothing changed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttachError {
    NoMatch(String),
    AlreadyAttached {
        site: &'static str,
        id: u32,
        mechanism: Mechanism,
    },
    TooFewArguments {
        site: &'static str,
        nargs: u32,
        index: u8,
    },
    ArgumentAfterExit,
    UnknownId(u32),
    Trace(TraceError),
}

impl From<TraceError> for AttachError {
    fn from(e: TraceError) -> Self {
        AttachError::Trace(e)
    }
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachError::NoMatch(p) => write!(
                f,
                "no patch site matches {p:?}; nothing was attached (sites lists them)"
            ),
            AttachError::AlreadyAttached {
                site,
                id,
                mechanism,
            } => write!(
                f,
                "{site} is already attached with {} (#{id}); detach {id} first",
                mechanism.name()
            ),
            AttachError::TooFewArguments { site, nargs, index } => write!(
                f,
                "arg{index}: {site} takes {nargs} argument(s); nothing was attached"
            ),
            AttachError::ArgumentAfterExit => write!(
                f,
                "fexit runs after the function returned: argN=V needs an entry mechanism"
            ),
            AttachError::UnknownId(id) => {
                write!(f, "no attachment #{id} (list shows them)")
            }
            AttachError::Trace(e) => write!(f, "{e}"),
        }
    }
}

/// The console's attachments.
pub struct Attachments {
    list: Vec<Attachment>,
    next: u32,
}

impl Default for Attachments {
    fn default() -> Self {
        Self::new()
    }
}

impl Attachments {
    pub const fn new() -> Self {
        Attachments {
            list: Vec::new(),
            next: 1,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Attachment> {
        self.list.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Attach `handler` with `mechanism` to every site `glob` matches.
    pub fn attach(
        &mut self,
        mechanism: Mechanism,
        glob: &Glob,
        handler: HandlerKind,
    ) -> Result<&Attachment, AttachError> {
        let matched: Vec<&'static Site<'static>> = sites::all()
            .iter()
            .filter(|s| glob.matches(s.name))
            .collect();
        if matched.is_empty() {
            return Err(AttachError::NoMatch(glob.as_str().into()));
        }
        self.check(mechanism, &matched, handler)?;
        let hook = Box::new(Hook {
            hits: AtomicU64::new(0),
            returns: AtomicU64::new(0),
            handler,
            tag: mechanism.code(),
        });
        let data = &*hook as *const Hook as u64;
        let handles = make(mechanism, &matched, data)?;
        let id = self.next;
        self.next += 1;
        self.list.push(Attachment {
            id,
            mechanism,
            pattern: glob.as_str().into(),
            sites: matched,
            hook,
            handles,
        });
        Ok(self.list.last().expect("just pushed"))
    }

    /// Refusals that need no patching to decide.
    fn check(
        &self,
        mechanism: Mechanism,
        matched: &[&'static Site<'static>],
        handler: HandlerKind,
    ) -> Result<(), AttachError> {
        for a in self.list.iter().filter(|a| a.mechanism == mechanism) {
            if let Some(s) = matched
                .iter()
                .find(|s| a.sites.iter().any(|t| t.func == s.func))
            {
                return Err(AttachError::AlreadyAttached {
                    site: s.name,
                    id: a.id,
                    mechanism,
                });
            }
        }
        if let HandlerKind::SetArg { index, .. } = handler {
            if mechanism == Mechanism::Fexit {
                return Err(AttachError::ArgumentAfterExit);
            }
            if let Some(s) = matched.iter().find(|s| index >= s.arg_regs.regs) {
                return Err(AttachError::TooFewArguments {
                    site: s.name,
                    nargs: u32::from(s.arg_regs.regs),
                    index,
                });
            }
        }
        Ok(())
    }

    /// Detach attachment `id`: every site it patched is back as it was.
    pub fn detach(&mut self, id: u32) -> Result<Attachment, AttachError> {
        let pos = self
            .list
            .iter()
            .position(|a| a.id == id)
            .ok_or(AttachError::UnknownId(id))?;
        let a = &mut self.list[pos];
        while let Some(h) = a.handles.last().copied() {
            h.release()?;
            a.handles.pop();
        }
        Ok(self.list.remove(pos))
    }

    /// Detach everything, newest first; how many attachments there were.
    pub fn detach_all(&mut self) -> Result<usize, AttachError> {
        let ids: Vec<u32> = self.list.iter().rev().map(|a| a.id).collect();
        for &id in &ids {
            self.detach(id)?;
        }
        Ok(ids.len())
    }
}

/// Make the underlying attachments; on an error, release the ones already made.
fn make(
    mechanism: Mechanism,
    matched: &[&'static Site<'static>],
    data: u64,
) -> Result<Vec<Handle>, AttachError> {
    let addrs = || Filter::Addrs(matched.iter().map(|s| s.func).collect());
    let one = |h: Result<OpsId, TraceError>| h.map(|id| alloc::vec![Handle::Ops(id)]);
    let handles = match mechanism {
        Mechanism::List => one(trace::attach(addrs(), on_ops, data, Mode::List))?,
        Mechanism::CallOps => one(trace::attach(addrs(), on_ops, data, Mode::CallOps))?,
        Mechanism::Rethook => one(trace::attach(addrs(), on_rethook, data, Mode::CallOps))?,
        Mechanism::Fprobe => alloc::vec![Handle::Fprobe(fprobe::register(
            addrs(),
            Some(fprobe_entry),
            Some(on_return),
            data,
            Mode::CallOps,
        )?)],
        Mechanism::Direct
        | Mechanism::DirectFarOps
        | Mechanism::DirectFarVeneer
        | Mechanism::Fexit
        | Mechanism::Brk
        | Mechanism::Kretprobe => {
            let mut made = Vec::with_capacity(matched.len());
            for site in matched {
                match per_site(mechanism, site, data) {
                    Ok(h) => made.push(h),
                    Err(e) => {
                        // Undo in reverse; these were just made, so releasing them succeeds.
                        for h in made.into_iter().rev() {
                            h.release()?;
                        }
                        return Err(e.into());
                    }
                }
            }
            made
        }
    };
    Ok(handles)
}

fn per_site(mechanism: Mechanism, site: &Site<'static>, data: u64) -> Result<Handle, TraceError> {
    let direct = |kind, reach| trace::attach_direct(site, kind, data, reach).map(Handle::Ops);
    match mechanism {
        Mechanism::Direct => direct(DirectKind::Entry(on_direct), Reach::Near),
        Mechanism::DirectFarOps => direct(DirectKind::Entry(on_direct), Reach::FarViaOps),
        Mechanism::DirectFarVeneer => direct(DirectKind::Entry(on_direct), Reach::FarViaVeneer),
        Mechanism::Fexit => direct(DirectKind::Fexit(on_fexit), Reach::Near),
        Mechanism::Brk => kprobe::register_kprobe(site, on_brk, data).map(Handle::Probe),
        Mechanism::Kretprobe => {
            kprobe::register_kretprobe(site, Some(on_brk), on_return, data).map(Handle::Probe)
        }
        Mechanism::List | Mechanism::CallOps | Mechanism::Rethook | Mechanism::Fprobe => {
            unreachable!("ops mechanisms attach all their sites at once")
        }
    }
}
