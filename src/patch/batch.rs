//! Site-level changes, applied in one batch: arm (or retarget) a site's `bl`, disarm it, set its
//! CALL_OPS literal.
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
//! | phase | arming (or retargeting) | disarming |
//! |---|---|---|
//! | 1 | `nop` → `mov x9, x30` at func+0 (first arm only); the literal, if set | `bl` → `nop` at func+4 |
//! | 2 | `nop`/`bl old` → `bl target` at func+4 | `mov x9, x30` → `nop` at func+0; the literal, if set |
//!
//! Why each state is safe for a CPU executing the site:
//! - `nop; nop` — the compiled state.
//! - `mov x9, x30; nop` — x9 is a scratch register at function entry (AAPCS64: x9–x15 are
//!   corruptible temporaries), so the extra move is harmless.
//! - `mov x9, x30; bl target` — armed: the target finds the caller's return address in x9. The
//!   `bl` becomes visible only after the `mov` (phase 1 completed, with its maintenance, before
//!   phase 2 writes), and a literal set with an arm is published before the `bl` that reads it.
//! - Disarm reverses the order: the `bl` disappears before the `mov` does, and the literal
//!   changes only once no `bl` can read it.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SiteState {
    /// `mov x9, x30` is at func+0.
    pub entry_mov: bool,
    /// `bl target` is at func+4.
    pub call: Option<u64>,
    /// The literal slot's value.
    pub literal: u64,
}

impl SiteState {
    const COMPILED: SiteState = SiteState {
        entry_mov: false,
        call: None,
        literal: LITERAL_NOPS,
    };
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    To(u64),
    Off,
}

#[derive(Clone, Copy, Debug)]
struct Change {
    site: usize,
    call: Option<Call>,
    literal: Option<u64>,
}

/// Statistics of a committed batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    pub sites: usize,
    pub phase1: PokeStats,
    pub phase2: PokeStats,
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

    fn push(&mut self, site: &Site<'_>, call: Option<Call>, literal: Option<u64>) -> &mut Self {
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
        self.push(site, Some(Call::To(target)), None)
    }

    /// Return `site` to its compiled state (`nop; nop`).
    pub fn disarm(&mut self, site: &Site<'_>) -> &mut Self {
        self.push(site, Some(Call::Off), None)
    }

    /// Set `site`'s 64-bit literal (the CALL_OPS slot).
    pub fn set_literal(&mut self, site: &Site<'_>, value: u64) -> &mut Self {
        self.push(site, None, Some(value))
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
        // two of the same kind are an error.
        self.changes.sort_by_key(|c| c.site);
        let mut merged: Vec<Change> = Vec::with_capacity(self.changes.len());
        for c in &self.changes {
            match merged.last_mut() {
                Some(m) if m.site == c.site => {
                    if (m.call.is_some() && c.call.is_some())
                        || (m.literal.is_some() && c.literal.is_some())
                    {
                        return Err(PatchError::SiteTwiceInBatch {
                            site: table[c.site].name,
                        });
                    }
                    m.call = m.call.or(c.call);
                    m.literal = m.literal.or(c.literal);
                }
                _ => merged.push(*c),
            }
        }
        self.changes = merged;
        let mut state = STATE.lock();
        let mut next = Vec::with_capacity(self.changes.len());
        let (mut phase1, mut phase2) = (Vec::new(), Vec::new());
        let mut mov_writes = false;
        for c in &self.changes {
            let (site, st) = (&table[c.site], state[c.site]);
            let mut new = st;
            let old_call = match st.call {
                Some(t) => insn::bl(site.call(), t)?,
                None => insn::NOP,
            };
            let disarming = c.call == Some(Call::Off);
            match c.call {
                Some(Call::To(t)) => {
                    let bl = insn::bl(site.call(), t)?;
                    if !st.entry_mov {
                        phase1.push(Write::insn(site.entry(), insn::NOP, insn::MOV_X9_X30));
                        new.entry_mov = true;
                        mov_writes = true;
                    }
                    if old_call != bl {
                        phase2.push(Write::insn(site.call(), old_call, bl));
                    }
                    new.call = Some(t);
                }
                Some(Call::Off) => {
                    if st.call.is_none() {
                        return Err(PatchError::NotArmed { site: site.name });
                    }
                    phase1.push(Write::insn(site.call(), old_call, insn::NOP));
                    if st.entry_mov {
                        phase2.push(Write::insn(site.entry(), insn::MOV_X9_X30, insn::NOP));
                        mov_writes = true;
                    }
                    new.entry_mov = false;
                    new.call = None;
                }
                None => {}
            }
            if let Some(v) = c.literal
                && v != st.literal
            {
                let w = Write::literal(site.literal(), st.literal, v);
                if disarming {
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
        // Phase 2's expectations must hold now too: nothing may be written if any check fails.
        poke::check(&mut phase2)?;
        let mut stats = BatchStats {
            sites: self.changes.len(),
            ..BatchStats::default()
        };
        if !phase1.is_empty() {
            stats.phase1 = poke::apply(&mut phase1)?;
        }
        if !phase2.is_empty() {
            stats.phase2 = poke::apply(&mut phase2)?;
        }
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
