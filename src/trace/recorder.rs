//! The recording function tracer: a handler that writes one event per call into a per-CPU,
//! lock-free, overwriting ring — what Linux's `function` tracer does into its ring buffer.
//!
//! ```ignore
//! use patchbay::trace::{self, Filter, Mode, recorder};
//! let id = trace::attach(Filter::Glob("gen_00*".into()), recorder::record, TAG, Mode::CallOps)?;
//! patchbay::subjects::generated::gen_0001(1);
//! recorder::read_all(|e| println!("{:#x} called from {:#x}", e.ip, e.parent));
//! ```
//!
//! An event is four words: the timestamp (the clock the kernel measures with: PMCCNTR_EL0 once
//! [`set_cycle_clock`] enabled it, else CNTVCT_EL0; read without ISBs, it is a timestamp, not a
//! measurement), the traced function, its caller's return address, and CPU + tag. The tag is the
//! ops' `data` (the console stores the mechanism's code there), so the handler is reached with
//! no lookup at all. Rings hold [`CAPACITY`] events per CPU and overwrite the oldest: the
//! producer never waits and never fails; readers count what they lost (`patchbay_pure::ring`).
//!
//! The handler is `extern "C"` and called directly by the call-ops trampoline, like the counting
//! handler the benchmark compares it with (`bench` row `call-ops+record` against `call-ops`).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use patchbay_pure::ring::{Event, ReadStats, Ring};

use super::{FtraceRegs, Ops};
use crate::percpu::{self, MAX_CPUS};

/// Events each CPU's ring holds (40 bytes each: 80 KiB per CPU, zero-initialised in `.bss`).
pub const CAPACITY: usize = 2048;

static RINGS: [Ring<CAPACITY>; MAX_CPUS] = [const { Ring::new() }; MAX_CPUS];

/// Timestamps from PMCCNTR_EL0 (true) or CNTVCT_EL0 (false).
static CYCLES: AtomicBool = AtomicBool::new(false);

/// Take timestamps from PMCCNTR_EL0 (`true`, once the PMU's cycle counter is enabled) or from
/// the generic timer's CNTVCT_EL0 (`false`, the default): the clock the benchmarks use.
pub fn set_cycle_clock(cycles: bool) {
    CYCLES.store(cycles, Ordering::Relaxed);
}

/// Which clock the timestamps come from.
pub fn clock_name() -> &'static str {
    if CYCLES.load(Ordering::Relaxed) {
        "pmccntr"
    } else {
        "cntvct"
    }
}

#[inline(always)]
fn now() -> u64 {
    if CYCLES.load(Ordering::Relaxed) {
        crate::read_sysreg!(pmccntr_el0)
    } else {
        crate::read_sysreg!(cntvct_el0)
    }
}

/// Write one event for a call of `ip` from `parent` into this CPU's ring.
#[inline(always)]
pub fn emit(ip: u64, parent: u64, tag: u8) {
    let cpu = percpu::this().id;
    RINGS[cpu as usize].push(now(), ip, parent, Event::info(cpu, tag));
}

/// The recording handler: one event per call, tagged with the ops' `data` (its low byte).
pub extern "C" fn record(ip: u64, parent: u64, ops: &Ops, _: &mut FtraceRegs) {
    emit(ip, parent, ops.data as u8);
}

/// Every CPU's readable events, merged oldest first (by timestamp, then CPU), and what was
/// lost since the last [`clear`].
pub fn read_all() -> (Vec<Event>, ReadStats) {
    let mut events = Vec::new();
    let mut total = ReadStats::default();
    for ring in &RINGS[..percpu::online() as usize] {
        let s = ring.read(|e| events.push(e));
        total.read += s.read;
        total.lost += s.lost;
    }
    events.sort_by_key(|e| (e.ts, e.cpu()));
    (events, total)
}

/// Forget every recorded event (on every CPU).
pub fn clear() {
    RINGS.iter().for_each(Ring::clear);
}

/// CPU `cpu`'s ring: events readable now and events written since boot.
pub fn usage(cpu: usize) -> (u64, u64) {
    (RINGS[cpu].len(), RINGS[cpu].written())
}
