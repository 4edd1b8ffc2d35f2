//! Site-level changes, applied in one batch: arm (or retarget) a site's `bl`, disarm it, restore
//! it to its compiled state, set its CALL_OPS literal.
//!
//! The engine remembers what it last wrote at every site ([`SiteState`]) and states that as the
//! expected old instruction of every write, so a site that was changed behind its back is
//! refused ([`PatchError::Mismatch`]) instead of overwritten.
//!
//! # Ordering: every intermediate state is a correct program
//!
//! A batch is written in two phases, each one [`poke::apply`] (one alias mapping per page, one
//! maintenance pass, one ISB):
//!
//! | phase | arm (or retarget) | disarm | restore |
//! |---|---|---|---|
//! | 1 | `nop` → `mov x9, x30` at func+0 (first arm only); the literal, if set | `bl` → `nop` at func+4 | `bl` → `nop` at func+4 (if armed) |
//! | 2 | `nop`/`bl old` → `bl target` at func+4 | the literal, if set | `mov x9, x30` → `nop` at func+0; the literal back to `nop; nop` |
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
//! another PE executes them). `nop` ↔ `mov` is not: it is only written when no other CPU runs,
//! which is always true today; with more CPUs online it is refused
//! ([`PatchError::NeedsStopMachine`]) until a stop-the-world rendezvous exists.
//!
//! All checks (encodings, expected words, alignment, regions) run before the first write, so an
//! error leaves text byte-identical.

use alloc::vec::Vec;

use patchbay_pure::insn;

use super::{
    PatchError,
    poke::{self, PokeStats, Write},
    sites::{self, Site},
};

use crate::percpu;

/// The two entry NOPs before the function, read as one little-endian 64-bit literal.
pub const LITERAL_NOPS: u64 = (insn::NOP as u64) << 32 | insn::NOP as u64;

/// What the engine last wrote at a site.
///
/// Plain aligned words (no `Option`, no `bool`): the kernel is built with strict alignment, and
/// copying tagged or padded structs costs byte-wise copies in the batch loop.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SiteState {
    /// The literal slot's value.
    pub literal: u64,
    /// `bl` target at func+4, 0 when the site holds `nop`.
    call: u64,
    /// The word at func+4 (`nop` or the encoded `bl`), kept so it is not re-encoded.
    call_word: u64,
    /// 1 when `mov x9, x30` is at func+0.
    entry_mov: u64,
}

impl SiteState {
    const COMPILED: SiteState = SiteState {
        literal: LITERAL_NOPS,
        call: 0,
        call_word: insn::NOP as u64,
        entry_mov: 0,
    };

    /// A site's state as compiled: `nop; nop` in the literal and at the entry.
    pub const fn compiled() -> Self {
        Self::COMPILED
    }

    /// The target the site's `bl` calls, if armed.
    pub fn call(&self) -> Option<u64> {
        (self.call != 0).then_some(self.call)
    }

    /// Is `mov x9, x30` at the entry?
    pub fn entry_mov(&self) -> bool {
        self.entry_mov != 0
    }
}

static STATE: spin::Mutex<Vec<SiteState>> = spin::Mutex::new(Vec::new());

/// Start tracking every site in its compiled state.
pub(crate) fn init() {
    *STATE.lock() = alloc::vec![SiteState::COMPILED; sites::all().len()];
}

/// The engine's view of `site`.
pub fn state(site: &Site<'_>) -> SiteState {
    let i = sites::index_of(site).expect("a site from the site table");
    STATE.lock()[i]
}

// Word-sized tags (`repr(u64)`) so changes are copied as whole words under strict alignment.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    /// Leave the call word alone.
    Keep,
    To(u64),
    /// `bl` → `nop`; `mov x9, x30` stays.
    Off,
    /// Back to the compiled bytes: `nop; nop` and the literal `nop; nop`.
    Restore,
}

#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Literal {
    Keep,
    Set(u64),
}

#[derive(Clone, Copy, Debug)]
struct Change {
    site: usize,
    call: Call,
    literal: Literal,
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

    /// Apply every change, or none.
    pub fn commit(mut self) -> Result<BatchStats, PatchError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let table = sites::all();
        // One change per site: a call change and a literal change for the same site merge;
        // two of the same kind are an error. Callers usually submit sites in table order, so
        // check for that before sorting and merging.
        if !self.changes.windows(2).all(|w| w[0].site < w[1].site) {
            self.changes.sort_unstable_by_key(|c| c.site);
            let mut merged: Vec<Change> = Vec::with_capacity(self.changes.len());
            for c in &self.changes {
                match merged.last_mut() {
                    Some(m) if m.site == c.site => {
                        if (m.call != Call::Keep && c.call != Call::Keep)
                            || (m.literal != Literal::Keep && c.literal != Literal::Keep)
                        {
                            return Err(PatchError::SiteTwiceInBatch {
                                site: table[c.site].name,
                            });
                        }
                        if m.call == Call::Keep {
                            m.call = c.call;
                        }
                        if m.literal == Literal::Keep {
                            m.literal = c.literal;
                        }
                    }
                    _ => merged.push(*c),
                }
            }
            self.changes = merged;
        }
        let mut state = STATE.lock();
        let n = self.changes.len();
        let mut next = Vec::with_capacity(n);
        let (mut phase1, mut phase2) = (Vec::with_capacity(2 * n), Vec::with_capacity(2 * n));
        let mut mov_writes = false;
        for c in &self.changes {
            let (site, st) = (&table[c.site], state[c.site]);
            let mut new = st;
            let old_call = st.call_word as u32;
            let mut literal = match c.literal {
                Literal::Set(v) => Some(v),
                Literal::Keep => None,
            };
            // Literal changes go with the phase where no `bl` can read the slot mid-change.
            let mut literal_late = false;
            match c.call {
                Call::To(t) => {
                    let bl = insn::bl(site.call(), t)?;
                    if !st.entry_mov() {
                        phase1.push(Write::insn(site.entry(), insn::NOP, insn::MOV_X9_X30));
                        new.entry_mov = 1;
                        mov_writes = true;
                    }
                    if old_call != bl {
                        phase2.push(Write::insn(site.call(), old_call, bl));
                    }
                    new.call = t;
                    new.call_word = bl.into();
                }
                Call::Off => {
                    if st.call().is_none() {
                        return Err(PatchError::NotArmed { site: site.name });
                    }
                    phase1.push(Write::insn(site.call(), old_call, insn::NOP));
                    new.call = 0;
                    new.call_word = insn::NOP.into();
                    literal_late = true;
                }
                Call::Restore => {
                    if st.call().is_some() {
                        phase1.push(Write::insn(site.call(), old_call, insn::NOP));
                    }
                    if st.entry_mov() {
                        phase2.push(Write::insn(site.entry(), insn::MOV_X9_X30, insn::NOP));
                        mov_writes = true;
                    }
                    new.entry_mov = 0;
                    new.call = 0;
                    new.call_word = insn::NOP.into();
                    literal = literal.or(Some(LITERAL_NOPS));
                    literal_late = true;
                }
                Call::Keep => {}
            }
            if let Some(v) = literal
                && v != st.literal
            {
                let w = Write::literal(site.literal(), st.literal, v);
                if literal_late {
                    phase2.push(w)
                } else {
                    phase1.push(w)
                }
                new.literal = v;
            }
            next.push((c.site, new));
        }
        let cpus = percpu::online();
        if mov_writes && cpus > 1 {
            return Err(PatchError::NeedsStopMachine { cpus });
        }
        let phase_writes = [phase1.len(), phase2.len()];
        // Both phases are validated before either is written.
        let poke = poke::apply_phases(&mut [&mut phase1, &mut phase2])?;
        let stats = BatchStats {
            sites: self.changes.len(),
            phase_writes,
            poke,
        };
        for (i, s) in next {
            state[i] = s;
        }
        Ok(stats)
    }
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
