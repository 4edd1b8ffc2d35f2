//! Function tracing on top of the patch engine: Linux arm64 ftrace's designs, live in one image
//! and switchable per site.
//!
//! # The core and its clients
//!
//! ```text
//!   clients   direct    fprobe    kprobe          (mechanisms built on the core)
//!               |  \       |  \      |
//!               |   \      |   rethook            (return hooks; a client of the core too)
//!               |    \     |     |
//!   core      attach ---- pool   |                (the API; trampoline pools)
//!               |                |
//!             trampoline         |                (the static trampolines, in assembly)
//!               |                |
//!             ops       recursion                 (ops + list dispatcher; the recursion guard)
//!               |
//!             regs      types                     (FtraceRegs; filters, modes, ids, errors)
//! ```
//!
//! Imports run downward only. The core (`types`, `regs`, `recursion`, `ops`, `trampoline`,
//! `attach`, `pool`) never imports a client; a client reaches the core through `attach`
//! (`attach_ops`) and what it hangs on its ops (an [`ops::Attachment`] with its route and
//! resources). Below tracing, the unwinder and the crash report learn about trampolines through
//! the hooks [`init`] registers (`unwind::Hooks`), not by importing `trace`.
//!
//! - [`types`]: filters, modes, ops ids and [`TraceError`];
//! - [`regs`]: `FtraceRegs`, the minimal entry register record handlers see and may change;
//! - [`recursion`]: the per-CPU recursion guard;
//! - [`ops`]: ops objects and the list dispatcher (`list_func`); a user ops' own handler is
//!   what the call-ops trampoline calls directly;
//! - [`trampoline`]: the static trampolines (list mode, call-ops mode, the direct caller);
//! - [`attach`]: the API — attach / detach / enable, per-site mode and owners;
//! - [`pool`]: the executable trampoline pools (near and far);
//! - clients: [`direct`]: direct calls — per-callsite trampolines (entry and fexit), near and far;
//!   [`rethook`]: return hooks with per-CPU shadow stacks; [`fprobe`]: entry + exit handlers
//!   over a set of functions; [`kprobe`]: BRK probes and kretprobe-style return probes;
//!   [`recorder`]: the recording function tracer (one event per call into per-CPU rings).

pub mod attach;
pub mod direct;
pub mod fprobe;
pub mod kprobe;
pub mod ops;
pub mod pool;
pub mod recorder;
pub mod recursion;
pub mod regs;
pub mod rethook;
pub mod trampoline;
pub mod types;

pub use attach::{SiteInfo, attach, detach, detach_all, set_enabled, sites};
pub use direct::{DirectCtx, DirectKind, Reach, attach_direct, attach_direct_at};
pub use ops::{Handler, Ops};
pub use regs::FtraceRegs;
pub use types::{Filter, Mode, OpsId, TraceError};

/// Is `pc` inside tracing machinery that is not a function of its own: the static trampolines,
/// the return trampoline, or a trampoline pool?
fn in_trampoline(pc: u64) -> bool {
    trampoline::contains(pc)
        || pool::PoolKind::Near.range().contains(pc)
        || pool::PoolKind::Far.range().contains(pc)
        || rethook::trampoline_contains(pc)
}

/// Tell the unwinder (and so the crash report) about tracing's trampolines and return hooks.
/// Once, at boot, after the memory plan exists.
pub fn init() {
    // A hooked call in flight holds its exit handler's state: not quiescent (`grace`).
    crate::grace::set_busy_check(|| rethook::depth() != 0);
    rethook::init();
    crate::unwind::register_hooks(crate::unwind::Hooks {
        in_trampoline,
        return_trampoline: rethook::trampoline(),
        real_return_address: rethook::real_return_address,
    });
}
