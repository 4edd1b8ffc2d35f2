//! fprobe: entry and exit handlers over a set of functions, with per-call data passed from
//! entry to exit — built on an ops (list or call-ops mode) plus [`rethook`].
//!
//! ```ignore
//! fn enter(ip: u64, regs: &mut FtraceRegs, data: &mut u64) -> bool { *data = regs.arg(0); true }
//! fn leave(ip: u64, data: u64, regs: &mut RetRegs) { /* regs.return_value(), data */ }
//! let id = trace::fprobe::register(Filter::Glob("gen_*".into()), Some(enter), Some(leave), Mode::CallOps)?;
//! trace::fprobe::unregister(id)?;
//! ```
//!
//! The entry handler returns whether this call's exit should be hooked. Calls beyond the
//! shadow stack's capacity run their entry handler but not their exit handler, and are counted
//! by `rethook::overflows()`.

use alloc::{boxed::Box, vec::Vec};

use super::{
    attach,
    ops::Ops,
    regs::FtraceRegs,
    rethook::RetRegs,
    types::{Filter, Mode, OpsId, TraceError},
};

/// Entry: `(ip, regs, per-call data out)`; return true to hook this call's return.
pub type EntryFn = fn(ip: u64, regs: &mut FtraceRegs, data: &mut u64) -> bool;
/// Exit: `(ip, per-call data, return registers)`.
pub type ExitFn = fn(ip: u64, data: u64, regs: &mut RetRegs);

struct Fprobe {
    entry: Option<EntryFn>,
    exit: Option<ExitFn>,
}

/// Registered fprobes, boxed so the ops' `data` can point at them.
static FPROBES: spin::Mutex<Vec<(OpsId, Box<Fprobe>)>> = spin::Mutex::new(Vec::new());

extern "C" fn on_entry(ip: u64, _parent: u64, ops: &Ops, regs: &mut FtraceRegs) {
    // SAFETY: `ops.data` is the address of a boxed Fprobe that lives until `unregister` has
    // detached this ops (no site can reach the handler afterwards).
    let fp = unsafe { &*(ops.data as *const Fprobe) };
    let mut data = 0;
    let hook = match fp.entry {
        Some(e) => e(ip, regs, &mut data),
        None => true,
    };
    if hook && fp.exit.is_some() {
        regs.hook_return(ip, on_exit, ops.data, data);
    }
}

extern "C" fn on_exit(ip: u64, ctx: u64, data: u64, regs: &mut RetRegs) {
    // SAFETY: as in `on_entry`; a hooked call in flight keeps its fprobe alive until it returns
    // (unregister frees it after a grace period, which a CPU with a hooked call in flight
    // holds up).
    let fp = unsafe { &*(ctx as *const Fprobe) };
    if let Some(x) = fp.exit {
        x(ip, data, regs);
    }
}

/// Trace `filter` with an entry and/or exit handler, in `mode`.
pub fn register(
    filter: Filter,
    entry: Option<EntryFn>,
    exit: Option<ExitFn>,
    mode: Mode,
) -> Result<OpsId, TraceError> {
    let fp = Box::new(Fprobe { entry, exit });
    let id = attach::attach(filter, on_entry, &*fp as *const Fprobe as u64, mode)?;
    FPROBES.lock().push((id, fp));
    Ok(id)
}

/// Remove an fprobe. Its memory is released once no site can reach it and no hooked call of it
/// is in flight: after a grace period (`crate::grace`), since a CPU with a hooked call in flight
/// (its shadow stack holds the fprobe as the exit's context) passes no quiescent point.
pub fn unregister(id: OpsId) -> Result<(), TraceError> {
    attach::detach(id)?;
    let mut fps = FPROBES.lock();
    if let Some(pos) = fps.iter().position(|(i, _)| *i == id) {
        crate::grace::defer(fps.remove(pos).1);
    }
    Ok(())
}
