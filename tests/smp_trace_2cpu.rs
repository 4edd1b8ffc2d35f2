//! Tracing on every CPU, in normal and interrupt context: QEMU `virt` with 2 CPUs, GICv2.
//! Body: tests/smp_trace_body.rs.
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

patchbay::qemu_directives!(
    "smp=2",
    "gic=2",
    "timeout=300",
    "bootargs=patchbay.tick_hz=4000",
);

const CPUS: usize = 2;

include!("smp_trace_body.rs");
