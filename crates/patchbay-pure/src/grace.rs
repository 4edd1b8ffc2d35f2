//! Grace-period bookkeeping: which CPUs a grace period still waits for, and which deferred frees
//! a completed grace period releases. The kernel's `grace` module owns the per-CPU words, the
//! barriers and the clock; this module is the arithmetic, tested on the host.
//!
//! # The per-CPU state word
//!
//! Each CPU has one monotonically increasing word. Bit 0 says the CPU is in an *extended
//! quiescent state* (idle, interrupts masked: it runs no tracing code at all); every quiescent
//! point and every change of the idle bit changes the word:
//!
//! | event | word |
//! |---|---|
//! | quiescent point (outside every trampoline, handler and hooked call) | `+ 2` ([`QUIESCENT_STEP`]) |
//! | enter idle | `+ 1` (odd) |
//! | leave idle | `+ 1` (even again) |
//!
//! A grace period samples every online CPU's word when it starts ([`Waiter::new`]). A CPU has
//! passed a quiescent point since then ([`passed`]) if it was idle at the sample (an idle CPU
//! holds no reference into tracing state, and it reads anew after leaving idle) or its word
//! changed since (it went through a quiescent point or through idle).
//!
//! # Deferred frees
//!
//! Grace periods are numbered; [`Sequence`] counts the ones started and completed. Something
//! unpublished now may still be in use by a reader that started before, including one inside a
//! grace period already in progress, so it may be freed only after the *next* grace period to
//! start has completed: [`Sequence::needed`] is `started + 1`, whether or not one is running.
//! [`Deferred`] keeps the items in that order and hands out those a completed count releases.
//!
//! ```
//! use patchbay_pure::grace::{Deferred, Sequence, Waiter, QUIESCENT_STEP};
//! let mut seq = Sequence::default();
//! let mut q = Deferred::default();
//! q.push(seq.needed(), "old snapshot");
//! let gp = seq.start();
//! let mut w = Waiter::new(0b11, |_| 4); // CPUs 0 and 1, both at 4, neither idle
//! assert_eq!(w.pending(|c| if c == 0 { 4 + QUIESCENT_STEP } else { 4 }), Some(1));
//! assert_eq!(w.pending(|_| 4 + QUIESCENT_STEP), None);
//! seq.complete(gp);
//! assert_eq!(q.take_ready(seq.completed()), ["old snapshot"]);
//! ```

use alloc::{collections::VecDeque, vec::Vec};

/// What a quiescent point adds to a CPU's word (bit 0, the idle bit, stays as it is).
pub const QUIESCENT_STEP: u64 = 2;
/// The idle bit of a CPU's word.
pub const IDLE: u64 = 1;
/// CPUs a [`Waiter`] can track (bits of its mask).
pub const MAX_CPUS: usize = 64;

/// Has a CPU whose word was `sampled` when the grace period started, and is `now` now, passed a
/// quiescent point since?
pub fn passed(sampled: u64, now: u64) -> bool {
    sampled & IDLE != 0 || now != sampled
}

/// One grace period's view of the CPUs: the words sampled at its start and the CPUs it still
/// waits for.
#[derive(Clone, Debug)]
pub struct Waiter {
    sampled: Vec<u64>,
    waiting: u64,
}

impl Waiter {
    /// Start waiting for every CPU in `online` (bit `n` = CPU `n`), sampling each one's word
    /// with `word`. CPUs idle at the sample are done at once.
    pub fn new(online: u64, word: impl Fn(usize) -> u64) -> Self {
        let sampled: Vec<u64> = (0..MAX_CPUS)
            .map(|c| if online & (1 << c) != 0 { word(c) } else { 0 })
            .collect();
        let waiting = (0..MAX_CPUS)
            .filter(|&c| online & (1 << c) != 0 && sampled[c] & IDLE == 0)
            .fold(0, |m, c| m | 1 << c);
        Waiter { sampled, waiting }
    }

    /// Read the words again; forget every CPU that has passed a quiescent point. The lowest CPU
    /// still waited for, or `None` when the grace period is over.
    pub fn pending(&mut self, word: impl Fn(usize) -> u64) -> Option<usize> {
        for c in 0..MAX_CPUS {
            if self.waiting & (1 << c) != 0 && passed(self.sampled[c], word(c)) {
                self.waiting &= !(1 << c);
            }
        }
        (self.waiting != 0).then(|| self.waiting.trailing_zeros() as usize)
    }

    /// The CPUs still waited for (as of the last [`pending`](Self::pending)).
    pub fn waiting(&self) -> u64 {
        self.waiting
    }
}

/// Grace periods started and completed. At most one runs at a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sequence {
    started: u64,
    completed: u64,
}

impl Sequence {
    /// The grace period whose completion frees what is unpublished now: the next one to start
    /// (one already running may have sampled a CPU before the unpublish).
    pub fn needed(&self) -> u64 {
        self.started + 1
    }

    /// Is a grace period running?
    pub fn running(&self) -> bool {
        self.started != self.completed
    }

    /// Start the next grace period; its number.
    ///
    /// # Panics
    /// If one is already running.
    pub fn start(&mut self) -> u64 {
        assert!(
            !self.running(),
            "grace period {} still running",
            self.started
        );
        self.started += 1;
        self.started
    }

    /// Grace period `gp` (the running one) is over.
    ///
    /// # Panics
    /// If `gp` is not the running grace period.
    pub fn complete(&mut self, gp: u64) {
        assert!(
            self.running() && gp == self.started,
            "grace period {gp} is not the running one ({self:?})"
        );
        self.completed = gp;
    }

    pub fn started(&self) -> u64 {
        self.started
    }

    pub fn completed(&self) -> u64 {
        self.completed
    }
}

/// Items waiting for a grace period, each tagged with the one that frees it
/// ([`Sequence::needed`] when it was unpublished). Tags never decrease, so the queue is in order.
#[derive(Debug)]
pub struct Deferred<T> {
    items: VecDeque<(u64, T)>,
}

impl<T> Default for Deferred<T> {
    fn default() -> Self {
        Deferred {
            items: VecDeque::new(),
        }
    }
}

impl<T> Deferred<T> {
    /// Queue `item` until grace period `gp` has completed.
    ///
    /// # Panics
    /// If `gp` is older than the newest item's (tags come from [`Sequence::needed`], which never
    /// decreases).
    pub fn push(&mut self, gp: u64, item: T) {
        if let Some(&(last, _)) = self.items.back() {
            assert!(
                gp >= last,
                "deferred item for grace period {gp} after {last}"
            );
        }
        self.items.push_back((gp, item));
    }

    /// Take every item whose grace period is among the first `completed`, oldest first.
    pub fn take_ready(&mut self, completed: u64) -> Vec<T> {
        let n = self
            .items
            .iter()
            .take_while(|(gp, _)| *gp <= completed)
            .count();
        self.items.drain(..n).map(|(_, t)| t).collect()
    }

    /// The grace period the oldest waiting item needs, if any.
    pub fn oldest(&self) -> Option<u64> {
        self.items.front().map(|&(gp, _)| gp)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_cpu_has_passed_and_a_busy_one_must_move() {
        assert!(passed(5, 5), "idle at the sample");
        assert!(!passed(4, 4), "running, no quiescent point since");
        assert!(passed(4, 6), "a quiescent point");
        assert!(passed(4, 5), "went idle");
        assert!(passed(4, 7), "went idle and back, then idle again");
    }

    #[test]
    fn a_waiter_names_the_lowest_cpu_that_has_not_passed() {
        // CPUs 0, 2, 3 online; 2 idle at the sample.
        let words = [10u64, 99, 21, 30];
        let mut w = Waiter::new(0b1101, |c| words[c]);
        assert_eq!(w.waiting(), 0b1001, "the idle CPU is done at once");
        assert_eq!(w.pending(|c| words[c]), Some(0));
        assert_eq!(w.pending(|c| words[c] + 2 * (c == 0) as u64), Some(3));
        // CPU 0 passed once: it stays passed even if its word were to read the sample again.
        assert_eq!(w.pending(|c| words[c]), Some(3));
        assert_eq!(w.pending(|c| words[c] + 1), None);
        assert_eq!(w.waiting(), 0);
    }

    #[test]
    fn an_offline_cpu_is_not_waited_for() {
        let mut w = Waiter::new(0b1, |c| {
            assert_eq!(c, 0, "only online CPUs are sampled");
            8
        });
        assert_eq!(w.pending(|_| 8), Some(0));
        assert_eq!(w.pending(|_| 10), None);
    }

    #[test]
    fn what_is_unpublished_during_a_grace_period_waits_for_the_next() {
        let mut s = Sequence::default();
        let mut q = Deferred::default();
        q.push(s.needed(), 'a');
        let one = s.start();
        assert_eq!(one, 1);
        // Unpublished while grace period 1 runs: a CPU it sampled as passed (idle) may have
        // picked the item up since, so 1 is not enough.
        q.push(s.needed(), 'b');
        assert_eq!(q.oldest(), Some(1));
        s.complete(one);
        assert_eq!(q.take_ready(s.completed()), ['a']);
        assert_eq!(q.len(), 1);
        let two = s.start();
        assert_eq!(q.take_ready(s.completed()), [] as [char; 0]);
        s.complete(two);
        assert_eq!(q.take_ready(s.completed()), ['b']);
        assert!(q.is_empty());
    }

    #[test]
    #[should_panic(expected = "still running")]
    fn one_grace_period_at_a_time() {
        let mut s = Sequence::default();
        s.start();
        s.start();
    }

    #[test]
    #[should_panic(expected = "is not the running one")]
    fn only_the_running_grace_period_completes() {
        let mut s = Sequence::default();
        let gp = s.start();
        s.complete(gp + 1);
    }

    #[test]
    #[should_panic(expected = "after")]
    fn tags_never_go_back() {
        let mut q = Deferred::default();
        q.push(2, ());
        q.push(1, ());
    }
}
