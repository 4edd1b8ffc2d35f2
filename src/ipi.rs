//! Cross-CPU calls: run a function on one, several or all other online CPUs, through the
//! inter-processor interrupt (`irq::send_ipi`: an SGI on a GIC, a core mailbox on the Pi 3).
//!
//! Each CPU has one call slot: the function, its argument, and two counters, `posted` (bumped by
//! the sender, release) and `done` (set to `posted` by the target after the function returned,
//! release). The sender posts into every target's slot, interrupts each target, and, with
//! [`Wait::Done`], waits until every target's `done` reaches what it posted. A target that does
//! not answer within [`TIMEOUT_MS`] (interrupts masked for too long, hung, or gone) is a
//! [`IpiError::Timeout`] naming it, never a hang; its request stays posted and runs when the CPU
//! next takes the IPI.
//!
//! Calls are serialised (one sender at a time) and must be made from normal context with IRQs
//! unmasked: a sender waiting for the lock keeps answering IPIs, so two CPUs calling each
//! other cannot deadlock. The function runs on the target in interrupt context (IRQs masked).

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::{
    arch, irq,
    percpu::{self, MAX_CPUS},
};

/// How long a sender waits for a target (to free its slot, or to finish with [`Wait::Done`]).
pub const TIMEOUT_MS: u64 = 1000;

/// A set of logical CPUs (bit `n` = CPU `n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuSet(pub u64);

impl CpuSet {
    pub fn one(cpu: usize) -> CpuSet {
        CpuSet(1 << cpu)
    }

    /// Every online CPU but the calling one.
    pub fn others() -> CpuSet {
        let me = percpu::this().id;
        CpuSet(
            percpu::online_cpus()
                .filter(|c| c.id != me)
                .fold(0, |s, c| s | 1 << c.id),
        )
    }

    pub fn contains(self, cpu: usize) -> bool {
        self.0 & (1 << cpu) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..MAX_CPUS).filter(move |&c| self.contains(c))
    }
}

/// Whether [`call`] waits for the targets to have run the function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Return once every target has been interrupted.
    Posted,
    /// Return once every target has run the function.
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpiError {
    /// The set names a CPU that is not online (or the caller itself).
    NotATarget { cpu: usize },
    /// This board has no interrupt controller the kernel drives.
    NoController,
    /// Called from interrupt context or with IRQs masked (the caller could not answer IPIs
    /// while it waits, and two such callers would wait for each other).
    WrongContext,
    /// CPU `cpu` did not answer within [`TIMEOUT_MS`].
    Timeout { cpu: usize },
}

impl core::fmt::Display for IpiError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IpiError::NotATarget { cpu } => write!(f, "CPU {cpu} is not another online CPU"),
            IpiError::NoController => f.write_str("no interrupt controller: no IPIs"),
            IpiError::WrongContext => {
                f.write_str("cross-CPU calls need normal context with IRQs unmasked")
            }
            IpiError::Timeout { cpu } => {
                write!(f, "CPU {cpu} did not answer the IPI within {TIMEOUT_MS} ms")
            }
        }
    }
}

struct Slot {
    func: AtomicUsize,
    arg: AtomicU64,
    posted: AtomicU64,
    done: AtomicU64,
    /// The sender, woken when `done` reaches `posted` under QEMU's threads (`crate::mttcg`).
    reply_to: AtomicU64,
}

static SLOTS: [Slot; MAX_CPUS] = [const {
    Slot {
        func: AtomicUsize::new(0),
        arg: AtomicU64::new(0),
        posted: AtomicU64::new(0),
        done: AtomicU64::new(0),
        reply_to: AtomicU64::new(0),
    }
}; MAX_CPUS];

static SENDER: spin::Mutex<()> = spin::Mutex::new(());

/// Answer IPIs: register the handler with `irq`. Before any secondary starts.
pub fn init() {
    irq::set_ipi_handler(handle);
}

/// The target's side, in interrupt context: run what is posted in this CPU's slot.
fn handle() {
    let slot = &SLOTS[percpu::this().id as usize];
    let posted = slot.posted.load(Ordering::Acquire);
    if slot.done.load(Ordering::Relaxed) == posted {
        return;
    }
    // SAFETY: `call` stores a `fn(u64)` before publishing `posted` (release, acquired above).
    let func = unsafe { core::mem::transmute::<usize, fn(u64)>(slot.func.load(Ordering::Relaxed)) };
    func(slot.arg.load(Ordering::Relaxed));
    slot.done.store(posted, Ordering::Release);
    // Wake a sender that sleeps until we are done (`wait_done`). It cannot fail: the call came
    // through the same controller.
    if crate::mttcg::active() {
        let _ = irq::send_ipi(slot.reply_to.load(Ordering::Relaxed) as usize);
    }
}

fn irqs_masked() -> bool {
    crate::read_sysreg!(daif) & (1 << 7) != 0
}

/// Spin until `cpu`'s slot has done `target`, at most [`TIMEOUT_MS`] from `start`.
fn wait_done(cpu: usize, target: u64, start: u64) -> Result<(), IpiError> {
    let limit = arch::pmu::counter_frequency() * TIMEOUT_MS / 1000;
    // Only with a tick running: it bounds each sleep, so the timeout below is still seen when
    // the target never answers.
    let sleep = crate::mttcg::active() && irq::tick_hz() != 0;
    while SLOTS[cpu].done.load(Ordering::Acquire) != target {
        if arch::pmu::cntvct().wrapping_sub(start) > limit {
            return Err(IpiError::Timeout { cpu });
        }
        if sleep {
            // Under QEMU's threads, sleep until the target's answer (or any interrupt) arrives
            // (`crate::mttcg`). Masked across the check and the WFI: an answer arriving in
            // between stays pending and ends the WFI (a pending interrupt wakes it whatever
            // PSTATE.I says); it is taken when the mask is restored.
            let daif = arch::cpu::mask_all();
            if SLOTS[cpu].done.load(Ordering::Acquire) != target {
                arch::cpu::wfi();
            }
            arch::cpu::restore_daif(daif);
        } else {
            arch::cpu::relax();
        }
    }
    Ok(())
}

/// Whether this CPU may make a cross-CPU call now: normal context, IRQs unmasked
/// ([`IpiError::WrongContext`] otherwise). For callers that must know before they start work
/// that ends in a call (the patch path's kick).
pub fn check_context() -> Result<(), IpiError> {
    if percpu::this().irq_depth.load(Ordering::Relaxed) != 0 || irqs_masked() {
        return Err(IpiError::WrongContext);
    }
    Ok(())
}

/// Run `func(arg)` on every CPU in `targets` (online, not the caller), in interrupt context
/// there. With [`Wait::Done`], returns when all have run it; the first CPU that does not answer
/// in time is the error.
pub fn call(targets: CpuSet, func: fn(u64), arg: u64, wait: Wait) -> Result<(), IpiError> {
    check_context()?;
    let me = percpu::this();
    if let Some(cpu) = targets
        .iter()
        .find(|&c| c == me.id as usize || !percpu::CPUS[c].online.load(Ordering::Acquire))
    {
        return Err(IpiError::NotATarget { cpu });
    }
    // IRQs stay unmasked while we spin for the lock: we keep answering other senders.
    let _one_sender = SENDER.lock();
    let start = arch::pmu::cntvct();
    let mut posted = [0u64; MAX_CPUS];
    for cpu in targets.iter() {
        let slot = &SLOTS[cpu];
        // The previous request (perhaps not waited for) must be done before the slot is reused.
        wait_done(cpu, slot.posted.load(Ordering::Relaxed), start)?;
        slot.func.store(func as usize, Ordering::Relaxed);
        slot.arg.store(arg, Ordering::Relaxed);
        slot.reply_to.store(u64::from(me.id), Ordering::Relaxed);
        posted[cpu] = slot.posted.load(Ordering::Relaxed) + 1;
        // Release: the target that sees the new count sees the function and argument.
        slot.posted.store(posted[cpu], Ordering::Release);
        if !irq::send_ipi(cpu) {
            return Err(IpiError::NoController);
        }
    }
    if wait == Wait::Done {
        for cpu in targets.iter() {
            wait_done(cpu, posted[cpu], start)?;
        }
    }
    Ok(())
}
