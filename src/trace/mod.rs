//! Function tracing on top of the patch engine: Linux arm64 ftrace's two ops-based designs, live
//! in one image and switchable per site.
//!
//! - [`regs`]: `FtraceRegs`, the minimal entry register record handlers see and may change;
//! - [`trampoline`]: the static trampolines (list mode and call-ops mode);
//! - [`ops`]: ops objects and the dispatchers (`single_func`, `list_func`);
//! - [`recursion`]: the per-CPU recursion guard;
//! - [`attach`]: the API — attach / detach / enable, per-site mode and owners;
//! - [`pool`]: the executable trampoline pools (near and far);
//! - [`direct`]: direct calls — per-callsite trampolines (entry and fexit), near and far;
//! - [`rethook`]: return hooks with per-CPU shadow stacks; [`fprobe`]: entry + exit handlers
//!   over a set of functions; [`kprobe`]: BRK probes and kretprobe-style return probes;
//! - [`recorder`]: the recording function tracer (one event per call into per-CPU rings).

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

pub use attach::{
    Filter, Mode, OpsId, SiteInfo, TraceError, attach, detach, detach_all, set_enabled, sites,
};
pub use direct::{DirectCtx, DirectKind, Reach, attach_direct, attach_direct_at};
pub use ops::{Handler, Ops};
pub use regs::FtraceRegs;
