//! The measuring clock: PMCCNTR_EL0 when a PMU exists, CNTVCT_EL0 otherwise, read with ISBs
//! around it, with its own cost measured so the harness can subtract it.
//!
//! What one tick means depends on where we run, and every record says so:
//!
//! | mode | how we know | PMCCNTR_EL0 counts | unit |
//! |---|---|---|---|
//! | `qemu-icount` | boot arg `patchbay.clock=qemu-icount` (set by `pb run`), or without a boot arg the counter is seen to count instructions exactly (below) | retired instructions, exactly, identically every run | `instructions` |
//! | `qemu` | boot arg `patchbay.clock=qemu` | host time, noisy | `ticks` |
//! | `hardware` | `patchbay.clock=hardware`, or no boot arg on a real board (the BSP's default) | CPU cycles | `cycles` |
//!
//! Without a boot argument (a raw `qemu -kernel kernel8.img` run has no DTB and so no bootargs),
//! [`init`] asks the counter itself: the ticks across 16 and across 48 NOPs must differ by
//! exactly 32, in at least 3 of 5 trials. Under icount each instruction is one tick, so they
//! do; a real Cortex-A53/A72/A76 issues NOPs several per cycle and without icount QEMU's counter
//! is host time, so they do not. The boot argument, when present, always wins.
//!
//! With CNTVCT_EL0 as the source the unit is always `ticks` (of the generic timer). The mode
//! type ([`ClockMode`]) belongs to the board support, which states each board's default.

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use patchbay_wire::bootargs;

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
/// Set by [`init`] when, without a boot argument, the counter counts instructions exactly.
static SEEN_ICOUNT: AtomicBool = AtomicBool::new(false);

/// Enable the cycle counter if there is a PMU, measure the read cost, and (without a
/// `patchbay.clock=` boot argument) find out whether it counts instructions exactly.
pub fn init() {
    if pmu::pmu_present() {
        // SAFETY: a PMU is present (checked).
        unsafe { pmu::enable_cycle_counter() };
        SOURCE.store(1, Ordering::Relaxed);
        if boot_info::get().bootarg(bootargs::CLOCK).is_none() {
            SEEN_ICOUNT.store(counts_instructions_exactly(), Ordering::Relaxed);
        }
    }
    READ_COST.store(calibrate(), Ordering::Relaxed);
}

/// Does PMCCNTR_EL0 tick once per retired instruction (QEMU icount)? See the module docs.
fn counts_instructions_exactly() -> bool {
    let exact = (0..5)
        .filter(|_| {
            let short = pmu::cycles_across_nops::<16>();
            let long = pmu::cycles_across_nops::<48>();
            long.wrapping_sub(short) == 32
        })
        .count();
    exact >= 3
}

pub fn source() -> Source {
    if SOURCE.load(Ordering::Relaxed) == 1 {
        Source::Pmccntr
    } else {
        Source::Cntvct
    }
}

/// The clock mode, from the boot arguments the runner passed; else `qemu-icount` if the counter
/// was seen to count instructions exactly; else the board's default (QEMU `virt` is never
/// hardware, so there it is `qemu`: icount unknown, never "cycles").
pub fn mode() -> ClockMode {
    match boot_info::get().clock_mode() {
        Some(mode) => mode,
        None if SEEN_ICOUNT.load(Ordering::Relaxed) => ClockMode::QemuIcount,
        None => bsp::DEFAULT_CLOCK_MODE,
    }
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
