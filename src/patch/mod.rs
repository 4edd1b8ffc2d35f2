//! Live text patching: patch sites, the poke path and batches.
//!
//! A patch site is a function marked [`#[patchable]`](crate::patchable), compiled with Linux
//! arm64's CALL_OPS layout:
//!
//! ```text
//!            +-------------------+
//!  func - 8  | nop               |  \ 8-byte, 8-aligned literal: the site's ops pointer
//!  func - 4  | nop               |  / (CALL_OPS); one aligned 64-bit store updates it
//!            +-------------------+
//!  func + 0  | nop               |  -> mov x9, x30    written once, at boot, while only the
//!            |                   |                    boot CPU runs (not CMODX-safe)
//!  func + 4  | nop               |  <-> bl target     the only word toggled while it may run
//!            +-------------------+
//!  func + 8  | compiled body ... |
//! ```
//!
//! An armed site calls `target` with x30 = func + 8 (where to continue) and x9 = the caller's
//! return address; x9..x17 are scratch at a function's entry (AAPCS64), so the site may clobber
//! x9. The target must preserve the argument registers and return to x30 with x30 = x9.
//!
//! Layers, bottom up:
//! - [`maintenance`]: the architectural cache-maintenance sequence after writing instructions,
//!   executed from the pure plan in `patchbay_pure::cache` (and recordable, for tests);
//! - [`poke`]: validated writes of instruction words and literals through a per-CPU RW alias of
//!   the target page, grouped per page, then one maintenance pass;
//! - [`sites`]: the site table (registry cross-checked with the compiler's entries);
//! - [`batch`]: site-level changes (arm / retarget / disarm / literal) in two ordered phases so
//!   every intermediate state is a correct program, each under a [`poke::Protocol`]: live (then
//!   a kick of the other CPUs) or stop-the-world.

pub mod batch;
pub mod counter;
pub mod error;
pub mod maintenance;
pub mod poke;
pub mod sites;
pub mod text;

pub use error::PatchError;

/// Build the site table (a registry/compiler mismatch is a boot failure) and prepare every site
/// (`mov x9, x30` at its entry, `batch` "Boot").
///
/// # Safety
/// Once, during single-CPU boot, with the heap up.
pub unsafe fn init() {
    // SAFETY: forwarded from the caller.
    unsafe { sites::init() };
    // SAFETY: forwarded from the caller (single-CPU boot).
    unsafe { batch::init() };
}
