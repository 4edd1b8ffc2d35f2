//! Interrupts on every CPU through QEMU `virt`'s GICv3 (`gic-version=3`), 4 CPUs, multi-threaded
//! TCG: the vCPUs really run at once (body: tests/irq_body.rs).
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

patchbay::qemu_directives!(
    "smp=4",
    "gic=3",
    "tcg=multi",
    "timeout=90",
    "bootargs=patchbay.tick_hz=1000",
    "expect_console=irq: GICv3, timer tick 1000 Hz on every CPU",
);

include!("irq_body.rs");
