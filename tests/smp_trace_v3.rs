//! Tracing on every CPU, in normal and interrupt context: QEMU `virt` with 4 CPUs, GICv3,
//! multi-threaded TCG (the vCPUs really run at once). Body: tests/smp_trace_body.rs.
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

patchbay::qemu_directives!(
    "smp=4",
    "gic=3",
    "tcg=multi",
    "timeout=300",
    "bootargs=patchbay.tick_hz=4000",
);

const CPUS: usize = 4;

include!("smp_trace_body.rs");
