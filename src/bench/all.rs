//! The whole benchmark run, framed by the header and end records: the mechanisms suite, the
//! ops-scaling table, patch latency, then the SMP, interrupted-call and patch-protocol suites.

use patchbay_wire::bootargs;

use super::{
    harness::Iters, interrupted, ops_scaling, patch_latency, protocols, record, smp, suite,
};
use crate::{boot_info, percpu, println};

/// Result records the whole suite emits: every mechanism on every subject, the ops-scaling
/// table in both modes, one single poke and three metrics per batch size, then the SMP suite's
/// (which depend on the CPUs online) and the interrupted calls (tick-less runs).
pub fn expected_records() -> usize {
    suite::MECHANISMS.len() * suite::Subject::ALL.len()
        + 2 * ops_scaling::SHAPES.len()
        + 1
        + 3 * patch_latency::BATCHES.len()
        + smp::expected_records(percpu::online() as usize)
        + interrupted::expected_records()
        + protocols::RECORDS
}

/// The whole suite, framed by the header and end records. The SMP and interrupted-call suites
/// come last, so that the records before them are the same with one CPU or more (apart from
/// batches that write `mov x9, x30`, which stop the other CPUs when there are any).
pub fn run_all() {
    record::header();
    // `pb bench` boots the kernel again with more CPUs for the protocol records alone.
    if boot_info::get().bootarg(bootargs::BENCH_ONLY) == Some(bootargs::PROTOCOLS) {
        protocols::run();
        record::end();
        return;
    }
    suite::run_mechanisms(Iters::DEFAULT);
    ops_scaling::run(Iters::DEFAULT);
    patch_latency::run();
    for m in smp::run(Iters::DEFAULT) {
        println!(
            "bench: {} on {}: CPU 1 measured {} where CPU 0 measured {}",
            m.mechanism, m.subject, m.secondary, m.cpu0
        );
    }
    interrupted::run(Iters::DEFAULT);
    protocols::run();
    record::end();
}
