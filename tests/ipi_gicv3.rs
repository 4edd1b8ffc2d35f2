//! Cross-CPU calls through GICv3 SGIs (QEMU `virt`, `gic-version=3`, 4 CPUs); body:
//! tests/ipi_body.rs.
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

patchbay::qemu_directives!("smp=4", "gic=3", "timeout=90");

include!("ipi_body.rs");
