//! Grace periods: tracing frees what it unpublished (ops snapshots, ops, direct / fexit / veneer
//! trampolines, fprobe and kprobe state behind return hooks) only after every online CPU has
//! passed a *quiescent point* — a point where it provably holds no reference into tracing
//! state. RCU-tasks-like, because a reader's critical section is not marked: it is the whole
//! time a CPU spends inside a trampoline, a handler, or a call whose return goes through either.
//!
//! ```ignore
//! let old = LIST.swap(new, AcqRel);   // unpublish
//! grace::defer(OldSnapshot(old));     // freed after the next grace period (call_rcu-like)
//! grace::synchronize()?;              // or block: every CPU passed a quiescent point, and all
//!                                     // deferred before this call is freed
//! ```
//!
//! # Quiescent points, and why each one is one
//!
//! An interrupt may arrive inside a trampoline, so "this CPU is not running a handler right now"
//! is not enough; a quiescent point must be outside every trampoline, every handler and every
//! call whose return passes through tracing code. There are three:
//!
//! 1. **Idle** ([`idle_enter`] / [`idle_exit`], from the secondary CPUs' idle loop in `smp`). The
//!    loop enters idle with interrupts masked, between two pieces of posted work, and leaves it
//!    before they are unmasked: nothing in between runs any code, let alone tracing code. A CPU
//!    idle when a grace period samples it holds nothing (an *extended* quiescent state: it need
//!    not wake up for the grace period to end).
//! 2. **Explicit** [`quiescent`] calls, from a loop between two calls of traced code (worker
//!    loops, the storm's CPUs). It counts only when this CPU provably is outside tracing: not in
//!    interrupt context, no handler running (the recursion guard's depth is 0), no return-hooked
//!    call in flight (the shadow stack is empty, [`set_busy_check`]); otherwise it is refused
//!    and counted ([`Stats::refused`]).
//! 3. **Interrupts** ([`interrupted`], from the IRQ path before the handler runs), only while a
//!    grace period waits, when the interrupted context is provably outside tracing: the same
//!    checks as (2), plus the interrupted PC, its x30 (a leaf's return address, or one not yet
//!    saved) and every return address on its frame-record chain lie outside every trampoline and
//!    pool (`unwind::in_trampoline`), and the chain ends where a chain ends (the walk did not
//!    give up). Every way into a trampoline leaves a trace among those: the trampoline's own PC,
//!    a `bl`/`blr` from it (x30, then the callee's frame record: handlers, and the body an fexit
//!    trampoline calls), the recursion guard (every handler the static trampolines run), the
//!    shadow stack (a hooked call, whose return goes to the return trampoline and reads its
//!    entry). A CPU interrupted *before* the site's `bl` (at func+4) is quiescent: it fetches
//!    that instruction again after the exception return (a context-synchronization event), so
//!    it sees what the patcher wrote before the grace period began. When a grace period has
//!    waited [`NUDGE_MS`] for some CPUs, [`synchronize`] interrupts them with an empty IPI, so a
//!    CPU busy in code that never calls [`quiescent`] still gets its chance (RCU-tasks' "force
//!    quiescent state").
//!
//! # The per-CPU word and its ordering
//!
//! Each CPU has one word (`patchbay_pure::grace`: +2 per quiescent point, bit 0 while idle). A
//! quiescent point stores it with release ordering after the CPU's last use of tracing state;
//! the waiter loads it with acquire: a changed word means every such use happened before the
//! free. Leaving idle is an increment followed by a full barrier (`fence(SeqCst)`), and the
//! waiter's unpublish is followed by a full barrier before it samples the words: the classic
//! store-buffering pair, so either the waiter sees the CPU awake (and waits for its next
//! quiescent point) or the CPU, once awake, sees only the new pointers. For code (a site's `bl`
//! to a trampoline) the unpublish is the text patch with its cache maintenance and the other
//! CPUs' context synchronization (`patch::batch`), done before the deferral.
//!
//! # Cost
//!
//! The traced hot path is unchanged: no trampoline, handler or traced call does anything for
//! grace periods. The IRQ path pays one relaxed load when no grace period waits (and a frame
//! walk of the interrupted stack when one does); the idle loop two atomic increments per sleep.
//!
//! # Deferred frees
//!
//! [`defer`] queues anything whose drop frees it (a `Box`, a pool block, an ops); [`call_after`]
//! queues a function. Items are tagged with the grace period that must complete first (the next
//! one to start: `patchbay_pure::grace::Sequence::needed`) and dropped, in order, by whichever
//! CPU next drives grace periods ([`poll`], [`defer`], [`synchronize`]) in normal context — never
//! from an interrupt. [`synchronize`] waits at most [`TIMEOUT_MS`]; a CPU that does not pass a
//! quiescent point in time is [`GraceError::Timeout`] naming it, and the grace period stays
//! pending (a later call finishes it).

use alloc::boxed::Box;
use core::{
    fmt,
    sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence},
};

use patchbay_pure::grace::{self as pure, Deferred, QUIESCENT_STEP, Sequence, Waiter};

use crate::{
    arch,
    ipi::{self, CpuSet, Wait},
    percpu::{self, MAX_CPUS},
    unwind,
};

/// How long [`synchronize`] waits for every CPU.
pub const TIMEOUT_MS: u64 = 2000;
/// How long a grace period waits before it interrupts the CPUs it still waits for.
pub const NUDGE_MS: u64 = 1;
/// Frame records an interrupted stack may have for [`interrupted`] to judge it (deeper: not
/// proven quiescent).
const MAX_FRAMES: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraceError {
    /// CPU `cpu` passed no quiescent point within [`TIMEOUT_MS`].
    Timeout { cpu: usize },
    /// Called where this CPU itself is not quiescent (interrupt context, inside a handler, or
    /// with a hooked call in flight): the grace period could never end.
    WrongContext,
}

impl fmt::Display for GraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraceError::Timeout { cpu } => write!(
                f,
                "CPU {cpu} passed no quiescent point within {TIMEOUT_MS} ms (a loop that runs traced code must call grace::quiescent between calls, or be interruptible outside tracing)"
            ),
            GraceError::WrongContext => f.write_str(
                "a grace period cannot be waited for from interrupt context, a tracing handler or a return-hooked call",
            ),
        }
    }
}

/// One CPU's word, alone on its cache line.
#[repr(align(64))]
struct Word(AtomicU64);

static WORDS: [Word; MAX_CPUS] = [const { Word(AtomicU64::new(0)) }; MAX_CPUS];

/// Is a grace period waiting for CPUs (the IRQ path checks this first)?
static WAITING: AtomicBool = AtomicBool::new(false);
/// `fn() -> bool`: does this CPU hold tracing state a grace period must wait out (a hooked call
/// in flight)? Registered by tracing ([`set_busy_check`]); 0 before.
static BUSY: AtomicUsize = AtomicUsize::new(0);
/// Test-only: free pool code at once, without a grace period ([`set_free_code_early`]).
static CODE_EARLY: AtomicBool = AtomicBool::new(false);

static REFUSED: AtomicU64 = AtomicU64::new(0);
static IRQ_QUIESCENT: AtomicU64 = AtomicU64::new(0);
static NUDGES: AtomicU64 = AtomicU64::new(0);

/// Something whose drop frees it.
type Item = Box<dyn Send>;

struct State {
    seq: Sequence,
    /// The running grace period and what it waits for.
    running: Option<(u64, Waiter)>,
    queue: Deferred<Item>,
    deferred: u64,
    freed: u64,
}

static STATE: spin::Mutex<Option<State>> = spin::Mutex::new(None);

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let mut g = STATE.lock();
    f(g.get_or_insert_with(|| State {
        seq: Sequence::default(),
        running: None,
        queue: Deferred::default(),
        deferred: 0,
        freed: 0,
    }))
}

/// Tell grace periods how to see that this CPU holds tracing state beyond the recursion guard
/// (tracing registers "this CPU's shadow stack is not empty" at boot).
pub fn set_busy_check(f: fn() -> bool) {
    BUSY.store(f as usize, Ordering::Release);
}

fn busy() -> bool {
    let f = BUSY.load(Ordering::Acquire);
    if f == 0 {
        return false;
    }
    // SAFETY: only `set_busy_check` stores here, and it stores a `fn() -> bool`.
    let f = unsafe { core::mem::transmute::<usize, fn() -> bool>(f) };
    f()
}

/// Is this CPU, in its current context, outside every handler and hooked call?
fn outside_tracing(cpu: &percpu::PerCpu) -> bool {
    cpu.trace_depth.load(Ordering::Relaxed) == 0 && !busy()
}

/// This CPU passed a quiescent point: release, after its last use of tracing state.
fn pass(cpu: usize) {
    WORDS[cpu].0.fetch_add(QUIESCENT_STEP, Ordering::Release);
}

/// A quiescent point: call between two calls of traced code (e.g. once per iteration of a loop
/// that calls traced functions). Returns false, and counts a refusal, if this CPU is not in
/// fact outside tracing here (interrupt context, a handler, a hooked call in flight).
pub fn quiescent() -> bool {
    let cpu = percpu::this();
    if cpu.irq_depth.load(Ordering::Relaxed) != 0 || !outside_tracing(cpu) {
        REFUSED.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    pass(cpu.id as usize);
    true
}

/// The idle loop is about to sleep (IRQs masked until [`idle_exit`]): an extended quiescent
/// state.
pub fn idle_enter() {
    let w = &WORDS[percpu::this().id as usize].0;
    debug_assert_eq!(w.load(Ordering::Relaxed) & pure::IDLE, 0);
    w.fetch_add(pure::IDLE, Ordering::Release);
}

/// The idle loop woke up (IRQs still masked): it may run traced code from here on, and must see
/// what was unpublished before a grace period sampled it idle (the module docs' ordering).
pub fn idle_exit() {
    let w = &WORDS[percpu::this().id as usize].0;
    w.fetch_add(pure::IDLE, Ordering::Relaxed);
    fence(Ordering::SeqCst);
}

/// From the IRQ path, before the interrupt's handler runs: if a grace period waits and the
/// interrupted context (`elr`, its `x30` and frame pointer `fp`) is provably outside tracing,
/// this CPU passed a quiescent point (module docs, point 3).
pub fn interrupted(elr: u64, x30: u64, fp: u64) {
    if !WAITING.load(Ordering::Relaxed) {
        return;
    }
    let cpu = percpu::this();
    if !outside_tracing(cpu)
        || unwind::in_trampoline(elr.wrapping_add(4))
        || unwind::in_trampoline(x30)
    {
        return;
    }
    let (mut frames, mut traced) = (0, false);
    unwind::walk(fp, MAX_FRAMES, |f| {
        frames += 1;
        traced |= unwind::in_trampoline(f.pc);
    });
    if traced || frames == MAX_FRAMES {
        return;
    }
    IRQ_QUIESCENT.fetch_add(1, Ordering::Relaxed);
    pass(cpu.id as usize);
}

/// Free `item` (drop it) after the next grace period. Never blocks; drives grace periods
/// ([`poll`]) on the way.
pub fn defer<T: Send + 'static>(item: T) {
    let item: Item = Box::new(item);
    with_state(|s| {
        s.queue.push(s.seq.needed(), item);
        s.deferred += 1;
    });
    poll();
}

/// Free trampoline code (`item`, whose drop returns it to its pool) after the next grace period
/// — or at once with the test-only switch [`set_free_code_early`], which the storm's teeth use.
pub fn defer_code<T: Send + 'static>(item: T) {
    if CODE_EARLY.load(Ordering::Relaxed) {
        drop(item);
    } else {
        defer(item);
    }
}

/// Test-only: make [`defer_code`] free at once, without a grace period (what a use-after-free
/// of a trampoline looks like: the storm must fail naming it).
#[doc(hidden)]
pub fn set_free_code_early(on: bool) {
    CODE_EARLY.store(on, Ordering::Relaxed);
}

/// Runs a function when dropped (what [`call_after`] queues).
struct CallOnDrop<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for CallOnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// Run `f` after the next grace period (call_rcu-like), in normal context on whichever CPU
/// drives grace periods then.
pub fn call_after(f: impl FnOnce() + Send + 'static) {
    defer(CallOnDrop(Some(f)));
}

fn word(c: usize) -> u64 {
    WORDS[c].0.load(Ordering::Acquire)
}

fn online_mask() -> u64 {
    percpu::online_cpus().fold(0, |m, c| m | 1 << c.id)
}

/// Drive grace periods without blocking: end the running one if every CPU has passed, start the
/// next one if something waits for it, free what is ready. Normal context; this CPU counts as
/// quiescent when it is outside tracing. The lowest CPU still waited for, if any.
pub fn poll() -> Option<usize> {
    let me = percpu::this();
    let here = me.irq_depth.load(Ordering::Relaxed) == 0 && outside_tracing(me);
    if here {
        pass(me.id as usize);
    }
    let (ready, pending) = with_state(|s| {
        if let Some((gp, w)) = &mut s.running
            && w.pending(word).is_none()
        {
            let gp = *gp;
            s.seq.complete(gp);
            s.running = None;
            WAITING.store(false, Ordering::Relaxed);
        }
        if s.running.is_none() && s.queue.oldest().is_some_and(|gp| gp > s.seq.completed()) {
            let gp = s.seq.start();
            // The unpublish before the samples (module docs: store buffering).
            fence(Ordering::SeqCst);
            // This CPU, if it is outside tracing, is at a quiescent point right now.
            let me = if here { 1u64 << me.id } else { 0 };
            let mut w = Waiter::new(online_mask() & !me, word);
            if w.pending(word).is_some() {
                WAITING.store(true, Ordering::Relaxed);
                s.running = Some((gp, w));
            } else {
                s.seq.complete(gp);
            }
        }
        let ready = s.queue.take_ready(s.seq.completed());
        s.freed += ready.len() as u64;
        let pending = s.running.as_ref().map(|(_, w)| w.waiting());
        (ready, pending)
    });
    // Dropped outside the lock: freeing returns trampolines to their pools (text pokes).
    drop(ready);
    pending.map(|m| m.trailing_zeros() as usize)
}

/// Wait for a grace period: every online CPU passes a quiescent point after this call began,
/// and everything deferred before it is freed when it returns `Ok`. Normal context, outside any
/// handler. At most [`TIMEOUT_MS`]; after [`NUDGE_MS`] the CPUs still waited for get an empty
/// IPI (their interrupt path may find them quiescent).
pub fn synchronize() -> Result<(), GraceError> {
    let me = percpu::this();
    if me.irq_depth.load(Ordering::Relaxed) != 0 || !outside_tracing(me) {
        return Err(GraceError::WrongContext);
    }
    // A barrier: defer an empty item, then wait until it is freed.
    let target = with_state(|s| {
        let gp = s.seq.needed();
        s.queue.push(gp, Box::new(()));
        s.deferred += 1;
        gp
    });
    let start = arch::pmu::cntvct();
    let freq = arch::pmu::counter_frequency();
    let (limit, nudge) = (freq * TIMEOUT_MS / 1000, freq * NUDGE_MS / 1000);
    let mut nudged = false;
    loop {
        let pending = poll();
        if with_state(|s| s.seq.completed() >= target) {
            return Ok(());
        }
        let waited = arch::pmu::cntvct().wrapping_sub(start);
        if let Some(cpu) = pending {
            if waited > limit {
                return Err(GraceError::Timeout { cpu });
            }
            if waited > nudge && !nudged {
                nudged = true;
                let others = with_state(|s| s.running.as_ref().map_or(0, |(_, w)| w.waiting()))
                    & CpuSet::others().0;
                if others != 0 {
                    NUDGES.fetch_add(1, Ordering::Relaxed);
                    // Best effort: a CPU that does not take it is named by the timeout.
                    let _ = ipi::call(CpuSet(others), |_| {}, 0, Wait::Posted);
                }
            }
        }
        // YIELD, not `spin_loop` (an ISB): under icount's round-robin it hands the host thread
        // to the CPUs this waits for, instead of spinning out a whole time slice.
        arch::cpu::relax();
    }
}

/// What grace periods have done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Grace periods started / completed.
    pub started: u64,
    pub completed: u64,
    /// Items deferred (including [`synchronize`]'s own markers) / freed after their grace
    /// period. Equal when nothing waits.
    pub deferred: u64,
    pub freed: u64,
    /// [`quiescent`] calls refused (made inside tracing or interrupt context).
    pub refused: u64,
    /// Quiescent points found on the interrupt path.
    pub irq_quiescent: u64,
    /// Times a grace period interrupted the CPUs it waited for.
    pub nudges: u64,
}

pub fn stats() -> Stats {
    with_state(|s| Stats {
        started: s.seq.started(),
        completed: s.seq.completed(),
        deferred: s.deferred,
        freed: s.freed,
        refused: REFUSED.load(Ordering::Relaxed),
        irq_quiescent: IRQ_QUIESCENT.load(Ordering::Relaxed),
        nudges: NUDGES.load(Ordering::Relaxed),
    })
}
