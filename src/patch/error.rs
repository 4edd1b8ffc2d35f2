//! Typed patching errors. Each carries what was expected and what was found, and its message
//! says what to do next. After any error, text is byte-identical to before: every check runs
//! before the first write.

use alloc::string::String;
use core::fmt;

use crate::{ipi::IpiError, stop::StopError};

use patchbay_pure::{
    batch::PlanError,
    insn::{self, EncodeError},
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatchError {
    /// `addr` is not the address of a patchable function.
    NotASite { addr: u64 },
    /// No site name matches the pattern.
    NoSuchSite { pattern: String },
    /// A write address is not aligned to its width.
    Misaligned { addr: u64, align: u64 },
    /// A write outside kernel text and the trampoline pools.
    NotPatchable { addr: u64 },
    /// The word in memory is not the one the change expected to replace.
    Mismatch {
        addr: u64,
        expected: u64,
        found: u64,
        width: u8,
    },
    /// The new instruction cannot be encoded (e.g. a BL target beyond ±128 MiB).
    Encode(EncodeError),
    /// Two writes to overlapping bytes in one batch.
    Overlap { addr: u64 },
    /// One site changed twice in one batch.
    SiteTwiceInBatch { site: &'static str },
    /// Disarming a site that is not armed.
    NotArmed { site: &'static str },
    /// A non-CMODX-safe change (the first `mov x9, x30`) needs the other CPUs stopped, and
    /// stopping them failed.
    Stop(StopError),
    /// CPU `cpu` was interrupted about to execute the word at `addr` right after another word,
    /// both written by a non-CMODX-safe change (it could pair the old first word with the new
    /// second one), or inside a trampoline while a literal changes, every time the machine was
    /// stopped.
    SiteInUse { cpu: u32, addr: u64 },
    /// With other CPUs online, text is patched only from normal context with IRQs unmasked:
    /// the kick and the stop-the-world are IPIs the caller must be able to wait for.
    Context(IpiError),
}

impl From<EncodeError> for PatchError {
    fn from(e: EncodeError) -> Self {
        PatchError::Encode(e)
    }
}

impl From<PlanError<'static>> for PatchError {
    fn from(e: PlanError<'static>) -> Self {
        match e {
            PlanError::SiteTwice { site } => PatchError::SiteTwiceInBatch { site },
            PlanError::NotArmed { site } => PatchError::NotArmed { site },
            PlanError::Encode(e) => PatchError::Encode(e),
        }
    }
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatchError::NotASite { addr } => write!(
                f,
                "{addr:#x} is not a patch site: only functions marked #[patchable] can be patched (see `sites()`)"
            ),
            PatchError::NoSuchSite { pattern } => {
                write!(
                    f,
                    "no patch site matches \"{pattern}\" (names are module paths; globs use * and ?)"
                )
            }
            PatchError::Misaligned { addr, align } => {
                write!(
                    f,
                    "write at {addr:#x} is not {align}-byte aligned; instructions are 4-aligned, literals 8-aligned"
                )
            }
            PatchError::NotPatchable { addr } => write!(
                f,
                "{addr:#x} is outside kernel text and the trampoline pools; only code is patched"
            ),
            PatchError::Mismatch {
                addr,
                expected,
                found,
                width: 4,
            } => write!(
                f,
                "at {addr:#x} expected `{}` but found `{}`: the site is not in the state the change assumes; nothing was written",
                insn::describe(*expected as u32, *addr),
                insn::describe(*found as u32, *addr)
            ),
            PatchError::Mismatch {
                addr,
                expected,
                found,
                ..
            } => write!(
                f,
                "literal at {addr:#x} expected {expected:#x} but holds {found:#x}; nothing was written"
            ),
            PatchError::Encode(e) => write!(f, "{e}; nothing was written"),
            PatchError::Overlap { addr } => {
                write!(
                    f,
                    "two writes to {addr:#x} in one batch; merge them into one change"
                )
            }
            PatchError::SiteTwiceInBatch { site } => {
                write!(
                    f,
                    "site {site} is changed twice in one batch; submit one change per site"
                )
            }
            PatchError::NotArmed { site } => {
                write!(f, "site {site} is not armed; nothing to disarm")
            }
            PatchError::Stop(e) => write!(
                f,
                "this change is not CMODX-safe (e.g. the entry word `nop` <-> `mov x9, x30`) and needs the other CPUs stopped: {e}"
            ),
            PatchError::Context(e) => write!(
                f,
                "with other CPUs online, text is patched from normal context with IRQs unmasked ({e}); nothing was written"
            ),
            PatchError::SiteInUse { cpu, addr } => write!(
                f,
                "CPU {cpu} was interrupted at {addr:#x}, between words being written (or in a trampoline while its literal changes), every time the machine was stopped"
            ),
        }
    }
}
