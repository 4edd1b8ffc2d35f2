//! Site-level changes, applied in one batch: arm (or retarget) a site's `bl`, disarm it, restore
//! it to its compiled state, set its CALL_OPS literal.
//!
//! The engine remembers what it last wrote at every site ([`SiteState`]) and states that as the
//! expected old instruction of every write, so a site that was changed behind its back is
//! refused ([`PatchError::Mismatch`]) instead of overwritten.
//!
//! # Ordering: every intermediate state is a correct program
//!
//! A batch is written in two phases, each one pass of [`poke::apply_phases`] (one alias mapping
//! per page, one maintenance pass, one ISB); which word goes in which phase is planned by
//! `patchbay_pure::batch` (host-tested), and this module keeps the site states and the writes:
//!
//! | phase | arm (or retarget) | disarm | restore |
//! |---|---|---|---|
//! | 1 | the entry `mov x9, x30` (first arm only); a literal set with it | `bl` → `nop` | `bl` → `nop` |
//! | 2 | the `bl` | a literal set with it | entry `mov` → `nop`; literal → `nop; nop` |
//!
//! Like Linux, `mov x9, x30` is written once, at the first arm, and stays when the site is
//! disarmed: toggling a site afterwards is a single CMODX-safe word. [`Batch::restore`] takes a
//! site all the way back to its compiled bytes (what tests use to prove text is byte-identical).
//!
//! Why each state is safe for a CPU executing the site:
//! - `nop; nop` — the compiled state.
//! - `mov x9, x30; nop` — x9 is a scratch register at function entry (AAPCS64: x9–x15 are
//!   corruptible temporaries), so the extra move is harmless.
//! - `mov x9, x30; bl target` — armed: the target finds the caller's return address in x9. The
//!   `bl` becomes visible only after the `mov` (phase 1 completed, with its maintenance, before
//!   phase 2 writes), and a literal set with an arm is published before the `bl` that reads it.
//! - Disarm and restore reverse the order: the `bl` disappears before the `mov` does, and the
//!   literal changes only once no `bl` can read it.
//!
//! `nop` ↔ `bl` and `bl` ↔ `bl` are CMODX-safe (the Arm ARM allows them to be changed while
//! another PE executes them). `nop` ↔ `mov` is not: it is only written when no other CPU runs.
//! With more CPUs online, a batch that writes it runs inside [`stop::stop_machine`]: every other
//! CPU is parked in its IPI handler, and the batch is written only if none of them was
//! interrupted inside a word being written or right after it (its next instruction could then
//! pair an old word with a new one: `nop` executed, then the new `bl` without its `mov`); else
//! the stop is retried ([`STOP_ATTEMPTS`]) and finally refused ([`PatchError::SiteInUse`]).
//!
//! All checks (encodings, expected words, alignment, regions) run before the first write, so an
//! error leaves text byte-identical.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use patchbay_pure::batch::{self as plan, Call, Change, Literal, Write};
pub use patchbay_pure::batch::{LITERAL_NOPS, SiteState};

use super::{
    PatchError,
    poke::{self, PokeStats},
    sites::{self, Site},
};
use crate::{percpu, stop};

/// How often a stopped batch is retried while another CPU sits inside a site being written.
pub const STOP_ATTEMPTS: usize = 100;

/// Write both phases with every other CPU stopped, none of them interrupted inside (or right
/// after) a word being written.
fn apply_stopped(phase1: &mut [Write], phase2: &mut [Write]) -> Result<PokeStats, PatchError> {
    let me = percpu::this().id;
    // A CPU stopped inside a trampoline may sit between a site's `bl` and the trampoline's load
    // of that site's literal: both phases are written in one stop, so a literal cleared now
    // (restore) would be read as `nop; nop` when it resumes. Found by the grace-period tests.
    let literals = phase1
        .iter()
        .chain(phase2.iter())
        .any(|w| w.width == poke::Width::Literal);
    let mut in_use = None;
    for _ in 0..STOP_ATTEMPTS {
        let outcome = stop::stop_machine(|| {
            let busy = percpu::online_cpus().filter(|c| c.id != me).find_map(|c| {
                let pc = c.irq_elr.load(Ordering::Relaxed);
                if literals && crate::unwind::in_trampoline(pc.wrapping_add(4)) {
                    return Some((c.id, pc));
                }
                phase1
                    .iter()
                    .chain(phase2.iter())
                    .find(|w| (w.addr..w.addr + 8).contains(&pc))
                    .map(|w| (c.id, w.addr))
            });
            match busy {
                Some(site) => Err(site),
                None => Ok(poke::apply_phases(&mut [phase1, phase2])),
            }
        })
        .map_err(PatchError::Stop)?;
        match outcome {
            Ok(written) => return written,
            Err(site) => in_use = Some(site),
        }
    }
    let (cpu, addr) = in_use.expect("at least one attempt");
    Err(PatchError::SiteInUse { cpu, addr })
}

/// What the engine keeps between batches: every site's state, and the buffers a commit plans
/// into. The buffers are cleared, never freed, so once they have grown to the largest batch seen
/// (at most every site: about 100 bytes per site) a commit allocates nothing — with a first-fit
/// heap, each allocation and free is a walk of the free list, which dominated small batches.
struct Engine {
    /// Per site (index into `sites::all()`): what the engine last wrote there.
    states: Vec<SiteState>,
    /// A commit's planned next states, applied once both phases are written.
    next: Vec<(usize, SiteState)>,
    /// A commit's writes, phase 1 and phase 2.
    phases: [Vec<Write>; 2],
}

static ENGINE: spin::Mutex<Engine> = spin::Mutex::new(Engine {
    states: Vec::new(),
    next: Vec::new(),
    phases: [Vec::new(), Vec::new()],
});

/// Start tracking every site in its compiled state.
pub(crate) fn init() {
    ENGINE.lock().states = alloc::vec![SiteState::COMPILED; sites::all().len()];
}

/// The engine's view of `site`.
pub fn state(site: &Site<'_>) -> SiteState {
    let i = sites::index_of(site).expect("a site from the site table");
    ENGINE.lock().states[i]
}

/// Statistics of a committed batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    pub sites: usize,
    /// Writes of phase 1 and phase 2.
    pub phase_writes: [usize; 2],
    pub poke: PokeStats,
}

/// A set of site changes committed together.
#[derive(Default)]
pub struct Batch {
    changes: Vec<Change>,
    error: Option<PatchError>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Batch {
            changes: Vec::with_capacity(n),
            error: None,
        }
    }

    fn push(&mut self, site: &Site<'_>, call: Call, literal: Literal) -> &mut Self {
        match sites::index_of(site) {
            Some(i) => self.changes.push(Change {
                site: i,
                call,
                literal,
            }),
            None => {
                self.error
                    .get_or_insert(PatchError::NotASite { addr: site.func });
            }
        }
        self
    }

    /// Make `site` call `target` (arming it, or retargeting an armed site).
    pub fn arm(&mut self, site: &Site<'_>, target: u64) -> &mut Self {
        self.push(site, Call::To(target), Literal::Keep)
    }

    /// Stop `site` calling its target (`bl` → `nop`). `mov x9, x30` stays, as in Linux.
    pub fn disarm(&mut self, site: &Site<'_>) -> &mut Self {
        self.push(site, Call::Off, Literal::Keep)
    }

    /// Return `site` to its compiled bytes: disarmed, `nop` at the entry, literal `nop; nop`.
    pub fn restore(&mut self, site: &Site<'_>) -> &mut Self {
        self.push(site, Call::Restore, Literal::Keep)
    }

    /// Set `site`'s 64-bit literal (the CALL_OPS slot).
    pub fn set_literal(&mut self, site: &Site<'_>, value: u64) -> &mut Self {
        self.push(site, Call::Keep, Literal::Set(value))
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Apply every change, or none: merge them per site, plan both phases
    /// (`patchbay_pure::batch`), validate and write both phases ([`poke::apply_phases`]; with
    /// other CPUs stopped when entry words change), then record the sites' new states.
    pub fn commit(mut self) -> Result<BatchStats, PatchError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        plan::merge(&mut self.changes, sites::all())?;
        let mut engine = ENGINE.lock();
        // The buffers are taken out as locals while the batch is planned and written (so the
        // compiler knows they do not alias each other or the states), and handed back, cleared,
        // whatever the outcome.
        let mut next = core::mem::take(&mut engine.next);
        let [mut phase1, mut phase2] = core::mem::take(&mut engine.phases);
        let result = plan_and_write(
            &self.changes,
            &mut engine.states,
            &mut next,
            [&mut phase1, &mut phase2],
        );
        next.clear();
        phase1.clear();
        phase2.clear();
        engine.next = next;
        engine.phases = [phase1, phase2];
        result
    }
}

/// Plan `changes` (merged, one per site) into `phases` and `next`, refuse entry-word writes
/// while other CPUs run, validate and write both phases ([`poke::apply_phases`]), then record
/// the sites' new states in `states`.
fn plan_and_write(
    changes: &[Change],
    states: &mut [SiteState],
    next: &mut Vec<(usize, SiteState)>,
    [phase1, phase2]: [&mut Vec<Write>; 2],
) -> Result<BatchStats, PatchError> {
    let table = sites::all();
    let mut entry_writes = false;
    for c in changes {
        let new = plan::plan_change::<PatchError>(
            c,
            &table[c.site],
            states[c.site],
            [&mut *phase1, &mut *phase2],
            &mut entry_writes,
        )?;
        next.push((c.site, new));
    }
    let phase_writes = [phase1.len(), phase2.len()];
    // Both phases are validated before either is written. Entry words (the first `mov x9, x30`)
    // are not CMODX-safe: with other CPUs online they are written under stop-the-world.
    let poke = if entry_writes && percpu::online() > 1 {
        apply_stopped(&mut phase1[..], &mut phase2[..])?
    } else {
        poke::apply_phases(&mut [&mut phase1[..], &mut phase2[..]])?
    };
    for &(i, s) in next.iter() {
        states[i] = s;
    }
    Ok(BatchStats {
        sites: changes.len(),
        phase_writes,
        poke,
    })
}

/// Arm one site (convenience for a one-change batch).
pub fn arm(site: &Site<'_>, target: u64) -> Result<BatchStats, PatchError> {
    let mut b = Batch::new();
    b.arm(site, target);
    b.commit()
}

/// Disarm one site.
pub fn disarm(site: &Site<'_>) -> Result<BatchStats, PatchError> {
    let mut b = Batch::new();
    b.disarm(site);
    b.commit()
}

/// Restore one site to its compiled bytes.
pub fn restore(site: &Site<'_>) -> Result<BatchStats, PatchError> {
    let mut b = Batch::new();
    b.restore(site);
    b.commit()
}
