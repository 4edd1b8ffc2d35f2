//! What the kernel does differently under QEMU's multi-threaded TCG (every vCPU a host thread,
//! no icount): two workarounds for the emulator, neither an architectural step.
//!
//! Chosen once at boot ([`init`]) from the clock mode the runner names: `qemu` (`pb run` without
//! icount; with no `patchbay.clock=` argument, the board's default, `qemu` on `virt`). Never on
//! a board (mode `hardware`) and never under icount (mode `qemu-icount`: one host thread runs
//! every vCPU round-robin), so the benchmark records and the hardware path do not change.
//!
//! 1. **Live writes are stored twice** (`patch::poke`, `rewrite_for_emulator`): QEMU can keep a
//!    stale translation of a line written live, which no guest operation drops.
//! 2. **Waiting for another CPU sleeps** ([`crate::ipi`]): in this mode QEMU implements `YIELD`
//!    and `WFE` as no-ops, so a CPU spinning for another CPU's answer keeps a host core busy,
//!    and on a host with fewer cores than vCPUs the CPU it waits for may not run until the
//!    host scheduler's next turn — milliseconds per cross-CPU call (a vCPU preempted by its
//!    host, as paravirtual spinlocks know it). Instead the waiter sleeps in `WFI` (QEMU parks
//!    the thread) and the answering CPU sends an interrupt back once it is done. Only while the
//!    tick runs (`patchbay.tick_hz`): it wakes the waiter at least once a tick, so a CPU that
//!    never answers is still a timeout. The patch
//!    storm's kicks went from ~16 ms to ~6 ms each on a loaded 2-core host.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::{
    boot_info,
    bsp::{self, ClockMode},
};

static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Decide, once at boot (after the boot arguments are recorded), whether the workarounds are on.
pub fn init() {
    let mode = boot_info::get()
        .clock_mode()
        .unwrap_or(bsp::DEFAULT_CLOCK_MODE);
    ACTIVE.store(mode == ClockMode::Qemu, Ordering::Relaxed);
}

/// Whether the kernel runs under QEMU's multi-threaded TCG (module documentation).
#[inline(always)]
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}
