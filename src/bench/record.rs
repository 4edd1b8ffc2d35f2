//! Benchmark records: one line each on the console, `@bench ` followed by a JSON object, parsed
//! by the host tool (`pb bench`, `pb parse`, `pb compare`). The format (the record types, their
//! fields and the version) lives in `patchbay_wire::bench`, shared with `pb`; the README
//! documents every field.
//!
//! The unit always comes from the clock ([`clock::unit`]): QEMU numbers are never called cycles.

use core::sync::atomic::{AtomicUsize, Ordering};

pub use patchbay_wire::bench::BenchResult;
use patchbay_wire::bench::{End, Header, PREFIX};

use super::clock;
use crate::{arch, boot_info, bsp, percpu, println};

/// The emulator the runner named (`qemu-10.0.2`); `qemu` when nobody named it but the clock
/// mode says emulated (a raw run whose counter was seen counting instructions); else `none`.
pub fn emulator() -> &'static str {
    match boot_info::get().bootarg(patchbay_wire::bootargs::EMULATOR) {
        Some(named) => named,
        None if clock::mode() != bsp::ClockMode::Hardware => "qemu",
        None => "none",
    }
}

static RESULTS: AtomicUsize = AtomicUsize::new(0);

/// The header record: where and with which clock the numbers were produced.
pub fn header() {
    RESULTS.store(0, Ordering::Relaxed);
    let midr = arch::cpu::midr();
    let header = Header {
        git: crate::GIT_REV,
        board: bsp::NAME,
        cpu: arch::cpu::cpu_name(midr),
        midr,
        ctr_el0: arch::cache::ctr().0,
        clock: clock::source().name(),
        mode: clock::mode(),
        unit: clock::unit(),
        read_cost: clock::read_cost(),
        emulator: emulator(),
        cpus: percpu::online(),
        build: crate::BUILD,
    };
    println!("{PREFIX}{header}");
}

/// Print one result record.
///
/// Never inlined: printing a record (and finding the clock's unit) inlined into a suite's loop
/// changes how the compiler allocates registers around the measured calls, and with it the
/// instruction counts the records report.
#[inline(never)]
pub fn emit(result: &BenchResult) {
    RESULTS.fetch_add(1, Ordering::Relaxed);
    println!("{PREFIX}{}", result.record(clock::unit()));
}

/// Result records emitted since the last header.
pub fn emitted() -> usize {
    RESULTS.load(Ordering::Relaxed)
}

/// The end record: how many results were emitted, so a truncated log is detectable.
pub fn end() {
    let records = RESULTS.load(Ordering::Relaxed);
    println!("{PREFIX}{}", End { records });
}
