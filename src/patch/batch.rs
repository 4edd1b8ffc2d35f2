//! Site-level changes, applied in one batch: arm (or retarget) a site's `bl`, disarm it, restore
//! it to rest, set its CALL_OPS literal — and, rarely, prepare or unprepare its entry word.
//!
//! The engine remembers what it last wrote at every site ([`SiteState`]) and states that as the
//! expected old instruction of every write, so a site that was changed behind its back is
//! refused ([`PatchError::Mismatch`]) instead of overwritten.
//!
//! # Boot: `mov x9, x30` everywhere, once
//!
//! While only the boot CPU runs, [`init`] writes `mov x9, x30` into the entry word of every
//! site (as Linux's `ftrace_init` does): a site at rest is then `mov x9, x30; nop`
//! ([`SiteState::BOOT`]), which costs the same two instructions as the compiled `nop; nop`, and
//! from then on arming, retargeting and disarming change only CMODX-safe words. [`Batch::restore`]
//! takes a site back to that rest state (what tests compare text against: the hash taken after
//! boot); [`Batch::unprepare`] and [`Batch::prepare`] change the entry word itself (back to the
//! compiled bytes and again), which needs stop-the-world.
//!
//! # Protocol, per batch
//!
//! Each commit picks the [`Protocol`] its words need (`patch::poke` has the rules and the kick),
//! by the same rule as a single poke (`Write::cmodx_safe`, applied to each write as it is
//! planned):
//!
//! | change | words | protocol | why it may be written while other CPUs run it (DDI0487 B2.2.5) |
//! |---|---|---|---|
//! | arm | `nop` → `bl` at func+4 | live | both in the CMODX set (`B`, `BL`, `BRK`, `HVC`, `ISB`, `NOP`, `SMC`, `SVC`) |
//! | retarget | `bl a` → `bl b` | live | both in the CMODX set |
//! | disarm, restore | `bl` → `nop` | live | both in the CMODX set |
//! | literal | 64-bit CALL_OPS slot | live | data, not an instruction: one aligned store is single-copy atomic (B2.2.1), so a reader sees the old or the new pointer |
//! | BRK probe (`trace::kprobe`) | `nop` ↔ `brk` at func+4 | live | both in the CMODX set |
//! | prepare, unprepare, arm of an unprepared site | `nop` ↔ `mov x9, x30` at func+0 | stop-the-world | `mov` is not in the set: a PE may see neither old nor new |
//!
//! A caller may ask for stop-the-world for any batch ([`Batch::stop_machine`]: the benchmarks
//! compare both protocols on the same change); it never gets less than the words need.
//!
//! # Ordering: every intermediate state is a correct program
//!
//! A live batch is written in two phases, each one pass of [`poke::apply_phases`] (one alias
//! mapping per page, one maintenance pass, one ISB, one kick); which word goes in which phase is
//! planned by `patchbay_pure::batch` (host-tested), and this module keeps the site states:
//!
//! | phase | arm (or retarget) | disarm | restore |
//! |---|---|---|---|
//! | 1 | a literal set with it | `bl` → `nop` | `bl` → `nop` |
//! | 2 | the `bl` | a literal set with it | literal → `nop; nop` |
//!
//! A literal set with an arm is published before the `bl` that reads it; on disarm and restore
//! the literal changes only after the kick, when no CPU can still execute the old `bl`.
//!
//! Why each entry state is safe for a CPU executing the site:
//! - `nop; nop` — the compiled state.
//! - `mov x9, x30; nop` — x9 is a scratch register at function entry (AAPCS64: x9–x15 are
//!   corruptible temporaries), so the extra move is harmless.
//! - `mov x9, x30; bl target` — armed: the target finds the caller's return address in x9.
//!
//! A stop-the-world batch needs no order between its words, since no other CPU runs: both
//! phases are written as one (one maintenance pass), with every other CPU parked; the batch is
//! written only if none of them was interrupted at a word being written right after another
//! one (else it would resume pairing an old word with a new one, e.g. `nop` executed, then a
//! `bl` without its `mov`), else the stop is retried ([`poke::STOP_ATTEMPTS`]) and finally refused
//! ([`PatchError::SiteInUse`]).
//!
//! All checks (encodings, expected words, alignment, regions) run before the first write, so an
//! error leaves text byte-identical.
//!
//! # Serialization
//!
//! Batches from any CPU are serialized by the engine lock (held from planning to recording the
//! new states) and the text lock inside `poke` (held from validation to publication); both are
//! spin locks taken with IRQs unmasked, so a waiting CPU still answers the holder's IPIs.

use alloc::vec::Vec;

use patchbay_pure::batch::{self as plan, Call, Change, Literal, PhaseBuf, Write};
pub use patchbay_pure::batch::{LITERAL_NOPS, SiteState};

pub use super::poke::Protocol;
use super::{
    PatchError,
    poke::{self, PokeStats},
    sites::{self, Site},
};

/// What the engine keeps between batches: every site's state, and the buffers a commit plans
/// into. The buffers only grow, to the largest batch seen (at most every site: about 160 bytes
/// per site), and are never cleared — a commit writes every slot it later reads — so a commit
/// allocates nothing (with a first-fit heap, each allocation and free is a walk of the free
/// list, which dominated small batches), and planning a site is stores into slots: no length in
/// memory, no capacity check that could reallocate.
struct Engine {
    /// Per site (index into `sites::all()`): what the engine last wrote there.
    states: Vec<SiteState>,
    /// Slot k: the next state of the commit's change k, recorded once both phases are written.
    next: Vec<SiteState>,
    /// The slots of a commit's writes, phase 1 and phase 2 ([`PhaseBuf`]).
    phases: [Vec<Write>; 2],
}

static ENGINE: spin::Mutex<Engine> = spin::Mutex::new(Engine {
    states: Vec::new(),
    next: Vec::new(),
    phases: [Vec::new(), Vec::new()],
});

/// Start tracking every site in its compiled state, then prepare every site: `mov x9, x30` at
/// its entry (module documentation, "Boot").
///
/// # Safety
/// During single-CPU boot: the entry words are not CMODX-safe, and no other CPU may run yet.
pub(crate) unsafe fn init() {
    ENGINE.lock().states = alloc::vec![SiteState::COMPILED; sites::all().len()];
    let mut b = Batch::with_capacity(sites::all().len());
    for s in sites::all() {
        b.prepare(s);
    }
    b.commit().expect("preparing every site at boot");
}

/// The engine's view of `site`.
pub fn state(site: &Site<'_>) -> SiteState {
    let i = sites::index_of(site).expect("a site from the site table");
    ENGINE.lock().states[i]
}

/// Statistics of a committed batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchStats {
    pub sites: usize,
    /// Writes of phase 1 and phase 2 as planned (a stop-the-world batch writes them as one).
    pub phase_writes: [usize; 2],
    /// How the batch was written.
    pub protocol: Protocol,
    pub poke: PokeStats,
}

/// A set of site changes committed together.
pub struct Batch {
    changes: Vec<Change>,
    error: Option<PatchError>,
    /// The least protocol the caller asks for ([`Batch::stop_machine`]).
    protocol: Protocol,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            changes: Vec::new(),
            error: None,
            protocol: Protocol::Live,
        }
    }
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Batch {
            changes: Vec::with_capacity(n),
            ..Self::default()
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

    /// Return `site` to rest: disarmed, literal `nop; nop`, the entry word kept (after boot:
    /// `mov x9, x30`, so the site is byte-identical to its state after boot).
    pub fn restore(&mut self, site: &Site<'_>) -> &mut Self {
        self.push(site, Call::Restore, Literal::Keep)
    }

    /// Write `mov x9, x30` at `site`'s entry (boot does this for every site). Not CMODX-safe:
    /// stop-the-world when other CPUs are online.
    pub fn prepare(&mut self, site: &Site<'_>) -> &mut Self {
        self.push(site, Call::Prepare, Literal::Keep)
    }

    /// Return `site` to its compiled bytes: disarmed, `nop` at the entry, literal `nop; nop`.
    /// Not CMODX-safe: stop-the-world when other CPUs are online.
    pub fn unprepare(&mut self, site: &Site<'_>) -> &mut Self {
        self.push(site, Call::Unprepare, Literal::Keep)
    }

    /// Write this batch with the other CPUs stopped even if every word is CMODX-safe.
    pub fn stop_machine(&mut self) -> &mut Self {
        self.protocol = Protocol::StopMachine;
        self
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
    /// (`patchbay_pure::batch`), choose the protocol, validate and write ([`poke::apply_phases`]),
    /// then record the sites' new states.
    pub fn commit(mut self) -> Result<BatchStats, PatchError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        plan::merge(&mut self.changes, sites::all())?;
        let n = self.changes.len();
        let mut engine = ENGINE.lock();
        // The buffers are taken out as locals while the batch is planned and written (so the
        // compiler knows they do not alias each other or the states), grown if this batch is the
        // largest yet, and handed back whatever the outcome.
        let mut next = core::mem::take(&mut engine.next);
        let [mut phase1, mut phase2] = core::mem::take(&mut engine.phases);
        if next.len() < n {
            next.resize(n, SiteState::COMPILED);
        }
        for p in [&mut phase1, &mut phase2] {
            if p.len() < PhaseBuf::slots_for(n) {
                // A filler: every slot is planned before it is read.
                p.resize(PhaseBuf::slots_for(n), Write::literal(0, 0, 0));
            }
        }
        let result = plan_and_write(
            &self.changes,
            self.protocol,
            &mut engine.states,
            &mut next,
            [PhaseBuf::new(&mut phase1), PhaseBuf::new(&mut phase2)],
        );
        engine.next = next;
        engine.phases = [phase1, phase2];
        result
    }
}

/// Plan `changes` (merged, one per site) into `phases` and `next` (a slot per change), choose
/// the protocol (stop when a write is not CMODX-safe or the caller asked), validate and write
/// ([`poke::apply_phases`]), then record the sites' new states in `states`.
fn plan_and_write(
    changes: &[Change],
    asked: Protocol,
    states: &mut [SiteState],
    next: &mut [SiteState],
    [mut phase1, mut phase2]: [PhaseBuf<'_>; 2],
) -> Result<BatchStats, PatchError> {
    let table = sites::all();
    for (c, new) in changes.iter().zip(next.iter_mut()) {
        *new = plan::plan_change::<PatchError>(
            c,
            &table[c.site],
            states[c.site],
            [&mut phase1, &mut phase2],
        )?;
    }
    // The rule `poke::apply` applies too, decided as the writes were planned (module
    // documentation, "Protocol").
    let live_safe = phase1.live_safe() && phase2.live_safe();
    let protocol = poke::least_protocol(live_safe, asked);
    let (phase1, phase2) = (phase1.into_writes(), phase2.into_writes());
    let phase_writes = [phase1.len(), phase2.len()];
    // Every phase is validated before any is written.
    let poke = poke::apply_phases(&mut [phase1, phase2], protocol)?;
    for (c, &new) in changes.iter().zip(next.iter()) {
        states[c.site] = new;
    }
    Ok(BatchStats {
        sites: changes.len(),
        phase_writes,
        protocol,
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

/// Restore one site to rest (disarmed, literal `nop; nop`).
pub fn restore(site: &Site<'_>) -> Result<BatchStats, PatchError> {
    let mut b = Batch::new();
    b.restore(site);
    b.commit()
}
