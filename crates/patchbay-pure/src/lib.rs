//! patchbay's pure logic.
//!
//! Everything here compiles for both the kernel (`aarch64-unknown-none-softfloat`, `no_std`) and the host,
//! has no `asm!` and no global state, and is unit-tested on the host with `cargo test`.
//!
//! | module | what |
//! |---|---|
//! | [`insn`] | A64 instruction encoders and decoders used by the patcher and trampolines |
//! | [`batch`] | planning a batch of patch-site changes: the writes of each of its two phases |
//! | [`cache`] | CTR_EL0 decoding and the I-cache maintenance plan for modified text |
//! | [`dispatch`] | the list dispatcher's table: tracers keyed by function, one load/compare/branch each |
//! | [`esr`] | decoding of ESR_ELx for crash reports |
//! | [`grace`] | grace periods: which CPUs one still waits for, which deferred frees it releases |
//! | [`harden`] | the hardened build (BTI, pac-ret): site layout, landing pads, CPU features |
//! | [`ksyms`] | the kernel symbol table blob the host tool embeds into the image |
//! | [`pagetable`] | stage-1 4 KiB-granule descriptors and a table walker |
//! | [`psci`] | PSCI function IDs and return codes (typed errors for CPU bring-up) |
//! | [`layout`] | the physical memory map: kernel, heap, trampoline pools, poke window |
//! | [`shadow`] | the bookkeeping of a return-hook shadow stack (push, pop, overflows, translation) |
//! | [`siteplan`] | the tracer's site planner: the call and literal a site needs for its owners and mode |
//! | [`sites`] | the patch-site table: compiler entries cross-checked with the registry, globs |
//! | [`hash`] | FNV-1a fingerprints of text (byte-identical checks) |
//! | [`ring`] | the recording tracer's lock-free, overwriting per-CPU event ring |
//! | [`stats`] | min / median / mean / p99 / max of benchmark samples |
//! | [`tramp`] | code generation for per-callsite (direct) trampolines and veneers |
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

extern crate alloc;

pub mod batch;
pub mod cache;
pub mod dispatch;
pub mod esr;
pub mod grace;
pub mod harden;
pub mod hash;
pub mod insn;
pub mod ksyms;
pub mod layout;
#[cfg(test)]
mod llvm_mc;
pub mod pagetable;
pub mod psci;
pub mod ring;
pub mod shadow;
pub mod siteplan;
pub mod sites;
pub mod stats;
pub mod tramp;
