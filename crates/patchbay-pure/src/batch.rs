//! Planning a batch of patch-site changes: which words change, from what to what, in which of
//! the two phases. The kernel's `patch::batch` owns the site states, validates the plan against
//! memory and writes it; everything decided before the first write is here.
//!
//! A site (`sites::Site`) has three words the engine changes: the 64-bit CALL_OPS literal at
//! func-8, the entry word at func+0 (`nop` <-> `mov x9, x30`) and the call word at func+4
//! (`nop` <-> `bl target`). The kernel writes `mov x9, x30` into every site once at boot
//! ([`Call::Prepare`], while only the boot CPU runs, as Linux's `ftrace_init` does), so a site
//! at rest is [`SiteState::BOOT`] and every later arm, retarget or disarm changes only the call
//! word and the literal. A batch is written in two phases so that every intermediate state is a
//! correct program:
//!
//! | phase | arm (or retarget) | disarm | restore (to rest) | prepare | unprepare (to compiled) |
//! |---|---|---|---|---|---|
//! | 1 | `nop` → `mov x9, x30` (unprepared site only); the literal, if set | `bl` → `nop` | `bl` → `nop` (if armed) | `nop` → `mov x9, x30` | `bl` → `nop` (if armed) |
//! | 2 | `nop`/`bl old` → `bl target` | the literal, if set | the literal → `nop; nop` | — | `mov x9, x30` → `nop`; the literal → `nop; nop` |
//!
//! An entry-word write (`nop` <-> `mov x9, x30`) is not CMODX-safe: one rule,
//! [`Write::cmodx_safe`], says which writes may be made while other CPUs run the words; each
//! phase keeps its verdict as it is planned ([`PhaseBuf::live_safe`]), `patch::poke` applies the
//! same rule to single writes, and a batch with any other write is written with the other CPUs
//! stopped.
//!
//! The steps, each its own function:
//!
//! 1. [`merge`]: one [`Change`] per site (a call change and a literal change for one site merge;
//!    two of the same kind are an error);
//! 2. [`plan_change`], for each merged change: the writes of each phase and the site's next
//!    [`SiteState`].
//!
//! ```
//! use patchbay_pure::{
//!     batch::{self, Call, Change, Literal, PhaseBuf, PlanError, SiteState, Write},
//!     sites::{ArgRegs, Site},
//! };
//! let site = Site { func: 0x1000, name: "f", arg_regs: ArgRegs::from_bits(0) };
//! let mut changes = vec![Change { site: 0, call: Call::To(0x2000), literal: Literal::Keep }];
//! batch::merge(&mut changes, &[site]).unwrap();
//! let n = PhaseBuf::slots_for(changes.len());
//! let (mut slots1, mut slots2) = (vec![Write::literal(0, 0, 0); n], vec![Write::literal(0, 0, 0); n]);
//! let (mut phase1, mut phase2) = (PhaseBuf::new(&mut slots1), PhaseBuf::new(&mut slots2));
//! let next = batch::plan_change::<PlanError>(
//!     &changes[0], &site, SiteState::BOOT, [&mut phase1, &mut phase2],
//! ).unwrap();
//! // A site prepared at boot: only the `bl` at func+4 is written, and it is CMODX-safe.
//! assert_eq!((phase1.writes().len(), phase2.writes().len()), (0, 1));
//! assert!(phase1.live_safe() && phase2.live_safe());
//! assert_eq!(next.call(), Some(0x2000));
//! ```

use alloc::vec::Vec;
use core::fmt;

use crate::{
    insn::{self, EncodeError},
    layout::Range,
    sites::Site,
};

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
    /// A site's state as compiled: `nop; nop` in the literal and at the entry.
    pub const COMPILED: SiteState = SiteState {
        literal: LITERAL_NOPS,
        call: 0,
        call_word: insn::NOP as u64,
        entry_mov: 0,
    };

    /// A site at rest after the kernel prepared it at boot: `mov x9, x30; nop` at the entry,
    /// the literal `nop; nop`. Arming it writes only the call word.
    pub const BOOT: SiteState = SiteState {
        entry_mov: 1,
        ..SiteState::COMPILED
    };

    /// A site's state as compiled (see [`SiteState::COMPILED`]).
    pub const fn compiled() -> Self {
        Self::COMPILED
    }

    /// Not armed and the literal `nop; nop`, whatever the entry word: nothing traces the site.
    pub fn at_rest(&self) -> bool {
        self.call == 0 && self.literal == LITERAL_NOPS
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

/// Width of one write. The discriminant is the width in bytes, so [`Width::bytes`] is the tag
/// itself: the alignment and overlap checks of every write need no lookup.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// One A64 instruction.
    Insn = 4,
    /// One 64-bit literal (a CALL_OPS slot, a trampoline's data word).
    Literal = 8,
}

impl Width {
    #[inline(always)]
    pub fn bytes(self) -> u64 {
        self as u64
    }
}

/// One write to validate and perform: at `addr`, replace `expected` with `new`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write {
    pub addr: u64,
    pub expected: u64,
    pub new: u64,
    pub width: Width,
}

impl Write {
    pub const fn insn(addr: u64, expected: u32, new: u32) -> Self {
        Write {
            addr,
            expected: expected as u64,
            new: new as u64,
            width: Width::Insn,
        }
    }
    pub const fn literal(addr: u64, expected: u64, new: u64) -> Self {
        Write {
            addr,
            expected,
            new,
            width: Width::Literal,
        }
    }

    /// May this write be made while other CPUs execute the word (the live protocol)? A literal:
    /// yes, one aligned 64-bit store is single-copy atomic and the slot is read as data
    /// (DDI0487 B2.2.1). An instruction: only if the old and the new word are both in the
    /// CMODX set ([`insn::is_cmodx_safe`], DDI0487 B2.2.5); `nop` first, the word most patches
    /// replace or write. The one rule behind both `patch::poke`'s and the batch's protocol.
    #[inline(always)]
    pub fn cmodx_safe(&self) -> bool {
        let safe = |w: u64| insn::is_nop(w as u32) || insn::is_cmodx_safe(w as u32);
        self.width == Width::Literal || (safe(self.expected) && safe(self.new))
    }
}

/// The most writes one change adds to one phase: the entry word and the literal (phase 1 of an
/// arm of an unprepared site with a literal, phase 2 of an unprepare).
pub const MAX_WRITES_PER_PHASE: usize = 2;

/// One phase's planned writes, in planning order: the front of a buffer with room for
/// [`MAX_WRITES_PER_PHASE`] writes per change of the batch. The caller keeps the buffer between
/// batches (only grown, never cleared: every slot is written before it is read), so planning a
/// write is one store into a slot, with no length kept in memory and no capacity check that
/// could reallocate.
pub struct PhaseBuf<'a> {
    slots: &'a mut [Write],
    len: usize,
    /// Every write so far is [`Write::cmodx_safe`].
    live_safe: bool,
}

impl<'a> PhaseBuf<'a> {
    /// Slots a buffer needs for a batch of `changes` changes.
    pub const fn slots_for(changes: usize) -> usize {
        MAX_WRITES_PER_PHASE * changes
    }

    /// Plan into `slots` (at least [`PhaseBuf::slots_for`] the batch's changes long).
    pub fn new(slots: &'a mut [Write]) -> Self {
        PhaseBuf {
            slots,
            len: 0,
            live_safe: true,
        }
    }

    /// Add `w`. A buffer too small for its batch is a caller's bug (a panic, never a lost write).
    #[inline(always)]
    fn push(&mut self, w: Write) {
        self.live_safe &= w.cmodx_safe();
        self.slots[self.len] = w;
        self.len += 1;
    }

    /// May every write planned so far be made while other CPUs run the words
    /// ([`Write::cmodx_safe`])? Decided as each write is planned, where most words are known
    /// constants, rather than in another pass over the writes.
    pub fn live_safe(&self) -> bool {
        self.live_safe
    }

    /// The writes planned so far.
    pub fn writes(&self) -> &[Write] {
        &self.slots[..self.len]
    }

    /// The writes planned, to be ordered, validated and written in place.
    pub fn into_writes(self) -> &'a mut [Write] {
        &mut self.slots[..self.len]
    }
}

/// The first write (index) that starts before the previous one ends: the writes are in address
/// order and disjoint exactly when there is none.
#[inline]
fn first_conflict(writes: &[Write]) -> Option<usize> {
    writes
        .windows(2)
        .position(|p| p[0].addr + p[0].width.bytes() > p[1].addr)
        .map(|i| i + 1)
}

/// Put `writes` in address order and refuse overlaps (`Err(addr)` of the second of two
/// overlapping writes). A batch planned in site order is usually in order already: then this is
/// one pass over the writes and no sort.
#[inline]
pub fn order_writes(writes: &mut [Write]) -> Result<(), u64> {
    if first_conflict(writes).is_none() {
        return Ok(());
    }
    writes.sort_unstable_by_key(|w| w.addr);
    match first_conflict(writes) {
        Some(i) => Err(writes[i].addr),
        None => Ok(()),
    }
}

/// The region holding every one of the ordered `writes` (see [`order_writes`]), if one does:
/// then no write needs its own region check. `None` for no writes, or writes spread over
/// several regions (check each).
#[inline]
pub fn common_region(writes: &[Write], regions: &[Range]) -> Option<Range> {
    let (first, last) = (writes.first()?, writes.last()?);
    let end = last.addr + last.width.bytes();
    regions
        .iter()
        .copied()
        .find(|r| r.start <= first.addr && end <= r.end)
}

/// What happens to a site's call word. Word-sized tags (`repr(u64)`) so changes are copied as
/// whole words under strict alignment.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Leave the call word alone.
    Keep,
    /// Arm (or retarget): `bl` this address.
    To(u64),
    /// `bl` → `nop`; `mov x9, x30` stays.
    Off,
    /// Back to rest: disarmed, the literal `nop; nop`; the entry word stays.
    Restore,
    /// `nop` → `mov x9, x30` at the entry (what the kernel does to every site at boot).
    Prepare,
    /// Back to the compiled bytes: `nop; nop` at the entry and in the literal.
    Unprepare,
}

/// What happens to a site's literal.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Literal {
    Keep,
    Set(u64),
}

/// One requested change of the site at index `site` of the site table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub site: usize,
    pub call: Call,
    pub literal: Literal,
}

/// Why a batch cannot be planned. Nothing has been written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError<'a> {
    /// One site changed twice in one batch (two call changes, or two literal changes).
    SiteTwice { site: &'a str },
    /// Disarming a site that is not armed.
    NotArmed { site: &'a str },
    /// A `bl` that cannot be encoded (target beyond ±128 MiB, misaligned).
    Encode(EncodeError),
}

impl From<EncodeError> for PlanError<'_> {
    fn from(e: EncodeError) -> Self {
        PlanError::Encode(e)
    }
}

impl fmt::Display for PlanError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::SiteTwice { site } => write!(f, "site {site} is changed twice in one batch"),
            PlanError::NotArmed { site } => write!(f, "site {site} is not armed"),
            PlanError::Encode(e) => e.fmt(f),
        }
    }
}

/// Step 1: leave one change per site, sorted by site. A call change and a literal change for
/// the same site merge; two of the same kind are [`PlanError::SiteTwice`]. Callers usually
/// submit sites in table order, so that is checked before anything is sorted or copied.
#[inline(always)]
pub fn merge<'a>(changes: &mut Vec<Change>, table: &[Site<'a>]) -> Result<(), PlanError<'a>> {
    if changes.windows(2).all(|w| w[0].site < w[1].site) {
        return Ok(());
    }
    changes.sort_unstable_by_key(|c| c.site);
    let mut merged: Vec<Change> = Vec::with_capacity(changes.len());
    for c in changes.iter() {
        match merged.last_mut() {
            Some(m) if m.site == c.site => {
                if (m.call != Call::Keep && c.call != Call::Keep)
                    || (m.literal != Literal::Keep && c.literal != Literal::Keep)
                {
                    return Err(PlanError::SiteTwice {
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
    *changes = merged;
    Ok(())
}

/// One change at `site`, currently in state `st`: add its writes to `phases` (at most
/// [`MAX_WRITES_PER_PHASE`] to each) and return the site's next state.
///
/// Generic over the caller's error type so that, inlined into a caller with its own error enum,
/// an error becomes that enum's variant directly.
#[inline(always)]
pub fn plan_change<'a, E: From<PlanError<'a>>>(
    c: &Change,
    site: &Site<'a>,
    st: SiteState,
    [phase1, phase2]: [&mut PhaseBuf<'_>; 2],
) -> Result<SiteState, E> {
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
            let bl = insn::bl(site.call(), t).map_err(|e| E::from(PlanError::Encode(e)))?;
            if !st.entry_mov() {
                phase1.push(Write::insn(site.entry(), insn::NOP, insn::MOV_X9_X30));
                new.entry_mov = 1;
            }
            if old_call != bl {
                phase2.push(Write::insn(site.call(), old_call, bl));
            }
            new.call = t;
            new.call_word = bl.into();
        }
        Call::Off => {
            if st.call().is_none() {
                return Err(PlanError::NotArmed { site: site.name }.into());
            }
            phase1.push(Write::insn(site.call(), old_call, insn::NOP));
            new.call = 0;
            new.call_word = insn::NOP.into();
            literal_late = true;
        }
        Call::Restore | Call::Unprepare => {
            if st.call().is_some() {
                phase1.push(Write::insn(site.call(), old_call, insn::NOP));
            }
            if c.call == Call::Unprepare && st.entry_mov() {
                phase2.push(Write::insn(site.entry(), insn::MOV_X9_X30, insn::NOP));
                new.entry_mov = 0;
            }
            new.call = 0;
            new.call_word = insn::NOP.into();
            literal = literal.or(Some(LITERAL_NOPS));
            literal_late = true;
        }
        Call::Prepare => {
            if !st.entry_mov() {
                phase1.push(Write::insn(site.entry(), insn::NOP, insn::MOV_X9_X30));
                new.entry_mov = 1;
            }
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
    Ok(new)
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;
    use crate::sites::ArgRegs;

    const F: u64 = 0x4008_0000;
    const G: u64 = 0x4008_0040;
    const T: u64 = 0x4009_0000;
    const T2: u64 = 0x4009_1000;

    fn table() -> [Site<'static>; 2] {
        [
            Site {
                func: F,
                name: "f",
                arg_regs: ArgRegs::from_bits(0),
            },
            Site {
                func: G,
                name: "g",
                arg_regs: ArgRegs::from_bits(0),
            },
        ]
    }

    fn change(site: usize, call: Call, literal: Literal) -> Change {
        Change {
            site,
            call,
            literal,
        }
    }

    /// What planning `c` at a site in state `st` gives.
    #[derive(Debug, PartialEq, Eq)]
    struct Planned {
        phases: [Vec<Write>; 2],
        next: SiteState,
        /// Both phases [`PhaseBuf::live_safe`].
        live: bool,
    }

    fn plan_one(c: Change, st: SiteState) -> Result<Planned, PlanError<'static>> {
        let t = table();
        // Exactly the room one change may use: planning more would panic.
        let mut slots = [[FILLER; PhaseBuf::slots_for(1)]; 2];
        let [s1, s2] = &mut slots;
        let (mut phase1, mut phase2) = (PhaseBuf::new(s1), PhaseBuf::new(s2));
        let next = plan_change::<PlanError>(&c, &t[c.site], st, [&mut phase1, &mut phase2])?;
        Ok(Planned {
            phases: [phase1.writes().to_vec(), phase2.writes().to_vec()],
            next,
            live: phase1.live_safe() && phase2.live_safe(),
        })
    }

    /// What fills unplanned slots (never read as a write).
    const FILLER: Write = Write::literal(0, 0, 0);

    /// The state after arming `F` with `T` from compiled.
    fn armed() -> SiteState {
        plan_one(change(0, Call::To(T), Literal::Keep), SiteState::COMPILED)
            .unwrap()
            .next
    }

    #[test]
    fn first_arm_writes_the_mov_before_the_bl() {
        let p = plan_one(change(0, Call::To(T), Literal::Set(7)), SiteState::COMPILED).unwrap();
        let bl = insn::bl(F + 4, T).unwrap();
        assert_eq!(
            p.phases[0],
            vec![
                Write::insn(F, insn::NOP, insn::MOV_X9_X30),
                Write::literal(F - 8, LITERAL_NOPS, 7)
            ]
        );
        assert_eq!(p.phases[1], vec![Write::insn(F + 4, insn::NOP, bl)]);
        assert!(!p.live);
        let st = p.next;
        assert_eq!((st.call(), st.entry_mov(), st.literal), (Some(T), true, 7));
    }

    #[test]
    fn rearm_and_retarget_touch_only_the_call_word() {
        let st = armed();
        // Same target again: nothing to write.
        let same = plan_one(change(0, Call::To(T), Literal::Keep), st).unwrap();
        assert_eq!(same.phases, [vec![], vec![]]);
        assert!(same.live);
        // Another target: one bl -> bl write in phase 2.
        let re = plan_one(change(0, Call::To(T2), Literal::Keep), st).unwrap();
        let (old, new) = (insn::bl(F + 4, T).unwrap(), insn::bl(F + 4, T2).unwrap());
        assert_eq!(re.phases, [vec![], vec![Write::insn(F + 4, old, new)]]);
        assert_eq!(re.next.call(), Some(T2));
    }

    #[test]
    fn disarm_removes_the_bl_first_and_changes_the_literal_late() {
        let st = armed();
        let p = plan_one(change(0, Call::Off, Literal::Set(9)), st).unwrap();
        let bl = insn::bl(F + 4, T).unwrap();
        assert_eq!(p.phases[0], vec![Write::insn(F + 4, bl, insn::NOP)]);
        assert_eq!(p.phases[1], vec![Write::literal(F - 8, LITERAL_NOPS, 9)]);
        assert!(p.live, "the mov stays on disarm");
        let next = p.next;
        assert_eq!((next.call(), next.entry_mov()), (None, true));
    }

    #[test]
    fn no_change_plans_more_than_the_room_of_one() {
        // `plan_one` gives each phase exactly `PhaseBuf::slots_for(1)` slots: one write more
        // would panic. Every kind of change, from every kind of state, with and without a
        // literal.
        let mut states = vec![SiteState::COMPILED, SiteState::BOOT, armed()];
        states.extend(states.clone().into_iter().map(|mut st| {
            st.literal = 0x1234;
            st
        }));
        let calls = [
            Call::Keep,
            Call::To(T),
            Call::To(T2),
            Call::Off,
            Call::Restore,
            Call::Prepare,
            Call::Unprepare,
        ];
        let mut planned = 0;
        for st in states {
            for call in calls {
                for literal in [Literal::Keep, Literal::Set(7), Literal::Set(LITERAL_NOPS)] {
                    if let Ok(p) = plan_one(change(0, call, literal), st) {
                        assert!(p.phases.iter().all(|w| w.len() <= MAX_WRITES_PER_PHASE));
                        planned += 1;
                    }
                }
            }
        }
        // Only disarming an unarmed site is refused (4 of the 6 states are not armed).
        assert_eq!(planned, 6 * 7 * 3 - 4 * 3);
    }

    #[test]
    fn live_safe_writes_are_literals_and_cmodx_pairs() {
        let bl = insn::bl(F + 4, T).unwrap();
        let brk = insn::brk(0);
        for w in [
            Write::literal(F - 8, LITERAL_NOPS, 7),
            Write::insn(F + 4, insn::NOP, bl),
            Write::insn(F + 4, bl, insn::NOP),
            Write::insn(F + 4, insn::NOP, brk),
        ] {
            assert!(w.cmodx_safe(), "{w:?}");
        }
        for w in [
            Write::insn(F, insn::NOP, insn::MOV_X9_X30),
            Write::insn(F, insn::MOV_X9_X30, insn::NOP),
            Write::insn(F, insn::MOV_X9_X30, brk),
        ] {
            assert!(!w.cmodx_safe(), "{w:?}");
        }
        // A phase is live-safe until its first write that is not.
        let mut slots = [FILLER; 2];
        let mut phase = PhaseBuf::new(&mut slots);
        phase.push(Write::insn(F + 4, insn::NOP, bl));
        assert!(phase.live_safe());
        phase.push(Write::insn(F, insn::NOP, insn::MOV_X9_X30));
        assert!(!phase.live_safe());
    }

    #[test]
    fn disarming_an_unarmed_site_is_refused() {
        assert_eq!(
            plan_one(change(0, Call::Off, Literal::Keep), SiteState::COMPILED),
            Err(PlanError::NotArmed { site: "f" })
        );
    }

    #[test]
    fn prepare_writes_only_the_entry_and_arming_a_prepared_site_only_the_bl() {
        let p = plan_one(change(0, Call::Prepare, Literal::Keep), SiteState::COMPILED).unwrap();
        assert_eq!(
            p.phases,
            [vec![Write::insn(F, insn::NOP, insn::MOV_X9_X30)], vec![]]
        );
        assert!(!p.live);
        assert_eq!(p.next, SiteState::BOOT);
        let again = plan_one(change(0, Call::Prepare, Literal::Keep), SiteState::BOOT).unwrap();
        assert_eq!((again.phases, again.live), ([vec![], vec![]], true));
        let arm = plan_one(change(0, Call::To(T), Literal::Set(7)), SiteState::BOOT).unwrap();
        let bl = insn::bl(F + 4, T).unwrap();
        assert_eq!(
            arm.phases,
            [
                vec![Write::literal(F - 8, LITERAL_NOPS, 7)],
                vec![Write::insn(F + 4, insn::NOP, bl)]
            ]
        );
        assert!(arm.live, "no entry word: CMODX-safe writes only");
    }

    #[test]
    fn restore_returns_to_rest_and_keeps_the_entry() {
        let mut st = armed();
        st.literal = 0x1234;
        let p = plan_one(change(0, Call::Restore, Literal::Keep), st).unwrap();
        let bl = insn::bl(F + 4, T).unwrap();
        assert_eq!(p.phases[0], vec![Write::insn(F + 4, bl, insn::NOP)]);
        assert_eq!(
            p.phases[1],
            vec![Write::literal(F - 8, 0x1234, LITERAL_NOPS)]
        );
        assert!(p.live);
        assert_eq!(p.next, SiteState::BOOT);
        assert!(p.next.at_rest());
        let noop = plan_one(change(0, Call::Restore, Literal::Keep), SiteState::BOOT).unwrap();
        assert_eq!(noop.phases, [vec![], vec![]]);
    }

    #[test]
    fn unprepare_reverses_the_arm_order_and_returns_to_compiled() {
        let mut st = armed();
        st.literal = 0x1234;
        let p = plan_one(change(0, Call::Unprepare, Literal::Keep), st).unwrap();
        let bl = insn::bl(F + 4, T).unwrap();
        assert_eq!(p.phases[0], vec![Write::insn(F + 4, bl, insn::NOP)]);
        assert_eq!(
            p.phases[1],
            vec![
                Write::insn(F, insn::MOV_X9_X30, insn::NOP),
                Write::literal(F - 8, 0x1234, LITERAL_NOPS)
            ]
        );
        assert!(!p.live);
        assert_eq!(p.next, SiteState::COMPILED);
        // Unpreparing a compiled site writes nothing.
        let noop = plan_one(
            change(0, Call::Unprepare, Literal::Keep),
            SiteState::COMPILED,
        )
        .unwrap();
        assert_eq!(noop.phases, [vec![], vec![]]);
    }

    #[test]
    fn unencodable_bl_is_an_error() {
        let far = F + (1 << 30);
        assert!(matches!(
            plan_one(change(0, Call::To(far), Literal::Keep), SiteState::COMPILED),
            Err(PlanError::Encode(_))
        ));
    }

    #[test]
    fn merge_keeps_sorted_input_and_merges_call_with_literal() {
        let t = table();
        let sorted = vec![
            change(0, Call::To(T), Literal::Keep),
            change(1, Call::Off, Literal::Keep),
        ];
        let mut c = sorted.clone();
        merge(&mut c, &t).unwrap();
        assert_eq!(c, sorted);

        let mut c = vec![
            change(1, Call::Keep, Literal::Set(5)),
            change(0, Call::Off, Literal::Keep),
            change(1, Call::To(T), Literal::Keep),
        ];
        merge(&mut c, &t).unwrap();
        assert_eq!(
            c,
            vec![
                change(0, Call::Off, Literal::Keep),
                change(1, Call::To(T), Literal::Set(5))
            ]
        );
    }

    #[test]
    fn ordered_writes_pass_in_one_pass_unordered_ones_are_sorted() {
        let a = Write::insn(F + 4, 0, 1);
        let b = Write::literal(G - 8, 0, 1);
        let c = Write::insn(G, 0, 1);
        let mut w = vec![a, b, c];
        assert_eq!(order_writes(&mut w), Ok(()));
        assert_eq!(w, vec![a, b, c]);
        let mut w = vec![c, a, b];
        assert_eq!(order_writes(&mut w), Ok(()));
        assert_eq!(w, vec![a, b, c]);
        assert_eq!(order_writes(&mut []), Ok(()));
    }

    #[test]
    fn overlapping_writes_are_refused_in_any_order() {
        // A literal at G-8 covers G-8..G; an instruction at G-4 lies inside it.
        let lit = Write::literal(G - 8, 0, 1);
        let ins = Write::insn(G - 4, 0, 1);
        assert_eq!(order_writes(&mut [lit, ins]), Err(G - 4));
        assert_eq!(order_writes(&mut [ins, lit]), Err(G - 4));
        let same = Write::insn(F, 0, 1);
        assert_eq!(order_writes(&mut [same, same]), Err(F));
    }

    #[test]
    fn a_common_region_only_when_first_and_last_share_one() {
        let text = Range::new(F, G);
        let pool = Range::new(T, T2);
        let regions = [text, pool];
        let w = |a| Write::insn(a, 0, 1);
        assert_eq!(
            common_region(&[w(F), w(F + 8), w(G - 4)], &regions),
            Some(text)
        );
        assert_eq!(common_region(&[w(T)], &regions), Some(pool));
        // The last write ends past the region: no common region, each is checked.
        assert_eq!(common_region(&[w(F), w(G)], &regions), None);
        assert_eq!(common_region(&[w(F), w(T)], &regions), None);
        assert_eq!(common_region(&[], &regions), None);
    }

    #[test]
    fn merge_refuses_two_changes_of_one_kind() {
        let t = table();
        let mut calls = vec![
            change(1, Call::To(T), Literal::Keep),
            change(1, Call::Off, Literal::Keep),
        ];
        assert_eq!(
            merge(&mut calls, &t),
            Err(PlanError::SiteTwice { site: "g" })
        );
        let mut literals = vec![
            change(0, Call::Keep, Literal::Set(1)),
            change(0, Call::Keep, Literal::Set(2)),
        ];
        assert_eq!(
            merge(&mut literals, &t),
            Err(PlanError::SiteTwice { site: "f" })
        );
    }
}
