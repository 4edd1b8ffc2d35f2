//! The measuring clock: PMCCNTR_EL0 when a PMU exists, CNTVCT_EL0 otherwise, read with ISBs
//! around it, with its own cost measured so the harness can subtract it.
//!
//! What one tick means depends on where we run, and every record says so:
//!
//! | mode | how we know | PMCCNTR_EL0 counts | unit |
//! |---|---|---|---|
//! | `qemu-icount` | boot arg `patchbay.clock=qemu-icount` (set by `pb run`) | retired instructions, exactly, identically every run | `instructions` |
//! | `qemu` | boot arg `patchbay.clock=qemu` | host time, noisy | `ticks` |
//! | `hardware` | `patchbay.clock=hardware`, or no boot arg on a real board (the BSP's default) | CPU cycles | `cycles` |
//!
//! With CNTVCT_EL0 as the source the unit is always `ticks` (of the generic timer). The mode
//! type ([`ClockMode`]) belongs to the board support, which states each board's default.

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::{
    arch::pmu,
    boot_info,
    bsp::{self, ClockMode},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Pmccntr,
    Cntvct,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Pmccntr => "pmccntr",
            Source::Cntvct => "cntvct",
        }
    }
}

static SOURCE: AtomicU8 = AtomicU8::new(0);
static READ_COST: AtomicU64 = AtomicU64::new(0);

/// Enable the cycle counter if there is a PMU and measure the read cost.
pub fn init() {
    if pmu::pmu_present() {
        // SAFETY: a PMU is present (checked).
        unsafe { pmu::enable_cycle_counter() };
        SOURCE.store(1, Ordering::Relaxed);
    }
    READ_COST.store(calibrate(), Ordering::Relaxed);
}

pub fn source() -> Source {
    if SOURCE.load(Ordering::Relaxed) == 1 {
        Source::Pmccntr
    } else {
        Source::Cntvct
    }
}

/// The clock mode, from the boot arguments the runner passed, else the board's default (QEMU
/// `virt` is never hardware, so without the argument it is `qemu`: icount unknown, never "cycles").
pub fn mode() -> ClockMode {
    boot_info::get()
        .bootarg("patchbay.clock")
        .and_then(ClockMode::from_name)
        .unwrap_or(bsp::DEFAULT_CLOCK_MODE)
}

/// What one tick of [`now`] is.
pub fn unit() -> &'static str {
    match (source(), mode()) {
        (Source::Pmccntr, ClockMode::QemuIcount) => "instructions",
        (Source::Pmccntr, ClockMode::Hardware) => "cycles",
        _ => "ticks",
    }
}

/// The current count, ISB-fenced.
#[inline(always)]
pub fn now() -> u64 {
    match source() {
        Source::Pmccntr => pmu::read_cycles_fenced(),
        Source::Cntvct => pmu::read_cntvct_fenced(),
    }
}

/// The cost of one `now()` as seen between two back-to-back reads (minimum of 64 trials).
fn calibrate() -> u64 {
    (0..64)
        .map(|_| {
            let a = now();
            let b = now();
            b.wrapping_sub(a)
        })
        .min()
        .unwrap_or(0)
}

/// The calibrated cost of reading the clock, to subtract from measured intervals.
pub fn read_cost() -> u64 {
    READ_COST.load(Ordering::Relaxed)
}

/// Ticks taken by `f`, minus the clock's own read cost.
#[inline(always)]
pub fn measure(f: impl FnOnce()) -> u64 {
    let a = now();
    f();
    let b = now();
    b.wrapping_sub(a).saturating_sub(read_cost())
}
