//! The bookkeeping of a return-hook shadow stack: a fixed-capacity stack of hooked calls with
//! its counters. The kernel's `trace::rethook` keeps one per CPU; what an entry holds (the real
//! return address, the frame it must return from, the exit handler) is the kernel's, through
//! [`HookedCall`].
//!
//! Rules the counters keep:
//!
//! - a push onto a full stack does not hook the call and counts an overflow ([`overflows`]);
//! - every successful push is paired with exactly one pop: `hooked - returned == depth`;
//! - unwinding meets return-trampoline addresses innermost first, so the `n`-th one met stands
//!   for the entry `n` below the top ([`return_address`]).
//!
//! [`overflows`]: ShadowStack::overflows
//! [`return_address`]: ShadowStack::return_address
//!
//! ```
//! use patchbay_pure::shadow::{HookedCall, ShadowStack};
//! #[derive(Clone, Copy)]
//! struct Call { ret: u64 }
//! impl HookedCall for Call { fn return_address(&self) -> u64 { self.ret } }
//! let mut s = ShadowStack::<Call, 2>::new(Call { ret: 0 });
//! for ret in [0x1000, 0x2000] {
//!     let i = s.reserve().expect("room");
//!     s.entry_mut(i).ret = ret;
//! }
//! assert_eq!(s.reserve(), None); // full: not hooked, counted
//! assert_eq!((s.return_address(0), s.return_address(1)), (Some(0x2000), Some(0x1000)));
//! s.pop();
//! assert_eq!((s.depth(), s.hooked(), s.returned(), s.overflows()), (1, 2, 1, 1));
//! ```

/// What the shadow stack needs to know of an entry.
pub trait HookedCall: Copy {
    /// The return address the hook replaced (where the call really returns to).
    fn return_address(&self) -> u64;
}

/// A stack of at most `N` hooked calls, innermost on top, with its counters. Plain aligned
/// words in a fixed layout (`repr(C)`), so the kernel's return trampoline reads and pops it in
/// assembly: `depth` at [`DEPTH_OFFSET`](Self::DEPTH_OFFSET), entry `i` at
/// [`ENTRIES_OFFSET`](Self::ENTRIES_OFFSET) + `i * size_of::<E>()`.
///
/// Returns are not counted separately: `returned = hooked - depth` holds by construction, so a
/// pop is one store (the depth) and the assembly pop needs no second counter.
#[repr(C)]
pub struct ShadowStack<E, const N: usize> {
    depth: usize,
    hooked: u64,
    overflows: u64,
    entries: [E; N],
}

impl<E, const N: usize> ShadowStack<E, N> {
    /// Byte offset of the depth (a `usize`: hooked calls in flight).
    pub const DEPTH_OFFSET: usize = core::mem::offset_of!(Self, depth);
    /// Byte offset of the hooked-calls counter (a `u64`), the word after the depth, so an
    /// assembly [`reserve`](ShadowStack::reserve) loads and stores both with one pair.
    pub const HOOKED_OFFSET: usize = core::mem::offset_of!(Self, hooked);
    /// Byte offset of the overflow counter (a `u64`).
    pub const OVERFLOWS_OFFSET: usize = core::mem::offset_of!(Self, overflows);
    /// Byte offset of entry 0.
    pub const ENTRIES_OFFSET: usize = core::mem::offset_of!(Self, entries);
}

impl<E: HookedCall, const N: usize> ShadowStack<E, N> {
    /// An empty stack, its slots filled with `empty`.
    pub const fn new(empty: E) -> Self {
        ShadowStack {
            depth: 0,
            hooked: 0,
            overflows: 0,
            entries: [empty; N],
        }
    }

    /// Reserve the slot of one more hooked call and count it: the depth is raised first, the
    /// caller then fills [`entry_mut`](Self::entry_mut)`(i)`. `None`, and an overflow counted, if
    /// the stack is full (the call is then simply not hooked).
    ///
    /// Reserve, then fill — never the other way round. The kernel's stacks are per CPU, and an
    /// interrupt landing inside a push may hook returns of its own traced calls on the same
    /// stack: it pushes above the reserved slot and pops back to it before the interrupted push
    /// goes on, so the entry being filled is never touched. (Filled first, the interrupt would
    /// push into the slot being filled, and the entry would end up half one call's, half the
    /// other's.) The raised depth must be *in memory* before the first fill store; a compiler
    /// fence does not guarantee that for a `&mut` (the compiler knows nothing else may look at
    /// it, and did sink the depth store below the fill), so the kernel puts a compiler barrier
    /// that names the stack between the two (`trace::rethook::push`).
    ///
    /// The counters are plain words: an interrupt's own pushes landing between the load and the
    /// store of `hooked` are lost from that statistic — never from the pairing, which is the
    /// depth's.
    #[inline(always)]
    pub fn reserve(&mut self) -> Option<usize> {
        let d = self.depth;
        if d >= N {
            self.overflows += 1;
            return None;
        }
        self.depth = d + 1;
        self.hooked += 1;
        Some(d)
    }

    /// Entry `i` of the stack, to fill a slot [`reserve`](Self::reserve) returned.
    #[inline(always)]
    pub fn entry_mut(&mut self, i: usize) -> &mut E {
        &mut self.entries[i]
    }

    /// The innermost hooked call, if any.
    #[inline(always)]
    pub fn top(&self) -> Option<&E> {
        let i = self.depth.checked_sub(1)?;
        Some(&self.entries[i])
    }

    /// Remove the innermost hooked call once it has returned.
    ///
    /// Call only after [`top`](Self::top) returned an entry: popping an empty stack is a
    /// bookkeeping bug (it panics in builds with overflow checks).
    #[inline(always)]
    pub fn pop(&mut self) {
        self.depth -= 1;
    }

    /// The real return address behind the `n`-th return-trampoline address met while unwinding
    /// from the innermost frame outwards (n = 0 is the top entry).
    pub fn return_address(&self, n: usize) -> Option<u64> {
        let i = self.depth.checked_sub(n + 1)?;
        Some(self.entries[i].return_address())
    }

    /// Hooked calls in flight.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Calls hooked so far.
    pub fn hooked(&self) -> u64 {
        self.hooked
    }

    /// Hooked calls that returned so far.
    pub fn returned(&self) -> u64 {
        self.hooked - self.depth as u64
    }

    /// Calls not hooked because the stack was full.
    pub fn overflows(&self) -> u64 {
        self.overflows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Call {
        ret: u64,
        sp: u64,
    }

    impl HookedCall for Call {
        fn return_address(&self) -> u64 {
            self.ret
        }
    }

    const EMPTY: Call = Call { ret: 0, sp: 0 };

    fn push(s: &mut ShadowStack<Call, 4>, ret: u64) -> bool {
        let Some(i) = s.reserve() else {
            return false;
        };
        *s.entry_mut(i) = Call { ret, sp: ret + 1 };
        true
    }

    #[test]
    fn push_and_pop_are_last_in_first_out() {
        let mut s = ShadowStack::<Call, 4>::new(EMPTY);
        assert_eq!(s.top(), None);
        for r in [10, 20, 30] {
            assert!(push(&mut s, r));
        }
        for r in [30, 20, 10] {
            assert_eq!(s.top(), Some(&Call { ret: r, sp: r + 1 }));
            s.pop();
        }
        assert_eq!(s.top(), None);
        assert_eq!((s.depth(), s.hooked(), s.returned()), (0, 3, 3));
    }

    #[test]
    fn a_full_stack_refuses_and_counts() {
        let mut s = ShadowStack::<Call, 4>::new(EMPTY);
        for r in 1..=4 {
            assert!(push(&mut s, r));
        }
        assert!(!push(&mut s, 5));
        assert!(!push(&mut s, 6));
        assert_eq!((s.depth(), s.hooked(), s.overflows()), (4, 4, 2));
        // The refused pushes left the entries alone.
        assert_eq!(s.top(), Some(&Call { ret: 4, sp: 5 }));
        // Room again after a return.
        s.pop();
        assert!(push(&mut s, 7));
        assert_eq!(s.top().map(|e| e.ret), Some(7));
    }

    #[test]
    fn hooked_minus_returned_is_the_depth() {
        let mut s = ShadowStack::<Call, 4>::new(EMPTY);
        for step in [
            true, true, false, true, false, false, true, true, true, true, true,
        ] {
            if step {
                push(&mut s, 1);
            } else {
                s.pop();
            }
            assert_eq!(s.hooked() - s.returned(), s.depth() as u64);
        }
    }

    #[test]
    fn offsets_match_the_layout_the_assembly_assumes() {
        // Header words first, then the entries, each entry `size_of::<E>()` apart.
        type S = ShadowStack<Call, 4>;
        assert_eq!(S::DEPTH_OFFSET, 0);
        assert_eq!(S::ENTRIES_OFFSET, 24);
        let mut s = S::new(EMPTY);
        push(&mut s, 0x42);
        let base = &s as *const S as usize;
        // SAFETY: `DEPTH_OFFSET` is the offset of the `usize` depth field inside `s`.
        let depth = unsafe { *((base + S::DEPTH_OFFSET) as *const usize) };
        assert_eq!(depth, 1);
        let top = base + S::ENTRIES_OFFSET + (depth - 1) * core::mem::size_of::<Call>();
        // SAFETY: entry `depth - 1` of `s`, at the offset the layout promises.
        let top = unsafe { *(top as *const Call) };
        assert_eq!(
            top,
            Call {
                ret: 0x42,
                sp: 0x43
            }
        );
    }

    #[test]
    fn return_addresses_innermost_first() {
        let mut s = ShadowStack::<Call, 4>::new(EMPTY);
        assert_eq!(s.return_address(0), None);
        for r in [0x100, 0x200, 0x300] {
            push(&mut s, r);
        }
        assert_eq!(s.return_address(0), Some(0x300));
        assert_eq!(s.return_address(1), Some(0x200));
        assert_eq!(s.return_address(2), Some(0x100));
        assert_eq!(s.return_address(3), None);
        s.pop();
        assert_eq!(s.return_address(0), Some(0x200));
    }
}
