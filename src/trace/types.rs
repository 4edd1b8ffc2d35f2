//! The bottom of the tracing core: what the API names (filters, modes, ids) and its errors.
//! Imports nothing from `trace`, so every other tracing module may import it.

use alloc::{string::String, vec::Vec};
use core::fmt;

pub use patchbay_pure::siteplan::Mode;
use patchbay_pure::tramp::TrampError;

use crate::patch::PatchError;

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
        usage: PoolUsage,
    },
    /// The site already has a direct attachment (one per site).
    DirectBusy {
        site: &'static str,
    },
    /// No direct trampoline can serve this site (e.g. fexit past its argument limit).
    Tramp(TrampError),
    /// A BRK probe would displace `paciasp`/`autiasp` (hardened build): emulating them means
    /// signing or authenticating x30 with the interrupted SP in the exception handler, which a
    /// probe does not do; nothing was written.
    ProbeOnPointerAuth {
        addr: u64,
        insn: &'static str,
    },
    /// A BRK probe's address is not a word of its site (the function's address up to the first
    /// instruction of its body).
    ProbeOutsideSite {
        addr: u64,
        site: &'static str,
    },
}

impl From<TrampError> for TraceError {
    fn from(e: TrampError) -> Self {
        TraceError::Tramp(e)
    }
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
            TraceError::ProbeOnPointerAuth { addr, insn } => write!(
                f,
                "a BRK probe at {addr:#x} would displace `{insn}`, which signs or checks the return address: probe the site's entry instead; nothing was written"
            ),
            TraceError::ProbeOutsideSite { addr, site } => write!(
                f,
                "{addr:#x} is not a word of site {site} (its address up to the first instruction of its body); nothing was written"
            ),
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
            TraceError::Tramp(e) => write!(f, "{e}; nothing was patched"),
        }
    }
}

/// Pool accounting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolUsage {
    pub total: u64,
    pub used: u64,
    pub blocks: u64,
    /// Allocations refused because the pool was full.
    pub failures: u64,
}
