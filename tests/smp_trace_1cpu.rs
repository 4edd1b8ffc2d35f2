//! Tracing in normal and interrupt context on one CPU: QEMU `virt`, GICv2.
//! Body: tests/smp_trace_body.rs.
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

patchbay::qemu_directives!(
    "smp=1",
    "gic=2",
    "timeout=300",
    "bootargs=patchbay.tick_hz=4000",
);

const CPUS: usize = 1;

include!("smp_trace_body.rs");
