//! Executes the cache-maintenance plan that publishes modified instructions
//! (`patchbay_pure::cache::plan`: `DC CVAU` per D-line unless CTR_EL0.IDC, `DSB ISH`, `IC IVAU`
//! per I-line — or one `IC IALLUIS` for a pass over very many lines — unless CTR_EL0.DIC,
//! `DSB ISH`, `ISB`), with line sizes from CTR_EL0.
//!
//! QEMU does not model instruction-cache incoherence, so a missing `IC IVAU` would pass every
//! emulated test. Instead, the executor can *record* the operations it issues, in order, exactly
//! where it issues them ([`record`]); the kernel tests compare the recording against the
//! architectural rule. Recording costs one relaxed load per operation when off.
//!
//! Scope: the final `ISB` context-synchronizes *this* PE. Any other PE that may execute the
//! modified code must take its own context-synchronization event before relying on the new
//! instructions: `patch::poke` kicks them (or had them stopped) and then marks the change
//! published.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use patchbay_pure::cache::{self, Op};

use crate::arch;

static RECORDING: AtomicBool = AtomicBool::new(false);
static LOG: spin::Mutex<Vec<Op>> = spin::Mutex::new(Vec::new());

/// Run `f` and return the maintenance operations it issued, in order.
pub fn record(f: impl FnOnce()) -> Vec<Op> {
    LOG.lock().clear();
    RECORDING.store(true, Ordering::SeqCst);
    f();
    RECORDING.store(false, Ordering::SeqCst);
    core::mem::take(&mut *LOG.lock())
}

/// Run `f` with the recording paused: for the second store of a live phase under QEMU's threads
/// (`poke::rewrite_for_emulator`), an emulator workaround that repeats the same words and lines
/// and is not part of the architectural sequence the recording is compared against. The text
/// lock is held, so no other patcher records meanwhile.
pub fn unrecorded(f: impl FnOnce()) {
    let was = RECORDING.swap(false, Ordering::SeqCst);
    f();
    RECORDING.store(was, Ordering::SeqCst);
}

/// Publish instructions written to `written` (`[start, end)` ranges sorted by start, or
/// [`cache::Words`]) to instruction fetch on this PE.
pub fn sync_icache(written: impl cache::Written) {
    // Test-only (`icache-teeth`): the step of the sequence to drop, from the boot arguments.
    #[cfg(feature = "icache-teeth")]
    arch::cache::teeth::select(crate::boot_info::get().bootarg("icache.break"));
    // One check per pass, not per operation: the recording path is for tests only, and the
    // per-line loop of the other one has no branch (and no spill) for it.
    if RECORDING.load(Ordering::Relaxed) {
        cache::plan(arch::cache::ctr(), written, |op| {
            LOG.lock().push(op);
            issue(op);
        });
    } else {
        cache::plan(arch::cache::ctr(), written, issue);
    }
}

/// Issue one maintenance operation.
#[inline(always)]
fn issue(op: Op) {
    match op {
        // Clean the written data to the point of unification, where the I-side sees it.
        Op::DcCvau(a) => arch::cache::dc_cvau(a),
        // Cleans complete before invalidates / invalidates complete before the ISB.
        Op::DsbIsh => arch::cache::dsb_ish_maintenance(),
        // Drop stale copies of the old instructions from every PE's I-cache (broadcast).
        Op::IcIvau(a) => arch::cache::ic_ivau(a),
        // So many lines that one broadcast invalidation of every I-cache replaces them.
        Op::IcIalluis => arch::cache::ic_ialluis(),
        // This PE refetches everything after this point (the others: `poke::kick`).
        Op::Isb => arch::cache::isb_sequence(),
    }
}
