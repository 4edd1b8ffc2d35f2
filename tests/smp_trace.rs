//! Tracing on every CPU, in normal and interrupt context (issue 14), body: tests/smp_trace_body.rs.
//! QEMU `virt` with 4 CPUs, GICv2, under icount (deterministic round-robin); built with `bsp_rpi3` or
//! `bsp_rpi4`, QEMU `raspi3b` (BCM2836 local controller) or `raspi4b` (GIC-400), 4 CPUs each.
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

#[cfg(feature = "bsp_qemu_virt")]
patchbay::qemu_directives!(
    "smp=4",
    "gic=2",
    "icount=1",
    "timeout=300",
    "bootargs=patchbay.tick_hz=4000",
);

#[cfg(not(feature = "bsp_qemu_virt"))]
patchbay::qemu_directives!("timeout=300", "bootargs=patchbay.tick_hz=4000");

const CPUS: usize = 4;

include!("smp_trace_body.rs");
