//! Stop-the-world: every other online CPU parks, IRQs masked, while one CPU runs a function;
//! then all of them context-synchronize (ISB) before they go on (Linux's `stop_machine`, which
//! general text patching uses: Will Deacon's rule that every PE that may execute modified code
//! needs an ISB or another context-synchronization event).
//!
//! ```text
//!   caller                               every other online CPU (IPI, interrupt context)
//!   claim ACTIVE (else Nested)
//!   IPI "park(generation)" ------------>  ARRIVED |= me
//!   mask own IRQs                         spin until RELEASE == generation  (park: not a
//!   wait ARRIVED == others (timeout)        patch site, IRQs masked, touches only atomics)
//!   f()
//!   RELEASE = generation  ------------->  ISB; LEFT |= me; return from the IPI (ERET: another
//!   wait LEFT == others; ISB                context synchronization)
//! ```
//!
//! A CPU that does not arrive within [`TIMEOUT_MS`] is [`StopError::Timeout`] naming it; `f`
//! does not run and the CPUs that did arrive are released. A call from inside `f` (or while
//! another stop is in progress) is [`StopError::Nested`].

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::{
    arch,
    ipi::{self, CpuSet, IpiError, Wait},
    percpu,
};

/// How long the caller waits for every CPU to arrive.
pub const TIMEOUT_MS: u64 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopError {
    /// A stop is already in progress (a call from inside the stopped function, or from two CPUs
    /// at once).
    Nested,
    /// CPU `cpu` did not arrive in time (or did not take the IPI).
    Timeout { cpu: usize },
    /// The IPI could not be sent (no controller, or the caller's context).
    Ipi(IpiError),
}

impl core::fmt::Display for StopError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StopError::Nested => f.write_str("a stop-the-world is already in progress"),
            StopError::Timeout { cpu } => {
                write!(f, "CPU {cpu} did not stop within {TIMEOUT_MS} ms")
            }
            StopError::Ipi(e) => write!(f, "cannot stop the other CPUs: {e}"),
        }
    }
}

static ACTIVE: AtomicBool = AtomicBool::new(false);
static GENERATION: AtomicU64 = AtomicU64::new(0);
static ARRIVED: AtomicU64 = AtomicU64::new(0);
static LEFT: AtomicU64 = AtomicU64::new(0);
static RELEASE: AtomicU64 = AtomicU64::new(0);

/// Where every other CPU waits, in its IPI handler (IRQs masked).
fn park(generation: u64) {
    let me = 1u64 << percpu::this().id;
    ARRIVED.fetch_or(me, Ordering::AcqRel);
    while RELEASE.load(Ordering::Acquire) < generation {
        arch::cpu::relax();
    }
    // Whatever the stopped function changed (text), this CPU fetches anew from here on.
    arch::cpu::isb();
    LEFT.fetch_or(me, Ordering::AcqRel);
}

/// Spin until `word & mask == mask`, at most [`TIMEOUT_MS`] from `start`; the first missing CPU
/// otherwise.
fn wait_all(word: &AtomicU64, mask: u64, start: u64) -> Result<(), usize> {
    let limit = arch::pmu::counter_frequency() * TIMEOUT_MS / 1000;
    loop {
        let got = word.load(Ordering::Acquire) & mask;
        if got == mask {
            return Ok(());
        }
        if arch::pmu::cntvct().wrapping_sub(start) > limit {
            return Err((mask & !got).trailing_zeros() as usize);
        }
        arch::cpu::relax();
    }
}

/// Run `f` on this CPU while every other online CPU is parked with IRQs masked; every CPU
/// executes an ISB before it continues. Normal context, IRQs unmasked (as `ipi::call`).
pub fn stop_machine<R>(f: impl FnOnce() -> R) -> Result<R, StopError> {
    if ACTIVE
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return Err(StopError::Nested);
    }
    let result = run_stopped(f);
    ACTIVE.store(false, Ordering::Release);
    result
}

fn run_stopped<R>(f: impl FnOnce() -> R) -> Result<R, StopError> {
    let others = CpuSet::others();
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed) + 1;
    ARRIVED.store(0, Ordering::Relaxed);
    LEFT.store(0, Ordering::Relaxed);
    let start = arch::pmu::cntvct();
    let release = || RELEASE.store(generation, Ordering::Release);
    if let Err(e) = ipi::call(others, park, generation, Wait::Posted) {
        // Those posted before the failure may be parked already: let them go.
        release();
        return Err(match e {
            IpiError::Timeout { cpu } => StopError::Timeout { cpu },
            e => StopError::Ipi(e),
        });
    }
    let daif = arch::cpu::mask_all();
    if let Err(cpu) = wait_all(&ARRIVED, others.0, start) {
        release();
        arch::cpu::restore_daif(daif);
        return Err(StopError::Timeout { cpu });
    }
    let r = f();
    release();
    // Every parked CPU has synchronized before the next stop can reuse the words. No timeout:
    // a CPU that arrived only spins on RELEASE, so it leaves.
    while LEFT.load(Ordering::Acquire) & others.0 != others.0 {
        arch::cpu::relax();
    }
    arch::cpu::isb();
    arch::cpu::restore_daif(daif);
    Ok(r)
}
